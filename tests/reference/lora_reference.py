#!/usr/bin/python3
"""Independent reference for spinlm's LoRA adapters, written from PEFT's semantics.

Debian's python3-torch has no PEFT, so this file rebuilds what PEFT does on a Llama-family
causal LM: the model is a tree of torch modules named as transformers names them
(model.layers.N.self_attn.q_proj, ...), target modules are matched on named_modules() with
PEFT's rules (check_target_module_exists: a string is re.fullmatch, a list matches a name
exactly or as a ".suffix"; "all-linear" is every nn.Linear's last name component but the
output embedding's), and each matched nn.Linear is replaced by a LoraLinear as PEFT's
lora.Linear computes it:
    result = base_layer(x); result = result + lora_B(lora_A(dropout(x.to(A dtype)))) * scaling
with scaling = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora), A = nn.Linear(in, r),
B = nn.Linear(r, out), both fp32. Adapter files are read and written as PEFT's
save_pretrained / set_peft_model_state_dict do (keys base_model.model.<module>.lora_A.weight).
Only the safetensors parser and the base model's formulas (RMSNorm, RoPE) are shared with
llama_reference.py; the forward here runs through the module tree.

Usage:
  lora_reference.py match --config config.json --targets JSON --output OUT.json
      --targets: a JSON list of cases, each a target_modules value (a list or a string).
      OUT: per case {"modules": [matched linear module names]} or {"error": text}, plus
      "unmatched": the list entries (or the regex) that match no module name at all.
  lora_reference.py forward --model DIR --adapter DIR --input ROWS.json --output OUT.safetensors
                            [--grad] [--merge]
      OUT: "logprobs.<i>" per row and "total"; with --grad, "grad.<adapter key>" (d total / d
      A, B) and "base_grads" (number of base tensors that received a gradient: must be 0);
      with --merge, the forward runs on the merged model (W + s B A) and "merged.<name>.weight"
      holds each merged weight.
  lora_reference.py make-adapter --model DIR --output DIR --r R --alpha A --targets JSON
                                 [--rslora] [--seed S]
      Writes an adapter folder as PEFT writes it (with keys of a newer PEFT that spinlm does
      not use), A drawn by PEFT's Kaiming-uniform init and B drawn from Normal(0, 0.1) so
      the adapter changes the model.
"""
import argparse
import json
import math
import os
import re
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import Config, compute_inv_freq, load_weights, read_safetensors, rotate_half, write_safetensors  # noqa: E402


class RMSNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg, bias, o_bias):
        super().__init__()
        H, Hkv, D, C = cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.hidden
        self.q_proj = nn.Linear(C, H * D, bias=bias)
        self.k_proj = nn.Linear(C, Hkv * D, bias=bias)
        self.v_proj = nn.Linear(C, Hkv * D, bias=bias)
        self.o_proj = nn.Linear(H * D, C, bias=o_bias)
        if cfg.model_type == "qwen3":
            self.q_norm = RMSNorm(D, cfg.eps)
            self.k_norm = RMSNorm(D, cfg.eps)
        self.cfg = cfg

    def forward(self, x, cos, sin, mask):
        cfg = self.cfg
        T = x.shape[0]
        H, Hkv, D = cfg.heads, cfg.kv_heads, cfg.head_dim
        q = self.q_proj(x).view(T, H, D)
        k = self.k_proj(x).view(T, Hkv, D)
        v = self.v_proj(x).view(T, Hkv, D)
        if cfg.model_type == "qwen3":
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        g = H // Hkv
        k = k.repeat_interleave(g, dim=0)
        v = v.repeat_interleave(g, dim=0)
        scores = q @ k.transpose(1, 2) / math.sqrt(D) + mask
        attended = torch.softmax(scores.float(), dim=-1).to(x.dtype) @ v
        return self.o_proj(attended.transpose(0, 1).reshape(T, H * D))


class MLP(nn.Module):
    def __init__(self, cfg, intermediate):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(cfg.hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, cfg.hidden, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, intermediate, bias, o_bias):
        super().__init__()
        self.self_attn = Attention(cfg, bias, o_bias)
        self.mlp = MLP(cfg, intermediate)
        self.input_layernorm = RMSNorm(cfg.hidden, cfg.eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden, cfg.eps)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Rotary(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.register_buffer("inv_freq", compute_inv_freq(cfg), persistent=False)


class Inner(nn.Module):
    def __init__(self, cfg, vocab, intermediate, bias, o_bias):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, cfg.hidden)
        self.layers = nn.ModuleList([DecoderLayer(cfg, intermediate, bias, o_bias) for _ in range(cfg.layers)])
        self.norm = RMSNorm(cfg.hidden, cfg.eps)
        self.rotary_emb = Rotary(cfg)


class CausalLM(nn.Module):
    def __init__(self, raw):
        super().__init__()
        cfg = Config(raw)
        self.cfg = cfg
        bias = raw.get("attention_bias", False) or raw["model_type"] == "qwen2"
        o_bias = raw.get("attention_bias", False) and raw["model_type"] != "qwen2"
        self.model = Inner(cfg, raw["vocab_size"], raw["intermediate_size"], bias, o_bias)
        self.lm_head = nn.Linear(cfg.hidden, raw["vocab_size"], bias=False)

    def row_logprobs(self, ids):
        cfg = self.cfg
        T = len(ids)
        ids = torch.tensor(ids, dtype=torch.long)
        x = self.model.embed_tokens(ids)
        freqs = torch.arange(T).float()[:, None] * self.model.rotary_emb.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        allowed = j <= i
        if cfg.sliding_window:
            allowed = allowed & (i - j < cfg.sliding_window)
        mask = torch.zeros(T, T).masked_fill(~allowed, torch.finfo(torch.float32).min)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if cfg.tied else self.lm_head.weight
        logp = torch.log_softmax((x @ head.t()).float(), dim=-1)
        return logp[:-1].gather(1, ids[1:, None]).squeeze(1)


def build_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    model = CausalLM(raw)
    weights = load_weights(model_dir)
    state = {name: t.float() for name, t in weights.items() if "rotary_emb" not in name}
    if model.cfg.tied:
        state.setdefault("lm_head.weight", state["model.embed_tokens.weight"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all("rotary_emb" in m for m in missing), missing
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ---- PEFT's target-module matching --------------------------------------------------------

def resolve_targets(model, targets):
    """PEFT's _maybe_include_all_linear_layers + check_target_module_exists."""
    if isinstance(targets, str) and targets.lower() == "all-linear":
        names = set()
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear):
                names.add(name.split(".")[-1])
        names.discard("lm_head")  # the output embedding
        targets = sorted(names)
    keys = [name for name, _ in model.named_modules() if name]
    if isinstance(targets, str):
        matched = [k for k in keys if re.fullmatch(targets, k)]
        unmatched = [] if matched else [targets]
    else:
        matched = [k for k in keys if k in targets or any(k.endswith("." + t) for t in targets)]
        unmatched = [t for t in targets if not any(k == t or k.endswith("." + t) for k in keys)]
    return matched, unmatched


class LoraLinear(nn.Module):
    """PEFT's lora.Linear (one adapter, no DoRA, bias none, fan_in_fan_out False)."""

    def __init__(self, base, r, alpha, dropout, use_rslora):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.lora_dropout = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x):
        result = self.base_layer(x)
        result_dtype = result.dtype
        x = x.to(self.lora_A.weight.dtype)
        result = result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling
        return result.to(result_dtype)

    def merged_weight(self):
        # get_delta_weight: B @ A * scaling, in fp32.
        return self.base_layer.weight.float() + (self.lora_B.weight @ self.lora_A.weight) * self.scaling


def inject(model, matched, r, alpha, dropout, use_rslora):
    for name in matched:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        module = getattr(parent, child)
        if not isinstance(module, nn.Linear):
            raise ValueError(f"Target module {name} is not supported")
        setattr(parent, child, LoraLinear(module, r, alpha, dropout, use_rslora))


def lora_modules(model):
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoraLinear)]


def load_adapter(model, adapter_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        config = json.load(f)
    assert config["peft_type"] == "LORA"
    targets = config["target_modules"]
    matched, _ = resolve_targets(model, targets)
    inject(model, matched, config["r"], config["lora_alpha"], config.get("lora_dropout", 0.0),
           config.get("use_rslora", False))
    tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    for name, module in lora_modules(model):
        for part in ("lora_A", "lora_B"):
            key = f"base_model.model.{name}.{part}.weight"
            getattr(module, part).weight.data.copy_(tensors.pop(key).float())
    assert not tensors, sorted(tensors)
    model.eval()  # dropout off: the forward the comparisons need


def cmd_match(args):
    with open(args.config) as f:
        raw = json.load(f)
    results = []
    for targets in json.loads(args.targets):
        model = CausalLM(raw)
        matched, unmatched = resolve_targets(model, targets)
        out = {"unmatched": unmatched}
        try:
            if not matched:
                raise ValueError(f"Target modules {targets} not found in the base model.")
            inject(model, matched, 2, 4, 0.0, False)
            out["modules"] = matched
        except ValueError as e:
            out["error"] = str(e)
        results.append(out)
    with open(args.output, "w") as f:
        json.dump(results, f)


def cmd_forward(args):
    torch.set_num_threads(1)
    model = build_model(args.model)
    load_adapter(model, args.adapter)
    out = {}
    if args.merge:
        for name, module in lora_modules(model):
            merged = module.merged_weight()
            out[f"merged.{name}.weight"] = merged.detach()
            module.base_layer.weight.data.copy_(merged)
            module.lora_B.weight.data.zero_()  # the merged model: base only
    params = {}
    if args.grad:
        for name, module in lora_modules(model):
            for part in ("lora_A", "lora_B"):
                weight = getattr(module, part).weight
                weight.requires_grad_(True)
                params[f"base_model.model.{name}.{part}.weight"] = weight
    with open(args.input) as f:
        rows = json.load(f)["rows"]
    total = torch.zeros(())
    for index, ids in enumerate(rows):
        logprobs = model.row_logprobs(ids)
        out[f"logprobs.{index}"] = logprobs.detach()
        total = total + logprobs.sum()
    out["total"] = total.detach().reshape(1)
    if args.grad:
        total.backward()
        for key, weight in params.items():
            out["grad." + key] = weight.grad
        base_grads = 0
        for name, p in model.named_parameters():
            if ".lora_" not in name and p.grad is not None:
                base_grads += 1
        out["base_grads"] = torch.tensor([float(base_grads)])
    write_safetensors(args.output, out)


def cmd_make_adapter(args):
    torch.manual_seed(args.seed)
    model = build_model(args.model)
    targets = json.loads(args.targets)
    matched, unmatched = resolve_targets(model, targets)
    assert matched and not unmatched, (matched, unmatched)
    inject(model, matched, args.r, args.alpha, 0.05, args.rslora)
    tensors = {}
    for name, module in lora_modules(model):
        nn.init.normal_(module.lora_B.weight, std=0.1)
        tensors[f"base_model.model.{name}.lora_A.weight"] = module.lora_A.weight.detach()
        tensors[f"base_model.model.{name}.lora_B.weight"] = module.lora_B.weight.detach()
    os.makedirs(args.output, exist_ok=True)
    write_safetensors(os.path.join(args.output, "adapter_model.safetensors"), tensors)
    config = {
        "alora_invocation_tokens": None, "alpha_pattern": {}, "arrow_config": None,
        "auto_mapping": {"base_model_class": "LlamaForCausalLM", "parent_library": "transformers.models.llama.modeling_llama"},
        "base_model_name_or_path": args.model, "bias": "none", "corda_config": None,
        "ensure_weight_tying": False, "eva_config": None, "exclude_modules": None, "fan_in_fan_out": False,
        "inference_mode": True, "init_lora_weights": True, "layer_replication": None, "layers_pattern": None,
        "layers_to_transform": None, "loftq_config": {}, "lora_alpha": args.alpha, "lora_bias": False,
        "lora_dropout": 0.05, "lora_ga_config": None, "megatron_config": None, "megatron_core": "megatron.core",
        "modules_to_save": None, "peft_type": "LORA", "peft_version": "0.19.1", "qalora_group_size": 16,
        "r": args.r, "rank_pattern": {}, "revision": None,
        "target_modules": targets if isinstance(targets, str) else sorted(set(targets)),
        "target_parameters": None, "task_type": "CAUSAL_LM", "trainable_token_indices": None,
        "use_bdlora": None, "use_dora": False, "use_qalora": False, "use_rslora": args.rslora,
    }
    with open(os.path.join(args.output, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("match")
    m.add_argument("--config", required=True)
    m.add_argument("--targets", required=True)
    m.add_argument("--output", required=True)
    f = sub.add_parser("forward")
    f.add_argument("--model", required=True)
    f.add_argument("--adapter", required=True)
    f.add_argument("--input", required=True)
    f.add_argument("--output", required=True)
    f.add_argument("--grad", action="store_true")
    f.add_argument("--merge", action="store_true")
    a = sub.add_parser("make-adapter")
    a.add_argument("--model", required=True)
    a.add_argument("--output", required=True)
    a.add_argument("--r", type=int, required=True)
    a.add_argument("--alpha", type=float, required=True)
    a.add_argument("--targets", required=True)
    a.add_argument("--rslora", action="store_true")
    a.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    {"match": cmd_match, "forward": cmd_forward, "make-adapter": cmd_make_adapter}[args.command](args)


if __name__ == "__main__":
    main()
