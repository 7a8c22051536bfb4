// Held-out measurements for the SPIN loop, besides the benchmarks:
// - SFT: negative log-likelihood of the assistant tokens of held-out conversations (rendered
//   and masked exactly as SFT training does, data/sft_data.h), per token, and perplexity =
//   exp(NLL per token).
// - SPIN reward accuracy: on held-out pairs (real, generated), the implicit rewards
//   beta * (log p_model(y|x) - log p_opponent(y|x)) of both answers (summed log-probs, pairs
//   truncated as training truncates them); accuracy = share of pairs whose real answer gets
//   the larger reward, a tie counting one half (train/losses.h), with the share of pairs
//   whose two sides are the same ids, the margins and log-probs beside it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/collective.h"
#include "core/limits.h"
#include "data/collate.h"
#include "io/work_journal.h"
#include "model/stop_tokens.h"
#include "model/transformer.h"
#include "text/text_codec.h"
#include "train/losses.h"
#include "train/reference_logprobs.h"

namespace spinlm {

struct HeldoutSftOptions {
  std::vector<std::string> files;  // conversation JSONL
  int64_t max_length = 1024;       // sequences keep their first max_length tokens
  int64_t batch_size = 8;          // sequences per forward
  int64_t limit = kNoLimit;        // only the first `limit` conversations
  Ranks ranks;                     // [dist] conversations dealt round-robin; every rank gets the sums
  JournalPart journal;             // each micro-batch one unit (io/work_journal.h)
};

struct HeldoutSftResult {
  int64_t examples = 0;
  int64_t tokens = 0;       // scored (assistant) tokens
  double nll_sum = 0.0;     // total negative log-likelihood, nats
  double nll_per_token = 0.0;
  double perplexity = 0.0;
};

HeldoutSftResult heldout_sft(const Transformer& model, const TextCodec& codec, const StopTokens& stop,
                             const HeldoutSftOptions& options);

struct HeldoutPairsOptions {
  std::vector<std::string> files;  // SPIN pairs JSONL (data/pairs.h formats)
  TruncationOptions truncation;
  double beta = 0.1;
  SpinLoss loss = SpinLoss::kLogistic;  // the rewards are on its log-probs (per-token for ipo)
  int64_t batch_size = 8;  // pairs per forward
  int64_t limit = kNoLimit;
  Ranks ranks;  // [dist] pairs dealt round-robin to the ranks; every rank gets every score
  JournalPart journal;  // this rank's scores, a unit a micro-batch (io/work_journal.h)
};

struct HeldoutPairsResult {
  int64_t pairs = 0;
  double reward_accuracy = 0.0;
  double reward_accuracy_stderr = 0.0;
  double reward_margin = 0.0;      // mean of (reward real - reward generated)
  double identical_pairs = 0.0;    // share of pairs whose real and generated ids are equal
  double rewards_real = 0.0;       // means
  double rewards_generated = 0.0;
  double logps_real = 0.0;         // mean summed log-probs under the model
  double logps_generated = 0.0;
};

// The pairs of options.files, tokenised and truncated (exposed so that callers can score
// them with each model in turn and keep one model in memory at a time).
std::vector<TokenPair> load_heldout_pairs(const TextCodec& codec, const StopTokens& stop, int64_t vocab_size,
                                          const HeldoutPairsOptions& options);
// Summed log-probs of every pair's two answers under one model.
ReferenceLogprobs score_heldout_pairs(const Transformer& model, const std::vector<TokenPair>& pairs,
                                      const HeldoutPairsOptions& options);
// Rewards and accuracy from the model's and the opponent's summed log-probs, as the trainer
// computes them for options.loss and options.beta (train/losses.h).
HeldoutPairsResult summarize_pair_rewards(const std::vector<TokenPair>& pairs, const ReferenceLogprobs& model,
                                          const ReferenceLogprobs& opponent, const HeldoutPairsOptions& options);

nlohmann::json to_json(const HeldoutSftResult& result);
nlohmann::json to_json(const HeldoutPairsResult& result);

}  // namespace spinlm
