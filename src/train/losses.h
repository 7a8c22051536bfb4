// SPIN / DPO-style pair losses on summed response log-probs.
//
// With a pair (real y, generated y') and the opponent (reference) log-probs fixed,
//   u = beta * [ (log p_theta(y) - log p_ref(y)) - (log p_theta(y') - log p_ref(y')) ]
// and the per-pair loss is l(u):
//   logistic     log(1 + e^-u)              (the paper's; TRL's "sigmoid")
//   hinge        max(0, 1 - u)              (TRL's "hinge": relu(1 - beta * logits))
//   exponential  e^-u
//   ipo          (h - 1/(2 beta))^2 with h = u / beta (TRL's "ipo": the log-ratio difference
//                itself, not scaled by beta; TRL feeds it length-averaged log-probs, see
//                ipo_uses_mean_logprobs)
// The rewards TRL logs are beta * (log p_theta - log p_ref) for every loss type; reward
// accuracy is 1 where the real answer's reward is larger, 1/2 on a tie (a pair whose two
// sides are the same answer has equal rewards and tells nothing apart), 0 otherwise.
#pragma once
#include <string>

#include "core/torch_pch.h"

namespace spinlm {

enum class SpinLoss { kLogistic, kHinge, kExponential, kIpo };

// "logistic" (alias "sigmoid"), "hinge", "exponential", "ipo"; Error naming the value otherwise.
SpinLoss parse_spin_loss(const std::string& name);
std::string spin_loss_name(SpinLoss loss);

// TRL divides the policy and reference log-probs by the response length for ipo only.
inline bool ipo_uses_mean_logprobs(SpinLoss loss) { return loss == SpinLoss::kIpo; }

struct PairLossOutput {
  at::Tensor losses;             // [B] per-pair loss (differentiable)
  at::Tensor rewards_real;       // [B] beta * (policy_real - ref_real), detached
  at::Tensor rewards_generated;  // [B] beta * (policy_generated - ref_generated), detached
};

// policy_*: [B] log-probs of the trained model (carry grad); reference_*: [B] opponent
// log-probs (no grad). Any floating dtype (the theory test runs in double).
PairLossOutput spin_pair_loss(SpinLoss loss, double beta, const at::Tensor& policy_real,
                              const at::Tensor& policy_generated, const at::Tensor& reference_real,
                              const at::Tensor& reference_generated);

// [B] 1 / 0.5 / 0 per pair: real reward above / equal to / below the generated one.
at::Tensor reward_accuracy(const at::Tensor& rewards_real, const at::Tensor& rewards_generated);

}  // namespace spinlm
