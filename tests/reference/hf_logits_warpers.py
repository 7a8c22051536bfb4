"""Independent reference for spinlm's sampling filters: transformers' logits warpers as
GenerationMixin applies them with do_sample=True (TemperatureLogitsWarper, TopKLogitsWarper,
TopPLogitsWarper, MinPLogitsWarper, in that order, min_tokens_to_keep=1), written here in
plain torch.

usage: hf_logits_warpers.py CASES.json OUT.json
CASES.json: {"logits": [[...], ...] (B x V), "cases": [{"temperature":..,"top_k":..,"top_p":..,"min_p":..}, ...]}
OUT.json:   {"probs": [B x V per case]} with the softmax of the filtered scores (filtered = 0).
"""
import json
import sys

import torch


def temperature_warper(scores, temperature):
    return scores / temperature


def top_k_warper(scores, top_k, min_tokens_to_keep=1):
    top_k = min(max(top_k, min_tokens_to_keep), scores.size(-1))
    kth_value = torch.topk(scores, top_k)[0][..., -1, None]
    return scores.masked_fill(scores < kth_value, -float("inf"))


def top_p_warper(scores, top_p, min_tokens_to_keep=1):
    # transformers calls torch.sort(scores, descending=False): equal scores then come in
    # whatever order the device's sort kernel leaves them (it differs between CPU and CUDA),
    # which decides which of several tied tokens at the nucleus boundary survive. spinlm
    # fixes that order as index order (a stable sort) on every device; this reference asks
    # torch for the same, everything else is transformers' code path.
    sorted_logits, sorted_indices = torch.sort(scores, descending=False, stable=True)
    cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    sorted_remove = cumulative_probs <= (1 - top_p)
    sorted_remove[..., -min_tokens_to_keep:] = 0
    remove = sorted_remove.scatter(1, sorted_indices, sorted_remove)
    return scores.masked_fill(remove, -float("inf"))


def min_p_warper(scores, min_p, min_tokens_to_keep=1):
    probs = torch.softmax(scores, dim=-1)
    top_probs, _ = probs.max(dim=-1, keepdim=True)
    remove = probs < min_p * top_probs
    sorted_indices = torch.argsort(scores, descending=True, dim=-1)
    sorted_remove = torch.gather(remove, dim=-1, index=sorted_indices)
    sorted_remove[..., :min_tokens_to_keep] = False
    remove = sorted_remove.scatter(1, sorted_indices, sorted_remove)
    return scores.masked_fill(remove, -float("inf"))


def warp(scores, case):
    # The conditions under which GenerationMixin adds each warper.
    temperature = case.get("temperature", 1.0)
    top_k = case.get("top_k", 0)
    top_p = case.get("top_p", 1.0)
    min_p = case.get("min_p", None)
    if temperature is not None and temperature != 1.0:
        scores = temperature_warper(scores, temperature)
    if top_k is not None and top_k != 0:
        scores = top_k_warper(scores, top_k)
    if top_p is not None and top_p < 1.0:
        scores = top_p_warper(scores, top_p)
    if min_p is not None and min_p > 0:
        scores = min_p_warper(scores, min_p)
    return scores


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    logits = torch.tensor(spec["logits"], dtype=torch.float32)
    out = []
    for case in spec["cases"]:
        probs = warp(logits.clone(), case).double().softmax(dim=-1)
        out.append(probs.tolist())
    with open(sys.argv[2], "w") as f:
        json.dump({"probs": out}, f)


if __name__ == "__main__":
    main()
