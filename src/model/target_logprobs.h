// Log-probabilities of target tokens under an LM head, chunk by chunk over positions: the
// memory peak of DPO/SPIN-style training is the full-vocabulary fp32 logits [N, V], so
// neither the forward nor the backward ever holds more than one chunk of them. Only the
// scored positions (target >= 0) go through the LM head: SPIN and SFT score the response
// tokens only, and the head is a large share of a small model's FLOPs.
#pragma once
#include "core/torch_pch.h"

namespace spinlm {

// hidden [N, C], weight [V, C] (the LM head), targets [N] int64 -> [N] fp32 (fp64 for a
// double-precision model) with
// log softmax(hidden @ weight^T)[n, targets[n]], and 0 (no gradient) where targets[n] < 0.
// A custom autograd function giving gradients to hidden and weight (whichever require grad).
// When the scored positions fit in one chunk, the forward keeps that chunk's softmax for the
// backward; with several chunks the backward recomputes each chunk's logits.
at::Tensor chunked_target_logprobs(const at::Tensor& hidden, const at::Tensor& weight,
                                   const at::Tensor& targets, int64_t chunk_positions);

}  // namespace spinlm
