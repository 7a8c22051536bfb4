#include "eval/heldout.h"

#include <cmath>

#include "core/error.h"
#include "core/progress.h"
#include "data/packing.h"
#include "data/pairs.h"
#include "data/sft_data.h"
#include "eval/metrics.h"
#include "train/losses.h"

namespace spinlm {

HeldoutSftResult heldout_sft(const Transformer& model, const TextCodec& codec, const StopTokens& stop,
                             const HeldoutSftOptions& options) {
  check(options.batch_size > 0, "--batch-size must be positive");
  auto examples = load_sft_examples(options.files, &codec, stop, options.max_length, model.config().vocab_size);
  if (has_limit(options.limit) && static_cast<int64_t>(examples.size()) > options.limit) examples.resize(options.limit);
  HeldoutSftResult result;
  result.examples = static_cast<int64_t>(examples.size());
  std::vector<int64_t> all(examples.size()), lengths(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    all[i] = static_cast<int64_t>(i);
    lengths[i] = static_cast<int64_t>(examples[i].sequence.ids.size());
  }
  // [dist] This rank's conversations (i % ranks == rank); the sums are summed over the ranks.
  std::vector<int64_t> mine;
  for (int64_t i : all)
    if (options.ranks.mine(i)) mine.push_back(i);
  at::NoGradGuard no_grad;
  Progress progress("held-out SFT", int64_t(mine.size()), "conversations");
  int64_t done = 0;
  for (const auto& micro : group_by_length(mine, lengths, options.batch_size)) {
    std::vector<LabeledSequence> sequences;
    for (int64_t i : micro) sequences.push_back(examples[i].sequence);
    std::string key;
    if (options.journal) {
      UnitKey unit;
      for (const LabeledSequence& s : sequences)
        unit.add(s.ids).add(std::vector<int64_t>(s.scored.begin(), s.scored.end()));
      key = unit.hex();
    }
    const nlohmann::json* recorded = options.journal.find(key);
    double nll = 0.0;
    int64_t tokens = 0;
    if (recorded != nullptr) {
      nll = recorded->at("nll").get<double>();
      tokens = recorded->at("tokens").get<int64_t>();
    } else {
      const PackedBatch batch = pack_sequences(sequences);  // padding-free (data/packing.h)
      const at::Tensor logprobs = model.packed_logprobs(batch.tokens);  // [scored tokens]
      nll = -logprobs.sum().to(at::kDouble).item<double>();
      tokens = logprobs.numel();
    }
    result.nll_sum += nll;
    result.tokens += tokens;
    done += static_cast<int64_t>(micro.size());
    progress.update(done);
    if (recorded == nullptr) options.journal.record(key, {{"nll", nll}, {"tokens", tokens}});
  }
  progress.finish();
  std::vector<double> sums = {result.nll_sum, double(result.tokens)};
  options.ranks.sum(sums);
  result.nll_sum = sums[0];
  result.tokens = int64_t(sums[1]);
  check(result.tokens > 0, "held-out SFT data has no assistant tokens to score");
  result.nll_per_token = result.nll_sum / static_cast<double>(result.tokens);
  result.perplexity = std::exp(result.nll_per_token);
  return result;
}

std::vector<TokenPair> load_heldout_pairs(const TextCodec& codec, const StopTokens& stop, int64_t vocab_size,
                                          const HeldoutPairsOptions& options) {
  validate_truncation(options.truncation);
  auto pairs = load_pairs(options.files, &codec, stop);
  if (has_limit(options.limit) && static_cast<int64_t>(pairs.size()) > options.limit) pairs.resize(options.limit);
  check(!pairs.empty(), "held-out pairs: no rows");
  for (auto& pair : pairs) {
    validate_pair(pair, vocab_size);
    pair = truncate_pair(pair, options.truncation);
  }
  return pairs;
}

ReferenceLogprobs score_heldout_pairs(const Transformer& model, const std::vector<TokenPair>& pairs,
                                      const HeldoutPairsOptions& options) {
  const auto score = [&](const std::vector<TokenPair>& some) {
    return compute_reference_logprobs(model, some, MicroBatching{options.batch_size}, 1024, "held-out pairs",
                                      options.journal);
  };
  if (options.ranks.group == nullptr) return score(pairs);
  // [dist] This rank's pairs (i % ranks == rank), placed among zeros and summed over the ranks.
  std::vector<TokenPair> mine;
  for (size_t i = 0; i < pairs.size(); ++i)
    if (options.ranks.mine(int64_t(i))) mine.push_back(pairs[i]);
  const ReferenceLogprobs part = score(mine);
  const size_t n = pairs.size();
  std::vector<double> all(4 * n, 0.0);
  for (size_t k = 0, i = size_t(options.ranks.index()); i < n; ++k, i += size_t(options.ranks.count())) {
    all[i] = part.real[k];
    all[n + i] = part.generated[k];
    all[2 * n + i] = double(part.real_tokens[k]);
    all[3 * n + i] = double(part.generated_tokens[k]);
  }
  options.ranks.sum(all);
  ReferenceLogprobs out;
  for (size_t i = 0; i < n; ++i) {
    out.real.push_back(all[i]);
    out.generated.push_back(all[n + i]);
    out.real_tokens.push_back(int64_t(all[2 * n + i]));
    out.generated_tokens.push_back(int64_t(all[3 * n + i]));
  }
  return out;
}

HeldoutPairsResult summarize_pair_rewards(const std::vector<TokenPair>& pairs, const ReferenceLogprobs& model,
                                          const ReferenceLogprobs& opponent, const HeldoutPairsOptions& options) {
  const size_t n = model.real.size();
  check(n > 0 && pairs.size() == n && opponent.real.size() == n && model.generated.size() == n &&
            opponent.generated.size() == n,
        "held-out pairs: model and opponent scored different numbers of pairs");
  HeldoutPairsResult result;
  result.pairs = static_cast<int64_t>(n);
  std::vector<double> real_tokens(n), generated_tokens(n), identical(n);
  for (size_t i = 0; i < n; ++i) {
    real_tokens[i] = double(pairs[i].real.size());
    generated_tokens[i] = double(pairs[i].generated.size());
    identical[i] = pairs[i].real == pairs[i].generated ? 1.0 : 0.0;
  }
  const auto logprobs = [&](const std::vector<double>& summed, const std::vector<double>& tokens) {
    return loss_logprobs(options.loss, at::tensor(summed, at::kDouble), at::tensor(tokens, at::kDouble));
  };
  const at::Tensor rewards_real = spin_rewards(options.beta, logprobs(model.real, real_tokens),
                                               logprobs(opponent.real, real_tokens));
  const at::Tensor rewards_generated = spin_rewards(options.beta, logprobs(model.generated, generated_tokens),
                                                    logprobs(opponent.generated, generated_tokens));
  const auto values = [](const at::Tensor& t) {
    const at::Tensor c = t.contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  };
  const std::vector<double> real = values(rewards_real), generated = values(rewards_generated),
                            margins = values(rewards_real - rewards_generated);
  const at::Tensor accuracy = reward_accuracy(rewards_real, rewards_generated);
  const std::vector<double> correct(accuracy.data_ptr<double>(), accuracy.data_ptr<double>() + n);
  result.reward_accuracy = mean(correct);
  result.reward_accuracy_stderr = mean_stderr(correct);
  result.reward_margin = mean(margins);
  result.identical_pairs = mean(identical);
  result.rewards_real = mean(real);
  result.rewards_generated = mean(generated);
  result.logps_real = mean(model.real);
  result.logps_generated = mean(model.generated);
  return result;
}

nlohmann::json to_json(const HeldoutSftResult& result) {
  return {{"examples", result.examples},       {"tokens", result.tokens},
          {"nll_sum", result.nll_sum},         {"nll_per_token", result.nll_per_token},
          {"perplexity", result.perplexity}};
}

nlohmann::json to_json(const HeldoutPairsResult& result) {
  nlohmann::json stderr_value = std::isnan(result.reward_accuracy_stderr) ? nlohmann::json("N/A")
                                                                          : nlohmann::json(result.reward_accuracy_stderr);
  return {{"pairs", result.pairs},
          {"rewards/accuracies", result.reward_accuracy},
          {"rewards/accuracies_stderr", stderr_value},
          {"rewards/margins", result.reward_margin},
          {"identical_pairs", result.identical_pairs},
          {"rewards/real", result.rewards_real},
          {"rewards/generated", result.rewards_generated},
          {"logps/real", result.logps_real},
          {"logps/generated", result.logps_generated}};
}

}  // namespace spinlm
