// The optimisation loop shared by `spinlm train` (SPIN) and `spinlm sft`: a seeded shuffle
// per epoch, batches split into length-grouped micro-batches whose gradients accumulate to
// the batch mean, global-norm clipping (grad_norm logged before clipping, as transformers
// does), the optimizer and LR schedule, metrics.jsonl, epoch-end and --save-steps
// checkpoints, --resume, and a clear error on a non-finite loss or gradient.
//
// Steps: batches per epoch = ceil(N / batch_size) (the last batch may be smaller), total
// steps = epochs * that; warmup = ceil(warmup_ratio * total).
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/collective.h"
#include "data/packing.h"
#include "model/transformer.h"
#include "train/optimizer.h"

namespace spinlm {

// [dist] Data-parallel hook, implemented by src/dist/ (DistContext); the trainer uses it
// only through this interface because train/ may not include dist/. Null: one process.
// With it, every rank runs the same loop on the same data order: the micro-batches of a
// step are dealt round-robin to the ranks, gradients and metric sums are summed across
// ranks (each micro-batch's loss is already divided by the GLOBAL batch size, so the sum is
// the global batch mean), rank 0 alone writes files, and all ranks resume from them.
// The collectives it adds to core/collective.h's rank(), world_size(), all_reduce_sum and
// barrier are the trainer's own.
class DataParallel : public Collective {
 public:
  // Sums every parameter's gradient over the ranks, in place (undefined grads count as 0).
  virtual void all_reduce_gradients(const std::vector<at::Tensor>& params) = 0;
  // Sums the values over the ranks (the key set is taken from rank 0).
  virtual void all_reduce_metrics(std::map<std::string, double>& sums) = 0;
  // Copies rank 0's values into every rank's tensors.
  virtual void broadcast_parameters(const std::vector<at::Tensor>& params) = 0;
};

struct TrainLoopOptions {
  std::string model_dir;   // the input model: its tokenizer files go into every saved folder
  std::string output_dir;
  double learning_rate = 5e-7;
  OptimizerOptions optimizer;  // kind rmsprop | adamw, weight_decay, ...
  std::string lr_scheduler = "linear";
  double warmup_ratio = 0.1;
  int64_t epochs = 2;
  int64_t batch_size = 64;
  int64_t micro_batch_size = 8;
  // A limit: micro-batches are formed by packed tokens instead (data/packing.h
  // MicroBatching): each holds examples up to this many tokens; the batch (the optimizer's
  // unit) stays batch_size examples. kNoLimit: micro_batch_size examples each.
  int64_t max_tokens_per_micro_batch = kNoLimit;
  double max_grad_norm = 1.0;  // <= 0: no clipping
  int64_t logging_steps = 10;
  int64_t save_steps = 0;      // > 0: also checkpoint every save_steps steps
  uint64_t seed = 42;
  bool resume = false;
  // > 0: return after this many optimizer steps in this call, without the final save, as if
  // the process had been killed there (the pipeline slices work with it; tests kill runs).
  int64_t stop_after_steps = 0;
  DataParallel* parallel = nullptr;  // [dist] several processes (docs/distributed.md); null: one
  // Where and how the trained model runs (train/train_device.h): device "" = cuda
  // when available, else cpu; dtype "" = bf16 on cuda, fp32 on cpu. Gradient checkpointing
  // recomputes each decoder layer in the backward pass (Transformer::set_gradient_checkpointing).
  std::string device;
  std::string dtype;
  bool gradient_checkpointing = false;
  // LoRA (model/lora.h): lora.r > 0 trains a fresh adapter (A Kaiming-uniform from seed, B
  // zero) on the frozen model and saves adapter folders; adapters are merged into the loaded
  // model first, in order (the policy starts from model_dir's weights with them merged).
  LoraOptions lora;
  std::vector<std::string> adapters;
};

// Contributions of one micro-batch to its step's metrics, already divided so that summing
// them over the micro-batches of a batch gives the batch value (e.g. sum over pairs / B).
// "tokens" (real tokens processed) is summed as is.
using MetricMap = std::map<std::string, double>;

struct TrainLoopHooks {
  int64_t num_examples = 0;
  std::vector<int64_t> lengths;  // per example, for grouping micro-batches by length
  std::vector<int64_t> tokens;   // per example, its packed tokens (needed with a token budget)
  // Forward and backward of one micro-batch (indices into the data) of the given batch; the
  // loss it backpropagates must already be scaled so the accumulated gradient is the batch's.
  std::function<MetricMap(const std::vector<int64_t>& micro, const std::vector<int64_t>& batch)> micro_step;
  // Optional evaluation at each epoch end (run without grad); keys are logged with "eval_".
  std::function<MetricMap()> evaluate;
  // Options that must be equal when resuming (checked against the checkpoint).
  nlohmann::json fingerprint = nlohmann::json::object();
};

// The micro-batching of these options.
inline MicroBatching micro_batching(const TrainLoopOptions& options) {
  return MicroBatching{options.micro_batch_size, options.max_tokens_per_micro_batch};
}

struct TrainLoopResult {
  int64_t steps = 0;
  MetricMap last_logged;  // the last training metrics row
  MetricMap last_eval;    // the last evaluation (empty without evaluate)
  bool already_finished = false;  // --resume found a finished run: nothing was trained, the
                                  // model was given the finished run's weights
  bool stopped = false;           // stop_after_steps ended the call before the end
};

TrainLoopResult run_train_loop(Transformer& model, const TrainLoopOptions& options,
                               const TrainLoopHooks& hooks);

// The global L2 norm of the parameters' gradients (in double), as clip_grad_norm_ reports.
double global_grad_norm(const std::vector<at::Tensor>& params);
// Scales the gradients by max_norm / (norm + 1e-6) when that is below 1 (torch's clip_grad_norm_).
void clip_gradients(const std::vector<at::Tensor>& params, double norm, double max_norm);

}  // namespace spinlm
