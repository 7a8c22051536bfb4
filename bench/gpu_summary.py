#!/usr/bin/env python3
"""Prints the compact summary of bench/gpu_check.sh from the result files in OUT and writes
OUT/summary.md (lines ready for bench/BENCHMARKS.md) and OUT/summary.json."""
import json
import os
import sys


def load(out, name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt(value, spec):
    return format(value, spec) if isinstance(value, (int, float)) else "n/a"


def main():
    out = sys.argv[1]
    lines = []
    lp = load(out, "logprobs")
    if lp:
        f32, b16, packed = lp.get("fp32", {}), lp.get("bf16", {}), lp.get("fp32_packed", {})
        errors = [r.get("error") for r in (f32, b16, packed) if "error" in r]
        lines.append(f"log-probs vs {lp.get('reference')} ({lp.get('shape')}, {lp.get('tokens')} tokens): "
                     f"fp32 max |diff| {fmt(f32.get('max_abs_token_diff'), '.2e')} (<= 1e-4: {f32.get('pass')}); "
                     f"bf16 rel. sum error {fmt(b16.get('max_rel_sum_error'), '.2e')} (<= 2e-2: {b16.get('pass')}); "
                     f"packed fp32 (causal views) max |diff| {fmt(packed.get('max_abs_token_diff'), '.2e')} "
                     f"(<= 1e-4: {packed.get('pass')})"
                     + (f" ERROR {errors[0]}" if errors else ""))
    else:
        lines.append("log-probs: no result")
    dec = load(out, "decode")
    if dec:
        lines.append(f"decoding on the device ({dec.get('prompts')} prompts x {dec.get('max_new_tokens')} tokens, fp32): "
                     f"greedy rows equal CPU vs GPU {fmt(dec.get('greedy_rows_equal_cpu_gpu'), '.0%')}; sampled rows "
                     f"equal with/without CUDA graphs {fmt(dec.get('sampled_rows_equal_graphs_no_graphs'), '.0%')}, "
                     f"16 vs 1 steps per sync {fmt(dec.get('sampled_rows_equal_window_16_1'), '.0%')} "
                     f"(pass: {dec.get('pass')}; graph run: {dec.get('sampled_graphs')})"
                     + (f" ERROR {dec.get('error')}" if 'error' in dec else ""))
    else:
        lines.append("decoding on the device: no result")
    gen = load(out, "generate")
    if gen:
        s, t = gen.get("spinlm", {}), gen.get("transformers", {})
        if isinstance(t, dict):
            lines.append(f"generation ({gen.get('shape')}, {gen.get('prompts')} prompts x {gen.get('max_new_tokens')} "
                         f"tokens): spinlm {fmt(s.get('tokens_per_s'), '.0f')} tok/s, transformers "
                         f"{fmt(t.get('tokens_per_s'), '.0f')} tok/s, {fmt(gen.get('speedup'), '.1f')}x (goal 10x)"
                         + (f" ERROR {s.get('error')}" if 'error' in s else ""))
        else:
            lines.append(f"generation: spinlm {fmt(s.get('tokens_per_s'), '.1f')} tok/s ({t})"
                         + (f" ERROR {s.get('error') or gen.get('error')}" if 'error' in s or 'error' in gen else ""))
        # The other spinlm runs of the same check, each against the users' default above.
        variants = [("spinlm_no_cuda_graphs", "--no-cuda-graphs", f"; rows equal to the default run: "
                     f"{fmt(gen.get('rows_equal_with_and_without_graphs'), '.0%')}"),
                    ("spinlm_steps_per_sync_4", "--steps-per-sync 4", "")]
        for key, option, extra in variants:
            run = gen.get(key)
            if isinstance(run, dict):
                lines.append(f"generation, default (CUDA graph {s.get('cuda_graph')}) "
                             f"{fmt(s.get('tokens_per_s'), '.0f')} tok/s; {option}: "
                             f"{fmt(run.get('tokens_per_s'), '.0f')} tok/s{extra}"
                             + (f" ERROR {run.get('error')[-300:]}" if 'error' in run else ""))
    else:
        lines.append("generation: no result")
    for name in ("spin_step_1b", "spin_step_mistral-7b", "spin_step_mistral-7b_lora16", "spin_step_tiny"):
        r = load(out, name)
        if r is None:
            if name != "spin_step_tiny" and not os.path.exists(os.path.join(out, "spin_step_tiny.json")):
                lines.append(f"{name}: no result")
            continue
        line = (f"SPIN step {r.get('shape')} ({r.get('batch_pairs')} pairs x 2 x {r.get('pair_tokens')} tokens, micro "
                f"{r.get('micro_batch_pairs')}, ckpt {r.get('gradient_checkpointing')}, state "
                f"{r.get('optimizer_state_dtype')}, LoRA r {r.get('lora_r', 0)}): {fmt(r.get('tokens_per_s'), '.0f')} tok/s, MFU "
                f"{fmt(r.get('mfu'), '.1%')} of {fmt(r.get('bf16_matmul_tflops'), '.0f')} TFLOP/s, peak memory "
                f"{fmt(r.get('peak_memory_gib'), '.1f')} GiB")
        if "error" in r:
            line += f" ERROR {r['error'][-300:]}"
        lines.append(line)
    device = next((r.get("device") for r in (lp, gen) if r), "unknown")
    text = f"device: {device}\n" + "\n".join("- " + l for l in lines) + "\n"
    print(text, end="")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"device": device, "lines": lines}, f, indent=1)


if __name__ == "__main__":
    main()
