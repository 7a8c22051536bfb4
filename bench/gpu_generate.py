#!/usr/bin/env python3
"""GPU check 2 (issue 9): generation throughput, spinlm against transformers' generate.

The same model (TinyLlama-1.1B shape, random bf16 weights, Llama-2 tokenizer), the same
prompts (spinlm's prompt_ids are handed to transformers), the same number of new tokens per
row (256; transformers gets min_new_tokens = max_new_tokens, spinlm's rows may stop at EOS,
so each side's rate counts the tokens it actually produced), batch of 64, sampling at
temperature 1, bf16 on the GPU. Rates exclude model loading. Goal: spinlm >= 10x.

spinlm runs three times: as users get it (device decoding loop, step replayed as a CUDA graph,
16 steps per read of the tokens), with --no-cuda-graphs (the same loop launched kernel by
kernel), so a graph that fails to capture, or gains nothing, shows, and with
--steps-per-sync 4. Both runs draw from the same counter-based uniforms: the
share of rows whose tokens agree between them is recorded (bf16 kernels are deterministic
for a fixed shape, so it should be 1 unless capture changed the computation).

--cpu-smoke: tiny model, 4 prompts, 16 tokens, CPU fp32, spinlm only (tests this script).
"""
import json
import os
import re
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_common as common  # noqa: E402

WORDS = ("the model answers every question about rivers mountains numbers stars and small "
         "programs with care while the teacher listens and writes notes on the board").split()


def prompts(count, seed):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        n = int(torch.randint(20, 90, (1,), generator=gen))
        words = [WORDS[int(j)] for j in torch.randint(0, len(WORDS), (n,), generator=gen)]
        out.append(f"Question {i}: " + " ".join(words) + "?")
    return out


def transformers_rate(model_dir, prompt_ids, max_new_tokens, batch_size):
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16).to("cuda").eval()
    tokens, seconds = 0, 0.0
    for first in range(0, len(prompt_ids), batch_size):
        rows = prompt_ids[first:first + batch_size]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[0] * (width - len(r)) + r for r in rows], device="cuda")  # left padding
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device="cuda")
        torch.cuda.synchronize()
        start = time.time()
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=1.0,
                                 top_k=0, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                                 pad_token_id=0)
        torch.cuda.synchronize()
        seconds += time.time() - start
        tokens += (out.shape[1] - width) * len(rows)
    return tokens, seconds, transformers.__version__


def main():
    ap = common.check_parser(240)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    smoke = args.cpu_smoke
    count, new_tokens = (4, 16) if smoke else (args.prompts, args.max_new_tokens)
    device, dtype = ("cpu", "fp32") if smoke else ("cuda", "bf16")
    work = os.path.join(args.work, "work-generate")
    os.makedirs(work, exist_ok=True)
    model_dir = os.path.join(work, "model")
    shape = "tiny" if smoke else "1b"
    common.make_model(model_dir, shape, dtype=torch.float32 if smoke else torch.bfloat16, seed=3,
                      device="cpu" if smoke else "cuda")
    result = {"device": "cpu" if smoke else common.gpu_name(), "shape": shape, "prompts": count,
              "max_new_tokens": new_tokens, "batch_size": count}
    if not os.path.exists(os.path.join(model_dir, "tokenizer.json")):
        result["error"] = f"no tokenizer: carry {os.path.relpath(common.LLAMA2_TOKENIZER, common.REPO)}"
        common.save_result(args.out, "generate", result)
        return 1
    inp, out = os.path.join(work, "prompts.jsonl"), os.path.join(work, "generated.jsonl")
    with open(inp, "w") as f:
        for p in prompts(count, 4):
            f.write(json.dumps({"prompt": p, "response": "-"}) + "\n")
    def spinlm_rate(output, extra, log_name, timeout):
        if os.path.exists(output):
            os.remove(output)
        code, wall, tail = common.run_spinlm(
            args.spinlm, ["generate", "--model", model_dir, "--input", inp, "--output", output, "--device", device,
                          "--dtype", dtype, "--batch-size", count, "--max-new-tokens", new_tokens, "--temperature",
                          1.0, "--seed", 5, "--prompt-format", "spin-legacy", "--no-progress"] + extra,
            timeout=timeout, log_path=os.path.join(args.out, log_name))
        if code != 0:
            return {"error": f"exit {code}: {tail[-500:]}", "wall_s": wall}, None
        m = re.search(r"(\d+) new tokens in ([0-9.e+-]+) s", tail)
        rows = common.read_jsonl(output)
        produced = sum(len(r["generated_ids"]) for r in rows)
        seconds = float(m.group(2)) if m else wall
        graph = re.search(r"cuda graph (yes|no)", tail)
        return {"new_tokens": produced, "seconds": seconds, "tokens_per_s": produced / seconds,
                "wall_s_with_load": wall, "cuda_graph": graph.group(1) if graph else "unknown",
                "options": " ".join(extra) or "defaults"}, rows

    # The users' default first; the run without graphs gets what is left of a third of the time.
    result["spinlm"], rows = spinlm_rate(out, [], "generate.spinlm.log", args.timeout * 2 / 3)
    if rows is None:
        common.save_result(args.out, "generate", result)
        return 1
    eager_out = os.path.join(work, "generated-eager.jsonl")
    result["spinlm_no_cuda_graphs"], eager_rows = spinlm_rate(eager_out, ["--no-cuda-graphs"],
                                                              "generate.spinlm-eager.log", args.timeout / 3)
    if eager_rows is not None:
        same = sum(a["generated_ids"] == b["generated_ids"] for a, b in zip(rows, eager_rows))
        result["rows_equal_with_and_without_graphs"] = same / max(len(rows), 1)
    # Shorter windows (more reads of the sampled tokens, fewer wasted steps after a row ends):
    # informs the --steps-per-sync default (16).
    short_out = os.path.join(work, "generated-window4.jsonl")
    result["spinlm_steps_per_sync_4"], _ = spinlm_rate(short_out, ["--steps-per-sync", "4"],
                                                       "generate.spinlm-window4.log", args.timeout / 3)
    if smoke:
        result["transformers"] = "skipped (--cpu-smoke)"
    else:
        tokens, secs, version = transformers_rate(model_dir, [r["prompt_ids"] for r in rows], new_tokens, count)
        result["transformers"] = {"version": version, "new_tokens": tokens, "seconds": secs,
                                  "tokens_per_s": tokens / secs}
        result["speedup"] = result["spinlm"]["tokens_per_s"] / result["transformers"]["tokens_per_s"]
        result["goal"] = "speedup >= 10"
        result["pass"] = result["speedup"] >= 10
    common.save_result(args.out, "generate", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
