#!/usr/bin/env python3
"""GPU checks 3 and 4 (issue 9): SPIN training steps at real shapes.

`spinlm train` on random-weight models (bf16) with 1024-token pairs (prompt 256, real and
generated answers 768 tokens each: every pair is two 1024-token sequences). Reported per
run: tokens/s of the optimizer steps (metrics.jsonl; the first step is warm-up and left out
when there are more), model FLOPs utilisation against the bf16 matrix rate torch reaches on
this card in the same run, and the peak GPU memory in use (nvidia-smi, sampled every 0.25 s).

FLOPs per token (PaLM's MFU, appendix B): 6 N + 12 L C T, N = parameters in matrix products
(all but the embedding and norms, the LM head included), L layers, C width, T = 1024. The
opponent's log-probs (one forward, before the steps) are not in the step rate.

  --shape 1b          TinyLlama-1.1B shape; goal MFU >= 40 %
  --shape mistral-7b  Mistral-7B shape with --gradient-checkpointing and bf16 optimizer state
                      (fp32 state + fp32 master weights would need ~87 GB before activations)
  --lora-r R          train a LoRA adapter (rank R, alpha 2R, all-linear) on the frozen model
  --cpu-smoke         the tiny model on the CPU, 64-token pairs (tests this script)
"""
import json
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_common as common  # noqa: E402


def write_pairs(path, count, prompt_len, response_len, vocab, seed):
    gen = torch.Generator().manual_seed(seed)
    with open(path, "w") as f:
        for _ in range(count):
            ids = lambda n: torch.randint(3, vocab, (n,), generator=gen).tolist()  # noqa: E731
            f.write(json.dumps({"prompt_ids": [1] + ids(prompt_len - 1), "real_ids": ids(response_len),
                                "generated_ids": ids(response_len)}) + "\n")


def main():
    ap = common.check_parser(240)
    ap.add_argument("--shape", default="1b", choices=["1b", "mistral-7b"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16, help="pairs per optimizer step")
    ap.add_argument("--micro-batch-size", type=int, default=8, help="pairs per forward/backward")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--optimizer-state-dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--lora-r", type=int, default=0, help="> 0: train a LoRA adapter of this rank on every linear")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    smoke = args.cpu_smoke
    shape = "tiny" if smoke else args.shape
    prompt_len, response_len = (16, 48) if smoke else (256, 768)
    if smoke:
        args.steps, args.batch_size, args.micro_batch_size = 2, 4, 2
    name = f"spin_step_{shape}" + (f"_lora{args.lora_r}" if args.lora_r > 0 else "")
    work = os.path.join(args.work, "work-" + name)
    os.makedirs(work, exist_ok=True)
    model_dir = os.path.join(work, "model")
    cfg = common.make_model(model_dir, shape, dtype=torch.float32 if smoke else torch.bfloat16, seed=7,
                            device="cpu" if smoke else "cuda")
    for extra in ("tokenizer.json", "tokenizer_config.json"):  # pairs are token ids: no tokenizer needed
        path = os.path.join(model_dir, extra)
        if os.path.exists(path):
            os.remove(path)
    data = os.path.join(work, "pairs.jsonl")
    write_pairs(data, args.steps * args.batch_size, prompt_len, response_len, cfg["vocab_size"], 8)
    out = os.path.join(work, "trained")
    command = ["train", "--model", model_dir, "--data", data, "--output", out, "--epochs", 1,
               "--batch-size", args.batch_size, "--micro-batch-size", args.micro_batch_size,
               "--max-length", prompt_len + response_len, "--max-prompt-length", prompt_len,
               "--learning-rate", 5e-7, "--logging-steps", 1, "--warmup-ratio", 0,
               "--device", "cpu" if smoke else "cuda", "--dtype", "fp32" if smoke else "bf16",
               "--optimizer-state-dtype", args.optimizer_state_dtype]
    if args.gradient_checkpointing:
        command.append("--gradient-checkpointing")
    if args.lora_r > 0:
        command += ["--lora-r", args.lora_r, "--lora-alpha", 2 * args.lora_r, "--lora-target-modules", "all-linear"]
    peak_tflops = None if smoke else common.measured_bf16_matmul_tflops()
    if not smoke:
        torch.cuda.empty_cache()  # give the matmul test's memory back before spinlm starts
    with common.MemorySampler() as memory:
        code, wall, tail = common.run_spinlm(args.spinlm, command, timeout=args.timeout,
                                             log_path=os.path.join(args.out, name + ".spinlm.log"))
    result = {"device": "cpu" if smoke else common.gpu_name(), "shape": shape,
              "parameters": sum(int(torch.Size(s).numel()) for _, s in common.parameter_shapes(cfg)),
              "pair_tokens": prompt_len + response_len, "batch_pairs": args.batch_size,
              "micro_batch_pairs": args.micro_batch_size, "gradient_checkpointing": args.gradient_checkpointing,
              "optimizer_state_dtype": args.optimizer_state_dtype, "lora_r": args.lora_r, "wall_s": wall,
              "peak_memory_gib": memory.peak_mib / 1024 if memory.peak_mib else None}
    metrics_path = os.path.join(out, "metrics.jsonl")
    rows = common.read_jsonl(metrics_path) if os.path.exists(metrics_path) else []
    rates = [r["tokens_per_second"] for r in rows if "tokens_per_second" in r and "loss" in r]
    if code != 0 or not rates:
        result["error"] = f"exit {code}: {tail[-600:]}"
        result["steps_done"] = len(rates)
        common.save_result(args.out, name, result)
        return 1
    measured = rates[1:] if len(rates) > 1 else rates
    tokens_per_s = statistics.median(measured)
    flops_per_token = 6 * common.matmul_parameters(cfg) + 12 * cfg["num_hidden_layers"] * cfg["hidden_size"] * (
        prompt_len + response_len)
    result.update(steps=len(rates), tokens_per_s=tokens_per_s, step_rates=rates,
                  first_loss=rows[0].get("loss"), flops_per_token=flops_per_token)
    if peak_tflops:
        result["bf16_matmul_tflops"] = peak_tflops
        result["mfu"] = tokens_per_s * flops_per_token / (peak_tflops * 1e12)
        if shape == "1b":
            result["goal"] = "mfu >= 0.40"
            result["pass"] = result["mfu"] >= 0.40
    common.save_result(args.out, name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
