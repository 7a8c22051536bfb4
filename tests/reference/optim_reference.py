#!/usr/bin/python3
"""Independent reference for spinlm's optimizers and LR schedules (src/train/optimizer.cpp,
schedule.cpp): torch.optim.RMSprop / AdamW run on the same parameters and gradients, and
transformers' get_scheduler multipliers re-implemented from transformers' optimization.py
formulas (transformers itself is not installed here).

Usage: optim_reference.py INPUT.json OUTPUT.json
INPUT: {"kind": "rmsprop"|"adamw", "weight_decay": w, "params": [[..], ..],
        "shapes": [[..], ..], "grads": [step][param][..], "lrs": [..],
        "schedules": [{"kind", "total", "warmup_ratio", "base_lr"}]}
OUTPUT: {"params": [step][param][..] after each step, "schedules": [[lr per step 0..total]]}
"""
import json
import math
import sys

import torch


def multiplier(kind, step, total, warmup):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    if kind == "linear":
        return max(0.0, float(total - step) / float(max(1, total - warmup)))
    if kind == "cosine":
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    if kind == "constant":
        return 1.0
    raise SystemExit("unknown schedule " + kind)


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    params = [torch.tensor(p, dtype=torch.float32).reshape(s).requires_grad_(True)
              for p, s in zip(spec["params"], spec["shapes"])]
    if not params:
        opt = None
    elif spec["kind"] == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=1.0, weight_decay=spec["weight_decay"])  # alpha .99, eps 1e-8
    else:
        opt = torch.optim.AdamW(params, lr=1.0, weight_decay=spec["weight_decay"])
    history = []
    for grads, lr in zip(spec["grads"], spec["lrs"]):
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=torch.float32).reshape(p.shape)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        history.append([p.detach().reshape(-1).tolist() for p in params])
    schedules = []
    for s in spec["schedules"]:
        warmup = math.ceil(s["total"] * s["warmup_ratio"])
        schedules.append([s["base_lr"] * multiplier(s["kind"], step, s["total"], warmup)
                          for step in range(s["total"] + 1)])
    with open(sys.argv[2], "w") as f:
        json.dump({"params": history, "schedules": schedules}, f)


if __name__ == "__main__":
    main()
