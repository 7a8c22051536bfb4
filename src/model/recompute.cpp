// Gradient checkpointing (see recompute.h) as a torch::autograd::Function.
//
// torch's custom Function cannot store a C++ closure in its context's saved_data directly,
// so the closure travels inside a CustomClassHolder capsule (an IValue).
#include "model/recompute.h"

#include <torch/csrc/autograd/custom_function.h>

#include "core/error.h"

namespace spinlm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct RecomputedFnHolder : torch::CustomClassHolder {
  explicit RecomputedFnHolder(RecomputedFn f) : fn(std::move(f)) {}
  RecomputedFn fn;
};

struct RecomputeFunction : public torch::autograd::Function<RecomputeFunction> {
  // Runs with grad mode off (torch's Function::apply disables it around forward).
  static at::Tensor forward(AutogradContext* ctx, c10::intrusive_ptr<RecomputedFnHolder> holder,
                            const at::Tensor& input, at::TensorList weights) {
    at::Tensor output = holder->fn(input);
    std::vector<at::Tensor> saved = {input};
    saved.insert(saved.end(), weights.begin(), weights.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["fn"] = at::IValue::make_capsule(holder);
    return output;
  }

  // grad_outputs[0]: d loss / d output. Returns one entry per forward argument: nothing for
  // the closure, then input's gradient, then one per weight.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    variable_list saved = ctx->get_saved_variables();  // input, weights...
    auto holder = c10::static_intrusive_pointer_cast<RecomputedFnHolder>(ctx->saved_data["fn"].toCapsule());
    const size_t num_weights = saved.size() - 1;
    // The recomputed graph starts from a detached copy of the input, so backpropagating
    // through it stops at this layer instead of running on into the earlier layers.
    at::Tensor input = saved[0].detach().requires_grad_(ctx->needs_input_grad(0));
    at::Tensor output;
    {
      at::AutoGradMode grad_on(true);
      output = holder->fn(input);
    }
    // Differentiate with respect to what needs a gradient only (autograd::grad rejects the rest).
    variable_list wrt;
    std::vector<size_t> slot;  // position in the result of each entry of wrt
    if (ctx->needs_input_grad(0)) {
      wrt.push_back(input);
      slot.push_back(1);
    }
    for (size_t i = 0; i < num_weights; ++i) {
      if (ctx->needs_input_grad(i + 1) && saved[i + 1].requires_grad()) {
        wrt.push_back(saved[i + 1]);
        slot.push_back(i + 2);
      }
    }
    variable_list result(2 + num_weights);
    if (wrt.empty() || !output.requires_grad()) return result;
    variable_list grads = torch::autograd::grad({output}, wrt, {grad_outputs[0]}, /*retain_graph=*/false,
                                                /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < grads.size(); ++k) result[slot[k]] = grads[k];
    return result;
  }
};

}  // namespace

at::Tensor recompute(RecomputedFn fn, const at::Tensor& input, const std::vector<at::Tensor>& weights) {
  check(static_cast<bool>(fn), "recompute: no function to run");
  std::vector<at::Tensor> defined;
  for (const at::Tensor& w : weights) {
    if (w.defined()) defined.push_back(w);
  }
  auto holder = c10::make_intrusive<RecomputedFnHolder>(std::move(fn));
  return RecomputeFunction::apply(holder, input, at::TensorList(defined));
}

}  // namespace spinlm
