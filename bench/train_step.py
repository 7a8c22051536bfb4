#!/usr/bin/python3
"""The Python-torch baseline of bench_train.cpp: one SPIN optimizer step on a Qwen2-0.5B-shape
model (random weights, fp32, 2 threads), micro-batch of 2 pairs of 256 tokens, written the
way a PyTorch user would (batched eager attention, full [B, T, V] logits + log_softmax, the
reference log-probs precomputed under no_grad), torch.optim.RMSprop, clip_grad_norm_.
Prints "python SECONDS s/step CPU_SECONDS CPU s/step"; per step (stderr) the CPU seconds and
the peak RSS so far. --layers L: fewer decoder layers for quick probes (default 24)."""
import argparse
import math
import resource
import sys
import time

import torch
import torch.nn.functional as F

V, C, FF, L, H, HKV, D = 151936, 896, 4864, 24, 14, 2, 64
LAYERS = L
THETA, EPS = 1000000.0, 1e-6


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 * 1024.0)


def make_params(gen):
    def w(*shape):
        return (torch.randn(*shape, generator=gen) * 0.02).requires_grad_(True)
    p = {"embed": w(V, C), "norm": torch.ones(C, requires_grad=True), "layers": []}
    for _ in range(LAYERS):
        p["layers"].append({
            "ln1": torch.ones(C, requires_grad=True), "ln2": torch.ones(C, requires_grad=True),
            "q": w(H * D, C), "qb": torch.zeros(H * D, requires_grad=True),
            "k": w(HKV * D, C), "kb": torch.zeros(HKV * D, requires_grad=True),
            "v": w(HKV * D, C), "vb": torch.zeros(HKV * D, requires_grad=True),
            "o": w(C, H * D), "gate": w(FF, C), "up": w(FF, C), "down": w(C, FF)})
    return p


def all_params(p):
    out = [p["embed"], p["norm"]]
    for layer in p["layers"]:
        out += list(layer.values())
    return out


def rms(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def rotate(x):
    return torch.cat((-x[..., D // 2:], x[..., :D // 2]), dim=-1)


def forward_logprobs(p, ids):
    B, T = ids.shape
    inv = 1.0 / (THETA ** (torch.arange(0, D, 2).float() / D))
    freqs = torch.arange(T).float()[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = p["embed"][ids]
    for l in p["layers"]:
        h = rms(x, l["ln1"])
        q = F.linear(h, l["q"], l["qb"]).view(B, T, H, D).transpose(1, 2)
        k = F.linear(h, l["k"], l["kb"]).view(B, T, HKV, D).transpose(1, 2)
        v = F.linear(h, l["v"], l["vb"]).view(B, T, HKV, D).transpose(1, 2)
        q, k = q * cos + rotate(q) * sin, k * cos + rotate(k) * sin
        k = k.repeat_interleave(H // HKV, dim=1)
        v = v.repeat_interleave(H // HKV, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + mask, -1)
        x = x + F.linear((att @ v).transpose(1, 2).reshape(B, T, H * D), l["o"])
        h = rms(x, l["ln2"])
        x = x + F.linear(F.silu(F.linear(h, l["gate"])) * F.linear(h, l["up"]), l["down"])
    logits = F.linear(rms(x, p["norm"]), p["embed"])  # [B, T, V], tied head
    logp = torch.log_softmax(logits, -1)
    return logp[:, :-1].gather(2, ids[:, 1:, None]).squeeze(2)  # [B, T-1]


def make_batch():
    x = 12345
    def nxt():
        nonlocal x
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (x >> 33) % 151000
    rows = []
    for _ in range(2):
        prompt = [nxt() for _ in range(128)]
        real = [nxt() for _ in range(128)]
        gen = [nxt() for _ in range(128)]
        rows.append((prompt, real, gen))
    ids = torch.tensor([r[0] + r[1] for r in rows] + [r[0] + r[2] for r in rows])
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--layers", type=int, default=L)
    args = ap.parse_args()
    global LAYERS
    LAYERS = args.layers
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(1)
    p = make_params(gen)
    params = all_params(p)
    ids = make_batch()  # [4, 256]: real rows then generated rows
    response = torch.zeros(4, 255)
    response[:, 127:] = 1.0  # positions predicting the 128 response tokens
    with torch.no_grad():
        ref = (forward_logprobs(p, ids) * response).sum(1)
    opt = torch.optim.RMSprop(params, lr=5e-7)
    print(f"  python before training: peak RSS {peak_rss_gib():.2f} GiB", file=sys.stderr)
    total = total_cpu = 0.0
    for s in range(args.steps + 1):
        start, start_cpu = time.time(), time.process_time()
        opt.zero_grad()
        logps = (forward_logprobs(p, ids) * response).sum(1)
        h = (logps[:2] - ref[:2]) - (logps[2:] - ref[2:])
        loss = -F.logsigmoid(0.1 * h).mean()
        rss_forward = peak_rss_gib()
        loss.backward()
        rss_backward = peak_rss_gib()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        seconds, cpu = time.time() - start, time.process_time() - start_cpu
        print(f"  python step {s}: {seconds:.2f} s, {cpu:.2f} CPU s (loss {loss.item():.6f}); peak RSS so far "
              f"after forward {rss_forward:.2f}, backward {rss_backward:.2f}, optimizer {peak_rss_gib():.2f} GiB",
              file=sys.stderr)
        if s > 0 or args.steps == 0:
            total += seconds
            total_cpu += cpu
    n = max(1, args.steps)
    print(f"python {total / n:.3f} s/step {total_cpu / n:.3f} CPU s/step", flush=True)


if __name__ == "__main__":
    main()
