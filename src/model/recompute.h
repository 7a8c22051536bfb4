// Activation recomputation (gradient checkpointing) as one autograd function.
//
// recompute(fn, input, weights) returns fn(input), computed without grad so that none of
// fn's intermediate activations stay alive; only input is kept. When the backward pass
// reaches the result, fn(input) runs again with grad on a detached copy of input, and the
// upstream gradient is backpropagated through that fresh graph to input and weights.
// Memory for a stack of L layers falls from L x (the layer's activations) to L x (one
// [B, T, C] input) plus one layer's activations at a time, for one extra forward.
//
// Contract: fn must be deterministic (no dropout, no sampling) and may differentiate only
// through input and the listed weights; any other tensor it reads (RoPE tables, masks) is
// treated as a constant. Undefined weights are ignored.
#pragma once
#include <functional>
#include <vector>

#include "core/torch_pch.h"

namespace spinlm {

using RecomputedFn = std::function<at::Tensor(const at::Tensor&)>;

at::Tensor recompute(RecomputedFn fn, const at::Tensor& input, const std::vector<at::Tensor>& weights);

}  // namespace spinlm
