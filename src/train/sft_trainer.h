// `spinlm sft`: supervised fine-tuning, next-token loss on assistant tokens only
// (data/sft_data.h), with the SPIN trainer's optimizers, schedules, checkpoints, metrics and
// resume (train_loop.h). The loss of a batch is the mean NLL over all its scored tokens
// (accumulated exactly across micro-batches: each micro-batch's token NLL sum is divided by
// the whole batch's scored-token count).
#pragma once
#include <string>
#include <vector>

#include "data/packing.h"
#include "data/sft_data.h"
#include "model/transformer.h"
#include "train/train_loop.h"

namespace spinlm {

struct SftTrainOptions {
  TrainLoopOptions loop;
  std::vector<std::string> data_files;
  std::string eval_data;  // token-mean NLL at each epoch end (eval_loss)
  int64_t max_length = 1024;
  int64_t chunk_positions = 1024;

  SftTrainOptions() {
    loop.learning_rate = 2e-5;
    loop.optimizer.kind = "adamw";
    loop.lr_scheduler = "cosine";
  }
};

struct SftTrainResult {
  int64_t steps = 0;
  MetricMap last_logged;
  MetricMap last_eval;
};

SftTrainResult train_sft(const SftTrainOptions& options);

// Sum of the scored tokens' NLL of the sequences (with grad), and the scored-token count.
struct SftScore {
  at::Tensor nll_sum;  // scalar
  int64_t scored_tokens = 0;
  int64_t tokens = 0;  // tokens in the forward (padding-free: data/packing.h)
};
SftScore sft_score(const Transformer& model, const std::vector<LabeledSequence>& sequences,
                   int64_t chunk_positions = 1024);

// Token-mean NLL over examples, without grad.
double evaluate_sft(const Transformer& model, const std::vector<SftExample>& examples,
                    const MicroBatching& micro_batching, int64_t chunk_positions = 1024);

}  // namespace spinlm
