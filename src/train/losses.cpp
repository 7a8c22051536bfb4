#include "train/losses.h"

#include "core/error.h"

namespace spinlm {

SpinLoss parse_spin_loss(const std::string& name) {
  if (name == "logistic" || name == "sigmoid") return SpinLoss::kLogistic;
  if (name == "hinge") return SpinLoss::kHinge;
  if (name == "exponential") return SpinLoss::kExponential;
  if (name == "ipo") return SpinLoss::kIpo;
  fail("unknown loss '", name, "' (expected logistic, hinge, exponential or ipo)");
}

std::string spin_loss_name(SpinLoss loss) {
  switch (loss) {
    case SpinLoss::kLogistic: return "logistic";
    case SpinLoss::kHinge: return "hinge";
    case SpinLoss::kExponential: return "exponential";
    case SpinLoss::kIpo: return "ipo";
  }
  return "?";
}

PairLossOutput spin_pair_loss(SpinLoss loss, double beta, const at::Tensor& policy_real,
                              const at::Tensor& policy_generated, const at::Tensor& reference_real,
                              const at::Tensor& reference_generated) {
  check(beta > 0, "beta must be positive, got ", beta);
  // h: the log-ratio difference TRL calls `logits`; u = beta * h.
  at::Tensor h = (policy_real - reference_real) - (policy_generated - reference_generated);  // [B]
  at::Tensor u = h * beta;
  PairLossOutput out;
  switch (loss) {
    case SpinLoss::kLogistic:
      // log(1 + e^-u) = -log sigmoid(u), computed stably.
      out.losses = -at::log_sigmoid(u);
      break;
    case SpinLoss::kHinge:
      out.losses = at::relu(1.0 - u);
      break;
    case SpinLoss::kExponential:
      out.losses = at::exp(-u);
      break;
    case SpinLoss::kIpo:
      out.losses = (h - 1.0 / (2.0 * beta)).pow(2);
      break;
  }
  out.rewards_real = ((policy_real - reference_real) * beta).detach();
  out.rewards_generated = ((policy_generated - reference_generated) * beta).detach();
  return out;
}

at::Tensor reward_accuracy(const at::Tensor& rewards_real, const at::Tensor& rewards_generated) {
  return (rewards_real > rewards_generated).to(at::kDouble) + 0.5 * (rewards_real == rewards_generated).to(at::kDouble);
}

}  // namespace spinlm
