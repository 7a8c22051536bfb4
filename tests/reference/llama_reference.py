#!/usr/bin/python3
"""Independent reference for spinlm's Llama-family transformer (llama, mistral, qwen2, qwen3).

Written from the semantics of HuggingFace transformers' modeling_llama / modeling_mistral /
modeling_qwen2 / modeling_qwen3 (LlamaRMSNorm, LlamaRotaryEmbedding with llama3 scaling,
rotate_half / apply_rotary_pos_emb, repeat_kv, eager attention, SiLU-gated MLP), with its own
safetensors parser. It shares no code with spinlm. Each row is run alone, unpadded, with
positions 0..T-1, exactly as transformers runs a single sequence.

Usage: llama_reference.py --model DIR --input ROWS.json --output OUT.safetensors
                          [--grad] [--dtype float32|float64]
ROWS.json: {"rows": [[id, id, ...], ...]}
OUT: "logprobs.<i>" [len_i - 1] (log p(ids[t] | ids[<t]) for t >= 1) for each row, "total"
(sum over all rows), and with --grad "grad.<parameter name>": d total / d parameter.
"""
import argparse
import json
import math
import os
import struct

import torch

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32,
}
DTYPE_CODES = {torch.float32: "F32", torch.float64: "F64"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        dtype = SAFETENSORS_DTYPES[entry["dtype"]]
        raw = bytearray(data[base + begin:base + end])
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(entry["shape"]).clone()
    return tensors


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, tensor in tensors.items():
        blob = tensor.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPE_CODES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def load_weights(model_dir):
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        weights.update(read_safetensors(os.path.join(model_dir, name)))
    return weights


class Config:
    """The config.json fields the forward needs, with transformers' per-class defaults."""

    def __init__(self, c):
        self.model_type = c["model_type"]
        assert self.model_type in ("llama", "mistral", "qwen2", "qwen3"), self.model_type
        self.hidden = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads") or self.heads
        default_head_dim = 128 if self.model_type == "qwen3" else self.hidden // self.heads
        self.head_dim = c.get("head_dim") or default_head_dim
        self.layers = c["num_hidden_layers"]
        self.eps = c.get("rms_norm_eps", 1e-6)
        rope_parameters = c.get("rope_parameters") or {}
        self.rope_theta = rope_parameters.get("rope_theta", c.get("rope_theta", 10000.0))
        self.rope_scaling = c.get("rope_scaling") or (rope_parameters if rope_parameters.get("rope_type") == "llama3" else None)
        self.tied = c.get("tie_word_embeddings", False)
        self.sliding_window = c.get("sliding_window") if self.model_type == "mistral" else None


def compute_inv_freq(cfg):
    dim = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    s = cfg.rope_scaling
    if not s or s.get("rope_type", s.get("type")) != "llama3":
        return inv_freq
    factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old_context = s["original_max_position_embeddings"]
    low_freq_wavelen = old_context / low
    high_freq_wavelen = old_context / high
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_context / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def rms_norm(x, weight, eps):
    input_dtype = x.dtype
    h = x.to(torch.float32) if input_dtype != torch.float64 else x
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + eps)
    return weight * h.to(input_dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def repeat_kv(x, groups):
    # [Hkv, T, D] -> [Hkv * groups, T, D]: head h reads kv head h // groups.
    kv_heads, t, d = x.shape
    return x[:, None, :, :].expand(kv_heads, groups, t, d).reshape(kv_heads * groups, t, d)


def linear(x, w, name, weights):
    y = x @ w[name + ".weight"].t()
    if name + ".bias" in w:
        y = y + w[name + ".bias"]
    return y


def sequence_logprobs(ids, w, cfg, dtype):
    """log p(ids[t] | ids[<t]) for t >= 1, one unpadded row."""
    t_len = len(ids)
    i = torch.arange(t_len)[:, None]
    j = torch.arange(t_len)[None, :]
    allowed = j <= i
    if cfg.sliding_window:
        allowed = allowed & (i - j < cfg.sliding_window)
    logp = row_logprobs(ids, list(range(t_len)), allowed, w, cfg, dtype)
    return logp[:-1].gather(1, torch.tensor(ids[1:], dtype=torch.long)[:, None]).squeeze(1)


def row_logprobs(ids, positions, allowed, w, cfg, dtype):
    """log_softmax of the logits [T, V] of one row whose token t has RoPE position
    positions[t] and attends to token j where allowed[t, j] (a [T, T] bool)."""
    t_len = len(ids)
    ids = torch.tensor(ids, dtype=torch.long)
    x = w["model.embed_tokens.weight"][ids]  # [T, C]
    positions = torch.tensor(positions, dtype=torch.long).float()
    freqs = positions[:, None] * compute_inv_freq(cfg)[None, :]  # [T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)
    H, Hkv, D = cfg.heads, cfg.kv_heads, cfg.head_dim
    mask = torch.zeros(t_len, t_len, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    for layer in range(cfg.layers):
        p = f"model.layers.{layer}."
        residual = x
        h = rms_norm(x, w[p + "input_layernorm.weight"], cfg.eps)
        q = linear(h, w, p + "self_attn.q_proj", w).view(t_len, H, D)
        k = linear(h, w, p + "self_attn.k_proj", w).view(t_len, Hkv, D)
        v = linear(h, w, p + "self_attn.v_proj", w).view(t_len, Hkv, D)
        if cfg.model_type == "qwen3":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], cfg.eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], cfg.eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [h, T, D]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, H // Hkv), repeat_kv(v, H // Hkv)
        scores = torch.matmul(q, k.transpose(1, 2)) * D ** -0.5 + mask
        probs = torch.softmax(scores.to(torch.float32) if dtype != torch.float64 else scores, dim=-1).to(dtype)
        attended = torch.matmul(probs, v).transpose(0, 1).reshape(t_len, H * D)
        x = residual + linear(attended, w, p + "self_attn.o_proj", w)
        residual = x
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], cfg.eps)
        gate = torch.nn.functional.silu(linear(h, w, p + "mlp.gate_proj", w))
        x = residual + linear(gate * linear(h, w, p + "mlp.up_proj", w), w, p + "mlp.down_proj", w)
    x = rms_norm(x, w["model.norm.weight"], cfg.eps)
    head = w["model.embed_tokens.weight"] if cfg.tied else w["lm_head.weight"]
    logits = (x @ head.t()).float() if dtype != torch.float64 else x @ head.t()
    return torch.log_softmax(logits, dim=-1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--grad", action="store_true")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = Config(json.load(f))
    weights = {name: t.to(dtype).requires_grad_(args.grad) for name, t in load_weights(args.model).items()}
    with open(args.input) as f:
        rows = json.load(f)["rows"]
    out = {}
    total = torch.zeros((), dtype=dtype)
    for index, ids in enumerate(rows):
        logprobs = sequence_logprobs(ids, weights, cfg, dtype)
        out[f"logprobs.{index}"] = logprobs.detach().to(dtype)
        total = total + logprobs.sum().to(dtype)
    out["total"] = total.detach().reshape(1)
    if args.grad:
        total.backward()
        for name, tensor in weights.items():
            if cfg.tied and name == "lm_head.weight":
                continue
            grad = tensor.grad if tensor.grad is not None else torch.zeros_like(tensor)
            out["grad." + name] = grad
    write_safetensors(args.output, out)


if __name__ == "__main__":
    main()
