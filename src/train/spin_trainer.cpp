#include "train/spin_trainer.h"

#include <cmath>
#include <filesystem>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "model/config.h"
#include "model/hf_model.h"
#include "train/train_device.h"

namespace spinlm {
namespace fs = std::filesystem;

std::vector<TokenPair> load_training_pairs(const std::vector<std::string>& files, const TextCodec* codec,
                                           const StopTokens& stop, const TruncationOptions& truncation,
                                           int64_t vocab_size) {
  validate_truncation(truncation);
  std::vector<TokenPair> pairs = load_pairs(files, codec, stop);
  for (TokenPair& pair : pairs) {
    validate_pair(pair, vocab_size);
    pair = truncate_pair(pair, truncation);
  }
  return pairs;
}

SpinMicroOutput spin_micro_loss(const Transformer& model, const std::vector<const TokenPair*>& pairs,
                                const std::vector<double>& reference_real,
                                const std::vector<double>& reference_generated, SpinLoss loss,
                                double beta, double sft_weight, double normaliser,
                                int64_t chunk_positions) {
  PairScores scores = score_pairs(model, pairs, chunk_positions);
  const auto options = at::TensorOptions().dtype(scores.real.scalar_type()).device(scores.real.device());
  // [m] for the micro-batch's m pairs: the policy's and the opponent's log-probs as the loss
  // compares them.
  const at::Tensor policy_real = loss_logprobs(loss, scores.real, scores.real_tokens);
  const at::Tensor policy_generated = loss_logprobs(loss, scores.generated, scores.generated_tokens);
  const at::Tensor ref_real =
      loss_logprobs(loss, at::tensor(reference_real, at::kDouble).to(options), scores.real_tokens);
  const at::Tensor ref_generated =
      loss_logprobs(loss, at::tensor(reference_generated, at::kDouble).to(options), scores.generated_tokens);
  PairLossOutput out = spin_pair_loss(loss, beta, policy_real, policy_generated, ref_real, ref_generated);
  at::Tensor per_pair = out.losses;  // [m]
  if (sft_weight != 0) per_pair = per_pair + sft_term(sft_weight, scores.real, scores.real_tokens);
  SpinMicroOutput result;
  result.loss = per_pair.sum() / normaliser;
  auto total = [&](const at::Tensor& t) { return t.detach().to(at::kDouble).sum().item<double>() / normaliser; };
  result.metrics["loss"] = total(per_pair);
  result.metrics["rewards/real"] = total(out.rewards_real);
  result.metrics["rewards/generated"] = total(out.rewards_generated);
  result.metrics["rewards/accuracies"] = total(reward_accuracy(out.rewards_real, out.rewards_generated));
  result.metrics["rewards/margins"] = total(out.rewards_real - out.rewards_generated);
  result.metrics["logps/real"] = total(policy_real);
  result.metrics["logps/generated"] = total(policy_generated);
  result.metrics["tokens"] = static_cast<double>(scores.tokens);
  return result;
}

MetricMap evaluate_spin(const Transformer& model, const std::vector<TokenPair>& pairs,
                        const ReferenceLogprobs& reference, SpinLoss loss, double beta,
                        double sft_weight, const MicroBatching& micro_batching, int64_t chunk_positions) {
  at::NoGradGuard no_grad;
  MetricMap sums;
  const int64_t n = static_cast<int64_t>(pairs.size());
  std::vector<int64_t> all(n), lengths(n), tokens(n);
  for (int64_t i = 0; i < n; ++i) {
    all[i] = i;
    lengths[i] = pair_length(pairs[i]);
    tokens[i] = packed_pair_tokens(pairs[i]);
  }
  for (const auto& micro : split_micro_batches(all, lengths, tokens, micro_batching)) {
    std::vector<const TokenPair*> ptrs;
    std::vector<double> rr, rg;
    for (int64_t i : micro) {
      ptrs.push_back(&pairs[i]);
      rr.push_back(reference.real[i]);
      rg.push_back(reference.generated[i]);
    }
    SpinMicroOutput out = spin_micro_loss(model, ptrs, rr, rg, loss, beta, sft_weight,
                                          static_cast<double>(n), chunk_positions);
    for (const auto& [key, value] : out.metrics) sums[key] += value;
  }
  sums.erase("tokens");
  return sums;
}

namespace {

// [dist] With several ranks each scores the pairs i % world == rank; summing the rows over the
// ranks (each row is non-zero on exactly one rank, so the sum is exact) gives every rank all.
ReferenceLogprobs compute_reference_sharded(const Transformer& model, const std::vector<TokenPair>& pairs,
                                            const MicroBatching& micro, int64_t chunk_positions, const std::string& what,
                                            DataParallel& parallel, const JournalPart& journal) {
  const size_t n = pairs.size(), world = static_cast<size_t>(parallel.world_size());
  std::vector<TokenPair> mine;
  for (size_t i = static_cast<size_t>(parallel.rank()); i < n; i += world) mine.push_back(pairs[i]);
  ReferenceLogprobs part;
  if (!mine.empty()) part = compute_reference_logprobs(model, mine, micro, chunk_positions, what, journal);
  std::vector<double> flat(4 * n, 0.0);  // [real | generated | real_tokens | generated_tokens]
  for (size_t k = 0; k < mine.size(); ++k) {
    const size_t i = static_cast<size_t>(parallel.rank()) + k * world;
    flat[i] = part.real[k];
    flat[n + i] = part.generated[k];
    flat[2 * n + i] = static_cast<double>(part.real_tokens[k]);
    flat[3 * n + i] = static_cast<double>(part.generated_tokens[k]);
  }
  parallel.all_reduce_sum(flat);
  ReferenceLogprobs all;
  all.real.assign(flat.begin(), flat.begin() + n);
  all.generated.assign(flat.begin() + n, flat.begin() + 2 * n);
  for (size_t i = 0; i < n; ++i) {
    all.real_tokens.push_back(std::llround(flat[2 * n + i]));
    all.generated_tokens.push_back(std::llround(flat[3 * n + i]));
  }
  return all;
}

// The opponent's log-probs: p_t's own (cached), optionally mixed with a base model's.
ReferenceLogprobs reference_for(const std::vector<TokenPair>& pairs, const SpinTrainOptions& options,
                                const std::string& pairs_key, const std::string& model_key,
                                Transformer* model, const ReferenceMix& mix,
                                const std::string& base_key, const std::string& what) {
  const std::string out = options.loop.output_dir;
  const MicroBatching micro = micro_batching(options.loop);
  const std::string key = model_key + "-" + pairs_key;
  const Ranks ranks{options.loop.parallel};
  ReferenceLogprobs current = load_or_compute_reference(
      (fs::path(out) / ("reference_logprobs-" + key + ".json")).string(), key, pairs.size(), ranks,
      [&](const JournalPart& journal) {
        if (options.loop.parallel && options.loop.parallel->world_size() > 1) {  // [dist]
          return compute_reference_sharded(*model, pairs, micro, options.chunk_positions, what,
                                           *options.loop.parallel, journal);
        }
        return compute_reference_logprobs(*model, pairs, micro, options.chunk_positions, what, journal);
      });
  if (mix.base_dir.empty()) return current;
  const std::string bkey = base_key + "-" + pairs_key;
  ReferenceLogprobs base = load_or_compute_reference(
      (fs::path(out) / ("reference_logprobs-" + bkey + ".json")).string(), bkey, pairs.size(), ranks,
      [&](const JournalPart& journal) {
        Transformer base_model = load_model(mix.base_dir, model->device(), model->dtype());
        if (options.loop.parallel && options.loop.parallel->world_size() > 1) {  // [dist]
          return compute_reference_sharded(base_model, pairs, micro, options.chunk_positions,
                                           what + " (base)", *options.loop.parallel, journal);
        }
        return compute_reference_logprobs(base_model, pairs, micro, options.chunk_positions,
                                          what + " (base)", journal);
      });
  return mix_reference(base, current, mix.alpha);
}

}  // namespace

SpinTrainResult train_spin(const SpinTrainOptions& options) {
  check(!options.data_files.empty(), "no training data (--data)");
  const SpinLoss loss = parse_spin_loss(options.loss);
  check(options.beta > 0, "--beta must be positive, got ", options.beta);
  const ReferenceMix mix = parse_reference_mix(options.reference_mix);
  const std::string& model_dir = options.loop.model_dir;

  ModelText text = load_model_text(model_dir);
  std::vector<TokenPair> pairs = load_training_pairs(options.data_files, text.codec.get(), text.stop,
                                                     options.truncation, text.vocab_size);
  std::vector<TokenPair> eval_pairs;
  if (!options.eval_data.empty()) {
    eval_pairs = load_training_pairs({options.eval_data}, text.codec.get(), text.stop,
                                     options.truncation, text.vocab_size);
  }
  make_directories(options.loop.output_dir);
  log_info("train: ", pairs.size(), " pairs from ", options.data_files.size(), " file(s)");

  // Weights hashes first (cheap relative to a forward pass over the data).
  std::string model_key = hash_model_weights(model_dir);
  for (const std::string& adapter : options.loop.adapters) model_key += hash_model_weights(adapter);
  const std::string base_key = mix.base_dir.empty() ? "" : hash_model_weights(mix.base_dir);
  const std::string pairs_key = hash_pairs(pairs, options.truncation);

  std::optional<Transformer> loaded;
  if (!options.model) loaded.emplace(load_training_model(model_dir, options.loop));  // --device, --dtype
  Transformer& model = options.model ? *options.model : *loaded;
  if (options.model) {
    model.set_gradient_checkpointing(options.loop.gradient_checkpointing);
    attach_training_lora(model, options.loop);
  }
  model.set_requires_grad(false);
  const ReferenceLogprobs reference =
      reference_for(pairs, options, pairs_key, model_key, &model, mix, base_key, "reference log-probs");
  ReferenceLogprobs eval_reference;
  if (!eval_pairs.empty()) {
    eval_reference = reference_for(eval_pairs, options, hash_pairs(eval_pairs, options.truncation),
                                   model_key, &model, mix, base_key, "eval reference log-probs");
  }

  TrainLoopHooks hooks;
  hooks.num_examples = static_cast<int64_t>(pairs.size());
  for (const TokenPair& p : pairs) {
    hooks.lengths.push_back(pair_length(p));
    hooks.tokens.push_back(packed_pair_tokens(p));
  }
  hooks.fingerprint = {{"loss", spin_loss_name(loss)},
                       {"beta", options.beta},
                       {"sft_weight", options.sft_weight},
                       {"reference_mix", options.reference_mix},
                       {"data_hash", pairs_key},
                       {"model_hash", model_key}};
  hooks.micro_step = [&](const std::vector<int64_t>& micro, const std::vector<int64_t>& batch) {
    std::vector<const TokenPair*> ptrs;
    std::vector<double> rr, rg;
    for (int64_t i : micro) {
      ptrs.push_back(&pairs[i]);
      rr.push_back(reference.real[i]);
      rg.push_back(reference.generated[i]);
    }
    SpinMicroOutput out = spin_micro_loss(model, ptrs, rr, rg, loss, options.beta, options.sft_weight,
                                          static_cast<double>(batch.size()), options.chunk_positions);
    out.loss.backward();
    return out.metrics;
  };
  if (!eval_pairs.empty()) {
    hooks.evaluate = [&] {
      return evaluate_spin(model, eval_pairs, eval_reference, loss, options.beta, options.sft_weight,
                           micro_batching(options.loop), options.chunk_positions);
    };
  }
  TrainLoopResult loop = run_train_loop(model, options.loop, hooks);
  SpinTrainResult result;
  result.steps = loop.steps;
  result.last_logged = loop.last_logged;
  result.last_eval = loop.last_eval;
  result.output_dir = options.loop.output_dir;
  return result;
}

}  // namespace spinlm
