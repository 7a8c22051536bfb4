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

// The response log-probs a loss compares, from the summed ones: TRL divides the policy and
// reference log-probs by the response length (at least 1) for ipo only, and keeps the sums
// otherwise. [B] in, [B] out.
at::Tensor loss_logprobs(SpinLoss loss, const at::Tensor& summed, const at::Tensor& response_tokens);

// TRL's rewards, beta * (log p_theta - log p_ref) on loss_logprobs, for every loss type. [B]
at::Tensor spin_rewards(double beta, const at::Tensor& policy, const at::Tensor& reference);

// The optional SFT term added to each pair's loss: sft_weight times the real response's
// per-token NLL, -log p_theta(y) / |y|. [B]
at::Tensor sft_term(double sft_weight, const at::Tensor& policy_real, const at::Tensor& real_tokens);

struct PairLossOutput {
  at::Tensor losses;             // [B] per-pair loss (differentiable)
  at::Tensor rewards_real;       // [B] beta * (policy_real - ref_real), detached
  at::Tensor rewards_generated;  // [B] beta * (policy_generated - ref_generated), detached
};

// policy_*: [B] log-probs of the trained model (carry grad); reference_*: [B] opponent
// log-probs (no grad), both as loss_logprobs gives them. Any floating dtype (the theory test
// runs in double). beta > 0 is checked where it enters (the trainer's options, the recipe).
PairLossOutput spin_pair_loss(SpinLoss loss, double beta, const at::Tensor& policy_real,
                              const at::Tensor& policy_generated, const at::Tensor& reference_real,
                              const at::Tensor& reference_generated);

// [B] 1 / 0.5 / 0 per pair: real reward above / equal to / below the generated one.
at::Tensor reward_accuracy(const at::Tensor& rewards_real, const at::Tensor& rewards_generated);

}  // namespace spinlm
