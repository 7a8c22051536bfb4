// Optimizers over a model's parameter tensors, numerically matching torch.optim's
// single-tensor implementations (torch 1.13 / 2.x, foreach=False, no momentum, not centered,
// not amsgrad, maximize=False):
//   RMSprop: v = alpha v + (1 - alpha) g^2;  p -= lr * g / (sqrt(v) + eps)   (no bias correction)
//            weight decay is L2 (g += wd p), as torch.optim.RMSprop does.
//   AdamW:   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//            p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The learning rate is passed to every step (the schedule owns it).
// State tensors are created on each parameter's device (see OptimizerOptions::state_dtype).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/torch_pch.h"

namespace spinlm {

struct OptimizerOptions {
  std::string kind = "rmsprop";  // rmsprop | adamw
  double weight_decay = 0.0;
  double alpha = 0.99;           // RMSprop smoothing (torch default)
  double beta1 = 0.9;            // AdamW (torch default)
  double beta2 = 0.999;
  double eps = 1e-8;
  // (added) Storage dtype of the optimizer state: "fp32" (default) or "bf16". The update is
  // always computed in fp32. With fp32 state and bf16/fp16 parameters the optimizer also
  // keeps an fp32 master copy of each parameter, updates that and rounds it into the
  // parameter (an update far below the parameter's bf16 spacing, e.g. lr 5e-7, is not lost).
  // bf16 state keeps no master copy: a third of the memory, for 7B-scale runs on one GPU.
  std::string state_dtype = "fp32";
};

class Optimizer {
 public:
  // params: the tensors updated in place (their .grad() is read). Error for an unknown kind.
  Optimizer(std::vector<at::Tensor> params, OptimizerOptions options);

  // One update of every parameter that has a gradient, at learning rate lr.
  void step(double lr);
  // Sets every parameter's gradient to zero (keeps the buffers).
  void zero_grad();

  int64_t steps_taken() const { return step_count_; }
  const OptimizerOptions& options() const { return options_; }

  // State tensors under stable names ("state.<i>.square_avg", "state.<i>.exp_avg", ...) plus
  // the step count, for checkpoints. load_state restores them exactly; an Error names the
  // file when the state does not fit the parameters.
  std::vector<std::pair<std::string, at::Tensor>> state_tensors() const;
  void save_state(const std::string& path) const;
  void load_state(const std::string& path);

 private:
  std::vector<at::Tensor> params_;
  OptimizerOptions options_;
  int64_t step_count_ = 0;
  std::vector<at::Tensor> first_;   // AdamW exp_avg
  std::vector<at::Tensor> second_;  // RMSprop square_avg / AdamW exp_avg_sq
  std::vector<at::Tensor> master_;  // fp32 master weights (undefined where the parameter is fp32/fp64)
};

}  // namespace spinlm
