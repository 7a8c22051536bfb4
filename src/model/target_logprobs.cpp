// Chunked target log-probs over the scored positions only (see target_logprobs.h).
//
// For one position with logits z [V], target y and upstream gradient g:
//   out = z[y] - logsumexp(z),   d out / d z = onehot(y) - softmax(z),
// so grad_z = g * (onehot(y) - p), grad_hidden = grad_z @ W, grad_W += grad_z^T @ hidden.
//
// Positions whose target is negative get 0 and no gradient, so they never go through the LM
// head: in SPIN and SFT only the response tokens are scored (about half of each row), and the
// LM head [V, C] is a quarter of a small model's training FLOPs.
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

// Scored positions of targets [N]: their indices [M], or an undefined tensor when all N are
// scored (no gather needed).
at::Tensor scored_rows(const at::Tensor& targets) {
  at::Tensor valid = targets.ge(0);  // [N]
  if (valid.all().item<bool>()) return at::Tensor();
  return valid.nonzero().squeeze(1);  // [M]
}

struct TargetLogprobsFunction : public torch::autograd::Function<TargetLogprobsFunction> {
  // keep_probs: gradient will be needed; if the scored rows fit in one chunk, that chunk's
  // exp(z - max) stays alive for backward (it would be recomputed there otherwise, an extra
  // [M, C] x [C, V] matmul), so memory still never holds more than one chunk of [*, V].
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t chunk, bool keep_probs) {
    const int64_t N = hidden.size(0);
    const at::Tensor rows = scored_rows(targets);                                     // [M] or undefined
    const at::Tensor h = rows.defined() ? hidden.index_select(0, rows) : hidden;      // [M, C]
    const at::Tensor t = rows.defined() ? targets.index_select(0, rows) : targets;    // [M]
    const int64_t M = h.size(0);
    const auto options = hidden.options().dtype(result_type(hidden));
    at::Tensor values = at::empty({M}, options);  // [M] log p(target)
    at::Tensor lse = at::empty({M}, options);     // [M] logsumexp of each row's logits
    at::Tensor exps, sums;                        // [M, V] exp(z - max) and [M, 1] its row sums, when kept
    keep_probs = keep_probs && M > 0 && M <= chunk;
    for (int64_t start = 0; start < M; start += chunk) {
      const int64_t n = std::min(chunk, M - start);
      at::Tensor logits = chunk_logits(h, weight, start, n);                           // [n, V]
      at::Tensor target_logit = logits.gather(1, t.narrow(0, start, n).unsqueeze(1));  // [n, 1]
      // logsumexp in place: the chunk becomes exp(z - max).
      at::Tensor max = at::amax(logits, {1}, /*keepdim=*/true);                        // [n, 1]
      at::Tensor sum = logits.sub_(max).exp_().sum(1, /*keepdim=*/true);              // [n, 1]
      at::Tensor chunk_lse = sum.log().add_(max);                                      // [n, 1]
      values.narrow(0, start, n).copy_((target_logit - chunk_lse).squeeze(1));
      lse.narrow(0, start, n).copy_(chunk_lse.squeeze(1));
      if (keep_probs) {
        exps = logits;
        sums = sum;
      }
    }
    at::Tensor out = values;
    if (rows.defined()) out = at::zeros({N}, options).index_copy_(0, rows, values);  // [N], 0 where unscored
    ctx->save_for_backward({h, weight, t, lse});
    ctx->saved_data["rows"] = rows.defined() ? rows : at::empty({0}, targets.options());
    ctx->saved_data["all_rows"] = !rows.defined();
    ctx->saved_data["N"] = N;
    ctx->saved_data["chunk"] = chunk;
    // Not a saved variable: backward turns it into the logits' gradient in place and then
    // drops it, which a saved variable's version check would forbid.
    if (exps.defined()) {
      ctx->saved_data["exps"] = exps;
      ctx->saved_data["sums"] = sums;
    }
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& h = saved[0];       // [M, C]
    const at::Tensor& weight = saved[1];  // [V, C]
    const at::Tensor& t = saved[2];       // [M]
    const at::Tensor& lse = saved[3];     // [M]
    const bool all_rows = ctx->saved_data["all_rows"].toBool();
    const at::Tensor rows = ctx->saved_data["rows"].toTensor();  // [M] unless all_rows
    const int64_t N = ctx->saved_data["N"].toInt(), chunk = ctx->saved_data["chunk"].toInt();
    const int64_t M = h.size(0);
    at::Tensor exps, sums;  // [M, V], [M, 1] when the forward kept its single chunk
    if (ctx->saved_data.count("exps")) {
      exps = ctx->saved_data["exps"].toTensor();
      sums = ctx->saved_data["sums"].toTensor();
      ctx->saved_data.erase("exps");  // used up below; a second backward recomputes
      ctx->saved_data.erase("sums");
    }
    // Only the scored positions have an upstream gradient that matters.
    at::Tensor grad = grad_outputs[0].to(lse.scalar_type());  // [N]
    if (!all_rows) grad = grad.index_select(0, rows);          // [M]
    const bool want_hidden = ctx->needs_input_grad(0), want_weight = ctx->needs_input_grad(1);
    at::Tensor grad_h = want_hidden ? at::empty_like(h) : at::Tensor();                     // [M, C]
    at::Tensor grad_weight;                                                                 // [V, C]
    if (want_weight && (M == 0 || M > chunk)) grad_weight = at::zeros_like(weight);
    for (int64_t start = 0; start < M; start += chunk) {
      const int64_t n = std::min(chunk, M - start);
      at::Tensor g = grad.narrow(0, start, n).unsqueeze(1);  // [n, 1]
      at::Tensor grad_logits =                                // -g p, [n, V]
          exps.defined() ? exps.mul_(-g / sums)
                         : chunk_logits(h, weight, start, n).sub_(lse.narrow(0, start, n).unsqueeze(1)).exp_().mul_(-g);
      grad_logits.scatter_add_(1, t.narrow(0, start, n).unsqueeze(1), g);  // + g onehot
      grad_logits = grad_logits.to(h.scalar_type());
      if (want_hidden) {
        at::Tensor out_rows = grad_h.narrow(0, start, n);  // contiguous rows: written in place
        at::mm_out(out_rows, grad_logits, weight);         // [n, C]
      }
      if (want_weight) {
        at::Tensor h_rows = h.narrow(0, start, n);
        if (grad_weight.defined()) {
          grad_weight.addmm_(grad_logits.t(), h_rows);
        } else {
          grad_weight = at::mm(grad_logits.t(), h_rows);  // one chunk: no zero fill
        }
      }
    }
    at::Tensor grad_hidden = grad_h;
    if (want_hidden && !all_rows) {
      grad_hidden = at::zeros({N, h.size(1)}, h.options()).index_copy_(0, rows, grad_h);  // [N, C]
    }
    return {grad_hidden, grad_weight, at::Tensor(), at::Tensor(), at::Tensor()};
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
  const bool keep_probs = at::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad());
  return TargetLogprobsFunction::apply(hidden, weight, targets, chunk_positions, keep_probs);
}

}  // namespace spinlm
