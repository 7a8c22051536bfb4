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
  out.rewards_real = spin_rewards(beta, policy_real, reference_real).detach();
  out.rewards_generated = spin_rewards(beta, policy_generated, reference_generated).detach();
  return out;
}

at::Tensor loss_logprobs(SpinLoss loss, const at::Tensor& summed, const at::Tensor& response_tokens) {
  if (loss != SpinLoss::kIpo) return summed;
  return summed / response_tokens.to(summed.scalar_type()).clamp_min(1);
}

at::Tensor spin_rewards(double beta, const at::Tensor& policy, const at::Tensor& reference) {
  return (policy - reference) * beta;
}

at::Tensor sft_term(double sft_weight, const at::Tensor& policy_real, const at::Tensor& real_tokens) {
  return sft_weight * (-policy_real / real_tokens.to(policy_real.scalar_type()).clamp_min(1));
}

at::Tensor reward_accuracy(const at::Tensor& rewards_real, const at::Tensor& rewards_generated) {
  return (rewards_real > rewards_generated).to(at::kDouble) + 0.5 * (rewards_real == rewards_generated).to(at::kDouble);
}

}  // namespace spinlm
