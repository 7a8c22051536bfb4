#include "train/train_loop.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/progress.h"
#include "core/stop_signal.h"
#include "data/collate.h"
#include "model/hf_model.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/schedule.h"

namespace spinlm {
namespace fs = std::filesystem;

double global_grad_norm(const std::vector<at::Tensor>& params) {
  // Per-tensor norms in fp32 (bf16 gradients are widened first), copied to the host in one
  // transfer (one GPU synchronisation per step, not one per parameter), summed in double.
  std::vector<at::Tensor> norms;
  for (const at::Tensor& p : params) {
    if (!p.grad().defined()) continue;
    const at::Tensor& g = p.grad();
    const bool wide = g.scalar_type() == at::kFloat || g.scalar_type() == at::kDouble;
    norms.push_back((wide ? g : g.to(at::kFloat)).norm().to(at::kDouble).reshape({1}));
  }
  if (norms.empty()) return 0.0;
  const at::Tensor host = at::cat(norms).cpu();
  const double* n = host.data_ptr<double>();
  double sum = 0.0;
  for (int64_t i = 0; i < host.numel(); ++i) sum += n[i] * n[i];
  return std::sqrt(sum);
}

void clip_gradients(const std::vector<at::Tensor>& params, double norm, double max_norm) {
  if (max_norm <= 0) return;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return;
  at::NoGradGuard no_grad;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) const_cast<at::Tensor&>(p).mutable_grad().mul_(coef);
  }
}

namespace {

void validate(const TrainLoopOptions& o, const TrainLoopHooks& hooks) {
  check(!o.output_dir.empty(), "an output folder is required (--output)");
  check(o.learning_rate >= 0, "learning rate must not be negative, got ", o.learning_rate);
  check(o.epochs > 0, "epochs must be positive, got ", o.epochs);
  check(o.batch_size > 0, "batch size must be positive, got ", o.batch_size);
  check(o.micro_batch_size > 0, "micro-batch size must be positive, got ", o.micro_batch_size);
  check(o.logging_steps > 0, "logging steps must be positive, got ", o.logging_steps);
  check(o.save_steps >= 0, "save steps must not be negative");
  check(hooks.num_examples > 0, "no training examples");
  check(static_cast<int64_t>(hooks.lengths.size()) == hooks.num_examples, "lengths do not match the data");
  check(!has_limit(o.max_tokens_per_micro_batch) || o.max_tokens_per_micro_batch > 0,
        "max tokens per micro-batch must be positive, got ", o.max_tokens_per_micro_batch);
  check(!has_limit(o.max_tokens_per_micro_batch) || static_cast<int64_t>(hooks.tokens.size()) == hooks.num_examples,
        "packed token counts do not match the data");
}

}  // namespace

TrainLoopResult run_train_loop(Transformer& model, const TrainLoopOptions& options,
                               const TrainLoopHooks& hooks) {
  validate(options, hooks);
  make_directories(options.output_dir);
  const int64_t n = hooks.num_examples;
  const int64_t batches_per_epoch = (n + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = batches_per_epoch * options.epochs;
  LrSchedule schedule(parse_schedule(options.lr_scheduler), options.learning_rate, total_steps,
                      options.warmup_ratio);

  nlohmann::json fingerprint = hooks.fingerprint;
  fingerprint["learning_rate"] = options.learning_rate;
  fingerprint["optimizer"] = options.optimizer.kind;
  fingerprint["weight_decay"] = options.optimizer.weight_decay;
  fingerprint["lr_scheduler"] = options.lr_scheduler;
  fingerprint["warmup_ratio"] = options.warmup_ratio;
  fingerprint["epochs"] = options.epochs;
  fingerprint["batch_size"] = options.batch_size;
  fingerprint["micro_batch_size"] = options.micro_batch_size;
  if (has_limit(options.max_tokens_per_micro_batch)) fingerprint["max_tokens_per_micro_batch"] = options.max_tokens_per_micro_batch;
  fingerprint["max_grad_norm"] = options.max_grad_norm;
  fingerprint["logging_steps"] = options.logging_steps;
  fingerprint["seed"] = options.seed;
  fingerprint["num_examples"] = n;
  // (added) Resuming in another dtype or optimizer-state dtype would not continue the same run
  // (keys only when not the defaults, so older checkpoints still resume).
  if (model.dtype() != at::kFloat) fingerprint["dtype"] = c10::toString(model.dtype());
  if (options.optimizer.state_dtype != "fp32") fingerprint["optimizer_state_dtype"] = options.optimizer.state_dtype;
  if (const auto& lora = model.lora()) {
    const LoraOptions& l = lora->options();
    fingerprint["lora"] = {{"r", l.r}, {"alpha", l.alpha}, {"dropout", l.dropout},
                           {"target_modules", l.targets.to_string()}, {"use_rslora", l.use_rslora}};
  }

  // The adapters' A and B alone when the model carries LoRA adapters (model/lora.h).
  std::vector<at::Tensor> params = model.trainable_parameters();
  Optimizer optimizer(params, options.optimizer);
  // [dist] rank 0 alone writes files; every rank reads them (options.parallel, train_loop.h).
  DataParallel* const parallel = options.parallel;
  const int rank = parallel ? parallel->rank() : 0;
  const int world = parallel ? parallel->world_size() : 1;
  const bool writes = rank == 0;

  TrainerState state;
  state.seed = options.seed;
  state.fingerprint = fingerprint;
  int64_t keep_rows = -1;
  std::string latest_folder;
  TrainLoopResult result;
  MetricWindow window;

  const std::string pointer = (fs::path(options.output_dir) / "trainer_state.json").string();
  if (options.resume) {
    if (auto latest = find_latest_checkpoint(options.output_dir)) {
      check_fingerprint(latest->state.fingerprint, fingerprint, latest->folder + "/trainer_state.json");
      if (latest->finished) {
        log_info("training in ", options.output_dir, " already finished; nothing to resume");
        restore_weights(model, options.output_dir);  // the model holds the trained weights on return
        result.already_finished = true;
        result.steps = latest->state.global_step;
        return result;
      }
      restore_weights(model, latest->folder);
      optimizer.load_state((fs::path(latest->folder) / "optimizer.safetensors").string());
      state = latest->state;
      window.from_json(state.window);
      keep_rows = state.metrics_rows;
      latest_folder = fs::path(latest->folder).filename().string();
      log_info("resuming from ", latest->folder, " at step ", state.global_step, " of ", total_steps);
    } else {
      log_info("no checkpoint in ", options.output_dir, "; starting from the beginning");
    }
  } else if (writes && file_exists(pointer)) {
    // A fresh run must never resume into an older run's checkpoints later.
    fs::remove(pointer);
  }
  std::optional<MetricsWriter> writer;  // [dist] rank 0 only
  if (writes) writer.emplace((fs::path(options.output_dir) / "metrics.jsonl").string(), keep_rows);
  // [dist] every rank starts from rank 0's weights (equal already when all loaded the same files).
  if (parallel) parallel->broadcast_parameters(params);

  auto save = [&](const std::string& folder) {
    if (writes) {
      state.metrics_rows = writer->rows();
      state.window = window.to_json();
      save_checkpoint(model, optimizer, state, options.output_dir, folder, options.model_dir);
    }
    if (parallel) parallel->barrier();  // [dist] the checkpoint is complete before anyone goes on
    latest_folder = folder;
  };

  std::optional<Progress> progress;  // [dist] rank 0 only
  if (writes) progress.emplace("train", total_steps, "steps");
  int64_t steps_this_call = 0;
  for (int64_t epoch = state.epoch; epoch < options.epochs; ++epoch) {
    const std::vector<int64_t> order = seeded_permutation(n, options.seed + static_cast<uint64_t>(epoch));
    for (int64_t b = state.batch_in_epoch; b < batches_per_epoch; ++b) {
      const auto start = std::chrono::steady_clock::now();
      const int64_t begin = b * options.batch_size;
      const int64_t end = std::min(n, begin + options.batch_size);
      std::vector<int64_t> batch(order.begin() + begin, order.begin() + end);

      optimizer.zero_grad();
      // LoRA dropout masks follow (seed, step): a resumed run draws the same ones.
      if (model.lora()) model.lora()->seed_dropout(options.seed * 1000003u + static_cast<uint64_t>(state.global_step));
      MetricMap step;
      const auto micros = split_micro_batches(batch, hooks.lengths, hooks.tokens, micro_batching(options));
      // [dist] micro-batches dealt round-robin to the ranks; sums over all ranks afterwards.
      for (size_t m = static_cast<size_t>(rank); m < micros.size(); m += static_cast<size_t>(world)) {
        for (const auto& [key, value] : hooks.micro_step(micros[m], batch)) step[key] += value;
      }
      if (parallel) {
        parallel->all_reduce_gradients(params);
        parallel->all_reduce_metrics(step);
      }
      const double loss = step["loss"];
      const double grad_norm = global_grad_norm(params);
      const std::string last_good =
          latest_folder.empty() ? std::string("none yet") : (fs::path(options.output_dir) / latest_folder).string();
      check(std::isfinite(loss), "step ", state.global_step + 1, " (epoch ", epoch + 1, "): the loss is ",
            loss, "; training stopped. The last good checkpoint is kept (", last_good,
            "); lower the learning rate or check the data");
      check(std::isfinite(grad_norm), "step ", state.global_step + 1, " (epoch ", epoch + 1,
            "): the gradient norm is ", grad_norm, "; training stopped. The last good checkpoint is kept (",
            last_good, "); lower the learning rate or check the data");
      clip_gradients(params, grad_norm, options.max_grad_norm);
      const double lr = schedule.lr(state.global_step);
      optimizer.step(lr);
      ++state.global_step;
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

      step["grad_norm"] = grad_norm;
      step["learning_rate"] = lr;
      step["_seconds"] = seconds;
      step["_tokens"] = step["tokens"];
      step.erase("tokens");
      window.add_step(step);
      state.batch_in_epoch = b + 1;
      const bool epoch_end = b + 1 == batches_per_epoch;
      if (state.global_step % options.logging_steps == 0 || epoch_end) {
        MetricMap means = window.means();
        // Rate over the whole window (a sum of tokens over a sum of seconds).
        means["tokens_per_second"] = means["_seconds"] > 0 ? means["_tokens"] / means["_seconds"] : 0.0;
        means.erase("_seconds");
        means.erase("_tokens");
        const double epoch_float =
            static_cast<double>(epoch) + static_cast<double>(b + 1) / static_cast<double>(batches_per_epoch);
        if (writer) writer->write(metrics_row(means, state.global_step, epoch_float));
        result.last_logged = means;
        window.clear();
      }
      char extra[64];
      std::snprintf(extra, sizeof(extra), "loss %.4f", loss);
      if (progress) progress->update(state.global_step, extra);
      const bool saved_now = !epoch_end && options.save_steps > 0 && state.global_step % options.save_steps == 0;
      if (saved_now) save("checkpoint-" + std::to_string(state.global_step));
      // Preemption (core/stop_signal.h): after a signal, the step's checkpoint, then stop.
      // [dist] every rank stops at the same step when any rank got the signal.
      std::vector<double> stop = {stop_requested() ? 1.0 : 0.0};
      if (parallel) parallel->all_reduce_sum(stop);
      if (stop[0] > 0) {
        const std::string folder = "checkpoint-" + std::to_string(state.global_step);
        if (!saved_now) save(folder);
        throw Preempted("training stopped by " + stop_cause() +
                        " after step " + std::to_string(state.global_step) + " of " + std::to_string(total_steps) +
                        "; checkpoint " + (fs::path(options.output_dir) / folder).string() +
                        " saved: rerun the same command with --resume to continue");
      }
      if (options.stop_after_steps > 0 && ++steps_this_call >= options.stop_after_steps) {
        result.stopped = true;
        result.steps = state.global_step;
        return result;
      }
    }
    state.epoch = epoch + 1;
    state.batch_in_epoch = 0;
    if (hooks.evaluate) {
      MetricMap eval;
      {
        at::NoGradGuard no_grad;
        eval = hooks.evaluate();
      }
      if (writer) writer->write(metrics_row(eval, state.global_step, static_cast<double>(epoch + 1), "eval_"));
      result.last_eval = eval;
    }
    save("epoch-" + std::to_string(epoch + 1));
  }
  if (progress) progress->finish();
  if (writes) {
    save_trained_weights(model, options.output_dir, options.model_dir);
    mark_finished(options.output_dir, latest_folder);
  }
  if (parallel) parallel->barrier();  // [dist] the final model is written before any rank returns
  result.steps = state.global_step;
  return result;
}

}  // namespace spinlm
