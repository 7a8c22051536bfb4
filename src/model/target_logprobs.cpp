// Chunked target log-probs with a recomputing backward (see target_logprobs.h).
//
// For one position with logits z [V], target y and upstream gradient g:
//   out = z[y] - logsumexp(z),   d out / d z = onehot(y) - softmax(z),
// so grad_z = g * (onehot(y) - p), grad_hidden = grad_z @ W, grad_W += grad_z^T @ hidden.
#include "model/target_logprobs.h"

#include <torch/csrc/autograd/custom_function.h>

#include "core/error.h"

namespace spinlm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// fp32, or fp64 for a double-precision model (finite-difference checks).
at::ScalarType result_type(const at::Tensor& hidden) {
  return hidden.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// Logits of rows [start, start + n): [n, V] in result_type.
at::Tensor chunk_logits(const at::Tensor& hidden, const at::Tensor& weight, int64_t start, int64_t n) {
  return at::mm(hidden.narrow(0, start, n), weight.t()).to(result_type(hidden));
}

struct TargetLogprobsFunction : public torch::autograd::Function<TargetLogprobsFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t chunk) {
    const int64_t N = hidden.size(0);
    at::Tensor valid = targets.ge(0);                      // [N]
    at::Tensor safe_targets = targets.clamp_min(0);        // [N] (an index even where ignored)
    at::Tensor out = at::empty({N}, hidden.options().dtype(result_type(hidden)));
    at::Tensor lse = at::empty({N}, hidden.options().dtype(result_type(hidden)));
    for (int64_t start = 0; start < N; start += chunk) {
      const int64_t n = std::min(chunk, N - start);
      at::Tensor logits = chunk_logits(hidden, weight, start, n);          // [n, V]
      at::Tensor chunk_lse = at::logsumexp(logits, -1);                     // [n]
      at::Tensor target_logit = logits.gather(1, safe_targets.narrow(0, start, n).unsqueeze(1)).squeeze(1);
      out.narrow(0, start, n).copy_(at::where(valid.narrow(0, start, n), target_logit - chunk_lse,
                                              at::zeros({}, out.options())));
      lse.narrow(0, start, n).copy_(chunk_lse);
    }
    ctx->save_for_backward({hidden, weight, safe_targets, valid, lse});
    ctx->saved_data["chunk"] = chunk;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& hidden = saved[0];        // [N, C]
    const at::Tensor& weight = saved[1];        // [V, C]
    const at::Tensor& safe_targets = saved[2];  // [N]
    const at::Tensor& valid = saved[3];         // [N]
    const at::Tensor& lse = saved[4];           // [N]
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const int64_t N = hidden.size(0);
    // Ignored positions get zero upstream gradient, hence none at all.
    at::Tensor grad = grad_outputs[0].to(lse.scalar_type()) * valid.to(lse.scalar_type());  // [N]
    const bool want_hidden = ctx->needs_input_grad(0), want_weight = ctx->needs_input_grad(1);
    at::Tensor grad_hidden = want_hidden ? at::empty_like(hidden) : at::Tensor();
    at::Tensor grad_weight = want_weight ? at::zeros_like(weight) : at::Tensor();
    for (int64_t start = 0; start < N; start += chunk) {
      const int64_t n = std::min(chunk, N - start);
      at::Tensor g = grad.narrow(0, start, n).unsqueeze(1);                               // [n, 1]
      at::Tensor logits = chunk_logits(hidden, weight, start, n);                          // [n, V]
      at::Tensor grad_logits = logits.sub_(lse.narrow(0, start, n).unsqueeze(1)).exp_().mul_(-g);  // -g p
      grad_logits.scatter_add_(1, safe_targets.narrow(0, start, n).unsqueeze(1), g);       // + g onehot
      grad_logits = grad_logits.to(hidden.scalar_type());
      if (want_hidden) {
        at::Tensor rows = grad_hidden.narrow(0, start, n);  // contiguous rows: written in place
        at::mm_out(rows, grad_logits, weight);              // [n, C]
      }
      if (want_weight) grad_weight.addmm_(grad_logits.t(), hidden.narrow(0, start, n));   // [V, C]
    }
    return {grad_hidden, grad_weight, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor chunked_target_logprobs(const at::Tensor& hidden, const at::Tensor& weight,
                                   const at::Tensor& targets, int64_t chunk_positions) {
  check(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
        "target log-probs: hidden [N, C] and weight [V, C] do not match");
  check(targets.dim() == 1 && targets.size(0) == hidden.size(0), "target log-probs: targets must be [N]");
  check(chunk_positions > 0, "target log-probs: chunk_positions must be positive");
  if (targets.numel() > 0) {
    check(targets.max().item<int64_t>() < weight.size(0), "target log-probs: target id ",
          targets.max().item<int64_t>(), " is outside the vocabulary (size ", weight.size(0), ")");
  }
  return TargetLogprobsFunction::apply(hidden, weight, targets, chunk_positions);
}

}  // namespace spinlm
