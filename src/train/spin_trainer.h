// `spinlm train`: SPIN (Chen et al. 2024) on pairs (prompt, real answer, generated answer).
// The opponent's log-probs come from the on-disk cache (reference_logprobs.h), so only the
// trained model is in memory. The loss of a batch is the mean over its pairs of
//   l(beta * [(log p(y) - log p_ref(y)) - (log p(y') - log p_ref(y'))])
//   + sft_weight * (mean over pairs of the real response's per-token NLL)
// with summed response log-probs (per-token means for ipo, as TRL); see losses.h.
#pragma once
#include <string>
#include <vector>

#include "data/collate.h"
#include "data/pairs.h"
#include "model/model_text.h"
#include "model/transformer.h"
#include "train/losses.h"
#include "train/reference_logprobs.h"
#include "train/train_loop.h"

namespace spinlm {

struct SpinTrainOptions {
  TrainLoopOptions loop;  // model_dir, output_dir, optimizer, schedule, batches, resume, ...
  std::vector<std::string> data_files;
  std::string loss = "logistic";
  double beta = 0.1;
  TruncationOptions truncation;
  double sft_weight = 0.0;
  std::string reference_mix;  // "BASE_DIR:ALPHA" or empty
  std::string eval_data;      // pairs scored at each epoch end (eval_ metrics)
  int64_t chunk_positions = 1024;
  // The model of loop.model_dir when the caller already holds it (spinlm run, between its
  // steps): trained in place instead of read again, so it holds the trained weights after.
  // Null: loaded from loop.model_dir.
  Transformer* model = nullptr;

  SpinTrainOptions() { loop.learning_rate = 5e-7; }
};

struct SpinTrainResult {
  int64_t steps = 0;
  MetricMap last_logged;  // last training metrics row
  MetricMap last_eval;    // last evaluation (empty without eval_data)
  std::string output_dir;
};

// Runs the whole training (or resumes it) and writes OUT (see checkpoint.h).
SpinTrainResult train_spin(const SpinTrainOptions& options);

// The loss of one micro-batch and its metric sums.
struct SpinMicroOutput {
  at::Tensor loss;    // scalar: sum over the micro-batch's pairs of (pair loss + sft term) / normaliser
  MetricMap metrics;  // sums over its pairs / normaliser: loss, rewards/real, rewards/generated,
                      // rewards/accuracies, rewards/margins, logps/real, logps/generated; plus tokens
};
SpinMicroOutput spin_micro_loss(const Transformer& model, const std::vector<const TokenPair*>& pairs,
                                const std::vector<double>& reference_real,
                                const std::vector<double>& reference_generated, SpinLoss loss,
                                double beta, double sft_weight, double normaliser,
                                int64_t chunk_positions = 1024);

// Means over all pairs of the metrics above, without gradient (held-out reward accuracy).
MetricMap evaluate_spin(const Transformer& model, const std::vector<TokenPair>& pairs,
                        const ReferenceLogprobs& reference, SpinLoss loss, double beta,
                        double sft_weight, const MicroBatching& micro_batching,
                        int64_t chunk_positions = 1024);

// Pairs of the files, truncated and checked against the vocabulary; codec may be null when
// the rows carry token ids.
std::vector<TokenPair> load_training_pairs(const std::vector<std::string>& files, const TextCodec* codec,
                                           const StopTokens& stop, const TruncationOptions& truncation,
                                           int64_t vocab_size);

}  // namespace spinlm
