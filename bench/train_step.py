#!/usr/bin/python3
"""The Python-torch baseline of bench_train.cpp: one SPIN optimizer step on a Qwen2-0.5B-shape
model (random weights, fp32, 2 threads), micro-batch of 2 pairs of 256 tokens, written the
way a PyTorch user would (batched eager attention, full [B, T, V] logits + log_softmax, the
reference log-probs precomputed under no_grad), torch.optim.RMSprop, clip_grad_norm_.
Prints "python SECONDS_PER_STEP"."""
import argparse
import math
import time

import torch
import torch.nn.functional as F

V, C, FF, L, H, HKV, D = 151936, 896, 4864, 24, 14, 2, 64
THETA, EPS = 1000000.0, 1e-6


def make_params(gen):
    def w(*shape):
        return (torch.randn(*shape, generator=gen) * 0.02).requires_grad_(True)
    p = {"embed": w(V, C), "norm": torch.ones(C, requires_grad=True), "layers": []}
    for _ in range(L):
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
    args = ap.parse_args()
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
    total = 0.0
    for s in range(args.steps + 1):
        start = time.time()
        opt.zero_grad()
        logps = (forward_logprobs(p, ids) * response).sum(1)
        h = (logps[:2] - ref[:2]) - (logps[2:] - ref[2:])
        loss = -F.logsigmoid(0.1 * h).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        seconds = time.time() - start
        import sys
        print(f"  python step {s}: {seconds:.2f} s (loss {loss.item():.6f})", file=sys.stderr)
        if s > 0 or args.steps == 0:
            total += seconds
    print(f"python {total / max(1, args.steps):.3f}", flush=True)


if __name__ == "__main__":
    main()
