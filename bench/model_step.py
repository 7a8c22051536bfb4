#!/usr/bin/python3
"""Python-torch baseline for bench_model: the same forward+backward step as spinlm's, written
the way transformers computes it (nn.Linear layers, eager attention with repeat_kv, full
[B, T, V] fp32 logits + log_softmax + gather), on a Qwen2-0.5B-shape model with random
weights. Prints one JSON line: {"tokens_per_s", "seconds_per_step", "cpu_seconds_per_step"}.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, H, Hkv, D, Fw = c["hidden"], c["heads"], c["kv_heads"], c["head_dim"], c["inter"]
        self.H, self.Hkv, self.D = H, Hkv, D
        self.input_layernorm = RMSNorm(C, 1e-6)
        self.q_proj = nn.Linear(C, H * D, bias=True)
        self.k_proj = nn.Linear(C, Hkv * D, bias=True)
        self.v_proj = nn.Linear(C, Hkv * D, bias=True)
        self.o_proj = nn.Linear(H * D, C, bias=False)
        self.post_attention_layernorm = RMSNorm(C, 1e-6)
        self.gate_proj = nn.Linear(C, Fw, bias=False)
        self.up_proj = nn.Linear(C, Fw, bias=False)
        self.down_proj = nn.Linear(Fw, C, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        groups = self.H // self.Hkv
        k = k[:, :, None].expand(B, self.Hkv, groups, T, self.D).reshape(B, self.H, T, self.D)
        v = v[:, :, None].expand(B, self.Hkv, groups, T, self.D).reshape(B, self.H, T, self.D)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.D ** -0.5 + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
        attended = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.o_proj(attended)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab"], c["hidden"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["hidden"], 1e-6)
        inv = 1.0 / (1e6 ** (torch.arange(0, c["head_dim"], 2, dtype=torch.int64).float() / c["head_dim"]))
        self.register_buffer("inv_freq", inv)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        B, T = ids.shape
        x = self.embed_tokens(ids)
        freqs = torch.arange(T).float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        logits = (x @ self.embed_tokens.weight.t()).float()  # tied LM head, [B, T, V]
        return torch.log_softmax(logits[:, :-1], dim=-1).gather(2, ids[:, 1:, None]).squeeze(2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = {"hidden": 896, "inter": 4864, "layers": 24, "heads": 14, "kv_heads": 2, "head_dim": 64,
             "vocab": 151936}
    model = Model(shape)
    ids = torch.randint(shape["vocab"], (args.batch, args.tokens))
    times, cpu_times = [], []
    for step in range(args.steps + 1):  # the first step warms up
        model.zero_grad(set_to_none=True)
        start, cpu_start = time.perf_counter(), time.process_time()
        model(ids).sum().backward()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    seconds = sum(times[1:]) / args.steps
    print(json.dumps({"tokens_per_s": args.batch * args.tokens / seconds, "seconds_per_step": seconds,
                      "cpu_seconds_per_step": sum(cpu_times[1:]) / args.steps}))


if __name__ == "__main__":
    main()
