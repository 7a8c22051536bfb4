#!/usr/bin/python3
"""Independent reference for spinlm's SPIN loss (src/train/losses.cpp, spin_trainer.cpp).

Written from TRL's DPOTrainer.dpo_loss semantics on top of llama_reference.py's model (which
shares no code with spinlm): summed response log-probs of each sequence prompt + response,
logits h = (pi_real - ref_real) - (pi_gen - ref_gen) and
  logistic (TRL "sigmoid")  -logsigmoid(beta h)
  hinge                     relu(1 - beta h)
  exponential               exp(-beta h)
  ipo                       (h - 1/(2 beta))^2 on per-token MEAN log-probs (TRL)
plus sft_weight * (real response NLL per token), averaged over the pairs.

With --packed the log-probs come instead from ONE row holding every pair as prompt, real
answer, generated answer: RoPE positions restart after the prompt for each answer, each
answer attends to its prompt and itself, no pair sees another (a block-diagonal mask built
here from that rule), and each answer's first token is predicted by its prompt's last.

Usage: spin_reference.py --model DIR --input BATCH.json --output OUT.safetensors [--packed]
BATCH.json: {"loss": "logistic", "beta": 0.1, "sft_weight": 0.0,
             "pairs": [{"prompt": [..], "real": [..], "generated": [..],
                        "ref_real": float, "ref_generated": float}, ...]}
OUT: "loss" [1], "logps.real" [m], "logps.generated" [m], "rewards.real" [m],
     "rewards.generated" [m], and "grad.<parameter>" for every parameter (float64).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402


def response_logprob(prompt, response, weights, cfg):
    # logprobs[t] = log p(ids[t+1] | ids[<=t]); the response tokens are ids[len(prompt):].
    logprobs = ref.sequence_logprobs(prompt + response, weights, cfg, torch.float64)
    return logprobs[len(prompt) - 1:].sum()


def packed_response_logprobs(pairs, weights, cfg):
    """[(real, generated)] summed log-probs of every pair, from one packed row."""
    ids, positions, owner, part, spans = [], [], [], [], []
    for index, pair in enumerate(pairs):
        prompt_last = len(ids) + len(pair["prompt"]) - 1
        for kind, tokens in ((0, pair["prompt"]), (1, pair["real"]), (2, pair["generated"])):
            start = len(ids)
            offset = 0 if kind == 0 else len(pair["prompt"])
            for t, token in enumerate(tokens):
                ids.append(token)
                positions.append(offset + t)
                owner.append(index)
                part.append(kind)
            if kind > 0:
                # token t of the answer is predicted by the row position before it in its view
                sources = [prompt_last] + list(range(start, start + len(tokens) - 1))
                spans.append((index, kind, sources, list(tokens)))
    owner_t, part_t, pos_t = torch.tensor(owner), torch.tensor(part), torch.tensor(positions)
    n = len(ids)
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    allowed = (j <= i) & (owner_t[None, :] == owner_t[:, None])
    allowed = allowed & ((part_t[None, :] == 0) | (part_t[None, :] == part_t[:, None]))
    if cfg.sliding_window:
        allowed = allowed & (pos_t[:, None] - pos_t[None, :] < cfg.sliding_window)
    logp = ref.row_logprobs(ids, positions, allowed, weights, cfg, torch.float64)
    sums = {}
    for index, kind, sources, tokens in spans:
        sums[(index, kind)] = logp[torch.tensor(sources), torch.tensor(tokens)].sum()
    return [(sums[(k, 1)], sums[(k, 2)]) for k in range(len(pairs))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--packed", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = ref.Config(json.load(f))
    weights = {n: t.to(torch.float64).requires_grad_(True) for n, t in ref.load_weights(args.model).items()}
    with open(args.input) as f:
        batch = json.load(f)
    kind, beta, sft_weight = batch["loss"], float(batch["beta"]), float(batch.get("sft_weight", 0.0))
    pi_real, pi_gen, ref_real, ref_gen, n_real, n_gen = [], [], [], [], [], []
    packed = packed_response_logprobs(batch["pairs"], weights, cfg) if args.packed else None
    for index, pair in enumerate(batch["pairs"]):
        if packed:
            pi_real.append(packed[index][0])
            pi_gen.append(packed[index][1])
        else:
            pi_real.append(response_logprob(pair["prompt"], pair["real"], weights, cfg))
            pi_gen.append(response_logprob(pair["prompt"], pair["generated"], weights, cfg))
        ref_real.append(pair["ref_real"])
        ref_gen.append(pair["ref_generated"])
        n_real.append(len(pair["real"]))
        n_gen.append(len(pair["generated"]))
    pi_real, pi_gen = torch.stack(pi_real), torch.stack(pi_gen)
    ref_real = torch.tensor(ref_real, dtype=torch.float64)
    ref_gen = torch.tensor(ref_gen, dtype=torch.float64)
    n_real = torch.tensor(n_real, dtype=torch.float64)
    n_gen = torch.tensor(n_gen, dtype=torch.float64)
    nll_real = -pi_real / n_real
    if kind == "ipo":
        pi_real, pi_gen = pi_real / n_real, pi_gen / n_gen
        ref_real, ref_gen = ref_real / n_real, ref_gen / n_gen
    h = (pi_real - ref_real) - (pi_gen - ref_gen)
    if kind in ("logistic", "sigmoid"):
        losses = -torch.nn.functional.logsigmoid(beta * h)
    elif kind == "hinge":
        losses = torch.relu(1 - beta * h)
    elif kind == "exponential":
        losses = torch.exp(-beta * h)
    elif kind == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    else:
        raise SystemExit("unknown loss " + kind)
    loss = (losses + sft_weight * nll_real).mean()
    loss.backward()
    out = {
        "loss": loss.detach().reshape(1),
        "logps.real": pi_real.detach(),
        "logps.generated": pi_gen.detach(),
        "rewards.real": (beta * (pi_real - ref_real)).detach(),
        "rewards.generated": (beta * (pi_gen - ref_gen)).detach(),
    }
    for name, tensor in weights.items():
        if cfg.tied and name == "lm_head.weight":
            continue
        out["grad." + name] = tensor.grad if tensor.grad is not None else torch.zeros_like(tensor)
    ref.write_safetensors(args.output, out)


if __name__ == "__main__":
    main()
