#!/usr/bin/env python3
"""GPU check 1 (issue 9): spinlm's per-token log-probs against transformers.

A small Llama with random weights (std 0.1, so that predictions are far from uniform) is
written by this script; `spinlm score` computes log p(ids[t] | ids[<t]) for random rows on
the GPU in fp32 and in bf16, and in fp32 with --packed (the padding-free stream training and
evaluation score, whose attention on a GPU runs as causal views through the fused kernels);
transformers (fp32, eager attention, TF32 off, one unpadded row at a time) gives the
reference. Pass: fp32 per-token max |diff| <= 1e-4 (padded and packed); bf16 relative error
of the summed row log-probs <= 2e-2 (bf16 has 8 significant bits: ~4e-3 per rounding).

--cpu-smoke: the same on the CPU with the tiny model, against the project's torch-only twin
tests/reference/llama_reference.py (no transformers needed), to test this script.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_common as common  # noqa: E402


def reference_transformers(model_dir, rows, device):
    import transformers
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                              attn_implementation="eager").to(device).eval()
    out = []
    with torch.no_grad():
        for ids in rows:
            x = torch.tensor([ids], device=device)
            logp = torch.log_softmax(model(x).logits[0].float(), -1)  # [T, V]
            out.append(logp[:-1].gather(1, x[0, 1:, None])[:, 0].double().cpu())
    return out


def reference_twin(model_dir, rows):
    sys.path.insert(0, os.path.join(common.REPO, "tests", "reference"))
    import llama_reference as ref
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = ref.Config(json.load(f))
    weights = {name: t.to(torch.float64) for name, t in ref.load_weights(model_dir).items()}
    with torch.no_grad():
        return [ref.sequence_logprobs(ids, weights, cfg, torch.float64).double() for ids in rows]


def spinlm_logprobs(spinlm, model_dir, rows, work, device, dtype, timeout, name, extra):
    inp, out = os.path.join(work, "rows.jsonl"), os.path.join(work, f"score-{name}.jsonl")
    with open(inp, "w") as f:
        for ids in rows:
            f.write(json.dumps({"ids": ids}) + "\n")
    code, seconds, tail = common.run_spinlm(
        spinlm, ["score", "--model", model_dir, "--input", inp, "--output", out, "--device", device,
                 "--dtype", dtype, "--batch-size", "8"] + extra, timeout=timeout)
    if code != 0:
        return None, tail
    return [torch.tensor(r["logprobs"], dtype=torch.float64) for r in common.read_jsonl(out)], None


def compare(got, ref):
    per_token = max(float((g - r).abs().max()) for g, r in zip(got, ref))
    rel_sum = max(abs(float(g.sum() - r.sum())) / abs(float(r.sum())) for g, r in zip(got, ref))
    return {"max_abs_token_diff": per_token, "max_rel_sum_error": rel_sum}


def main():
    args = common.check_parser(120, "seconds for both spinlm runs together").parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.work, "work-logprobs")
    os.makedirs(work, exist_ok=True)
    device = "cpu" if args.cpu_smoke else "cuda"
    shape = "tiny" if args.cpu_smoke else "small"
    model_dir = os.path.join(work, "model")
    common.make_model(model_dir, shape, dtype=torch.float32, std=0.1, seed=1,
                      device="cpu" if args.cpu_smoke else "cuda")
    gen = torch.Generator().manual_seed(2)
    lengths = [17, 64, 200, 511] if args.cpu_smoke else [17, 64, 200, 511, 1024, 333, 90, 700]
    rows = [torch.randint(3, 32000, (n,), generator=gen).tolist() for n in lengths]
    ref = reference_twin(model_dir, rows) if args.cpu_smoke else reference_transformers(model_dir, rows, device)

    result = {"device": common.gpu_name() if not args.cpu_smoke else "cpu", "shape": shape,
              "rows": len(rows), "tokens": sum(lengths),
              "reference": "llama_reference.py fp64" if args.cpu_smoke else "transformers fp32 eager"}
    ok = True
    runs = (("fp32", "fp32", [], "max_abs_token_diff", 1e-4), ("bf16", "bf16", [], "max_rel_sum_error", 2e-2),
            ("fp32_packed", "fp32", ["--packed"], "max_abs_token_diff", 1e-4))
    for name, dtype, extra, limit_key, limit in runs:
        got, error = spinlm_logprobs(args.spinlm, model_dir, rows, work, device, dtype, args.timeout / len(runs),
                                     name, extra)
        if got is None:
            result[name] = {"error": error[-500:]}
            ok = False
            continue
        stats = compare(got, ref)
        stats["pass"] = stats[limit_key] <= limit
        stats["limit"] = f"{limit_key} <= {limit}"
        ok = ok and stats["pass"]
        result[name] = stats
    result["pass"] = ok
    common.save_result(args.out, "logprobs", result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
