// `spinlm run --config RECIPE.yaml [--output RUN] [--resume]`: the SPIN loop of a recipe
// (pipeline/spin_loop.h), then the summary table and RUN/report.html. `--check` validates the
// recipe and prints the settings the run would use and the training memory estimate.
#include <cstdio>
#include <fstream>

#include "cli/command.h"
#include "core/stop_signal.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "dist/dist_context.h"  // [dist] several processes (docs/distributed.md)
#include "dist/dist_env.h"
#include "model/config.h"
#include "model/device_choice.h"
#include "model/fused_attention.h"
#include "pipeline/recipe.h"
#include "pipeline/report.h"
#include "pipeline/spin_loop.h"
#include "train/memory_estimate.h"
#include "train/spin_trainer.h"
#include "train/train_device.h"

namespace spinlm {
namespace {

struct RunCliOptions {
  std::string config;
  std::string output;
  bool resume = false;
  bool validate_only = false;
  bool list_keys = false;
  std::string device = "auto";
  std::string dtype = "auto";
  int64_t max_tokens_per_micro_batch = kNoLimit;  // applied to every iteration when given
};

std::string gib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", double(bytes) / double(int64_t(1) << 30));
  return text;
}

// Non-empty lines of a file (the rows of a JSONL file); -1 when it cannot be read.
int64_t count_rows(const std::string& path) {
  std::ifstream in(path);
  if (!in) return -1;
  int64_t rows = 0;
  for (std::string line; std::getline(in, line);) rows += line.find_first_not_of(" \t\r") != std::string::npos;
  return rows;
}

// "iter 0-3: text" for runs of consecutive iterations whose text is the same.
void print_by_iteration(const std::vector<std::string>& lines) {
  for (size_t first = 0; first < lines.size();) {
    size_t last = first;
    while (last + 1 < lines.size() && lines[last + 1] == lines[first]) ++last;
    const std::string range = first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
    std::printf("  iter %s: %s\n", range.c_str(), lines[first].c_str());
    first = last + 1;
  }
}

// `run --check`: the settings the run would use and the training memory estimate per process
// (train/memory_estimate.h) for the recipe's model.
void print_check(const std::string& config, const Recipe& recipe, const RunPlacement& chosen, const TrainDevice& device) {
  std::printf("%s: valid recipe, %zu iterations; models on %s in %s\n", config.c_str(), recipe.iterations.size(),
              device.device.str().c_str(), dtype_option_name(device.dtype).c_str());
  std::printf("  device %s (%s), dtype %s (%s)\n", device.device.str().c_str(), chosen.device_from.c_str(),
              dtype_option_name(device.dtype).c_str(), chosen.dtype_from.c_str());
  std::vector<std::string> settings;
  for (const TrainSettings& t : recipe.iterations) {
    const bool master = t.optimizer_state_dtype == "fp32" && device.dtype != at::kFloat;
    char line[512];
    std::snprintf(line, sizeof line,
                  "%s with %s state%s; gradient checkpointing %s; batch %lld = %lld pairs per micro-batch x %lld "
                  "accumulation steps, max_length %lld; checkpoints at epoch ends%s",
                  t.optim.c_str(), t.optimizer_state_dtype.c_str(), master ? " and fp32 master weights" : "",
                  t.gradient_checkpointing ? "on" : "off", (long long)t.batch_size(),
                  (long long)t.per_device_train_batch_size, (long long)t.gradient_accumulation_steps,
                  (long long)t.max_length,
                  t.save_steps > 0 ? (" and every " + std::to_string(t.save_steps) + " steps").c_str() : "");
    settings.push_back(line);
  }
  print_by_iteration(settings);
  double lowest_bf16_lr = 0;  // the smallest learning rate trained on bf16 weights without master weights
  for (const TrainSettings& t : recipe.iterations)
    if (device.dtype == at::kBFloat16 && t.optimizer_state_dtype == "bf16")
      lowest_bf16_lr = lowest_bf16_lr == 0 ? t.learning_rate : std::min(lowest_bf16_lr, t.learning_rate);
  if (lowest_bf16_lr > 0)
    std::printf("  note: bf16 weights without fp32 master weights (bf16 optimizer state): an update below half a bf16 "
                "step of its weight (|w|/512 to |w|/256) is rounded away, and RMSprop's updates are about the "
                "learning rate (down to %g here): every weight with |w| above %.2g keeps its value through such "
                "steps; float32 state keeps fp32 master weights\n",
                lowest_bf16_lr, lowest_bf16_lr * 512);

  std::string config_json = recipe.model_name_or_path + "/config.json";
  if (!file_exists(config_json) && is_lora_adapter_folder(recipe.model_name_or_path))
    config_json = resolve_model_source(recipe.model_name_or_path).folder + "/config.json";
  if (!file_exists(config_json)) {
    std::printf("peak memory: no estimate, %s is not here (the estimate reads the model's config.json)\n",
                config_json.c_str());
    return;
  }
  const ModelConfig model = load_config(config_json);
  int64_t rows = count_rows(recipe.data.train);
  if (rows >= 0 && has_limit(recipe.data.max_train_samples)) rows = std::min(rows, recipe.data.max_train_samples);
  const int64_t world = dist_env_from_environment().world_size;
  std::printf("peak memory per training process (estimate: src/train/memory_estimate.h), %s, %.3g parameters, "
              "attention %s, %lld process%s:\n",
              recipe.model_name_or_path.c_str(), double(model.num_parameters()),
              fused_attention_applies(device.device) ? "fused (SDPA)" : "eager", (long long)world,
              world == 1 ? "" : "es");
  std::vector<std::string> lines;
  int64_t pairs_cached = 0, cache_bytes = 0;
  for (size_t i = 0; i < recipe.iterations.size(); ++i) {
    const TrainSettings& t = recipe.iterations[i];
    TrainingMemoryShape shape;
    shape.config = model;
    shape.dtype = device.dtype;
    shape.fused_attention = fused_attention_applies(device.device);
    shape.optimizer = t.optim;
    shape.optimizer_state_dtype = t.optimizer_state_dtype;
    shape.weight_decay = t.weight_decay > 0;
    shape.sequences = 2 * t.per_device_train_batch_size;  // the real and the generated answer of each pair
    shape.max_length = t.max_length;
    shape.chunk_positions = SpinTrainOptions().chunk_positions;
    shape.world_size = world;
    shape.reference_pairs = rows < 0 ? 0 : rows * (t.mix_previous && i > 0 ? 2 : 1);
    const MemoryEstimate e = estimate_training_memory(shape);
    pairs_cached = std::max(pairs_cached, shape.reference_pairs);
    cache_bytes = std::max(cache_bytes, e.reference_cache);
    std::string line = "weights " + gib(e.weights) + ", gradients " + gib(e.gradients) + ", optimizer state " +
                       gib(e.optimizer_state) + ", master weights " + gib(e.master_weights) + ";\n          activations " +
                       gib(e.activations_checkpointed) + " with gradient checkpointing, " + gib(e.activations) +
                       " without, for " + std::to_string(shape.sequences) + " x " + std::to_string(t.max_length) +
                       " tokens; at the optimizer step " + gib(e.step) + ";\n          peak " + gib(e.peak(t.gradient_checkpointing)) +
                       (t.gradient_checkpointing ? " (gradient checkpointing on)" : " (gradient checkpointing off)");
    if (world == 1) {
      TrainingMemoryShape several = shape;
      several.world_size = 2;
      line += ", " + gib(estimate_training_memory(several).peak(t.gradient_checkpointing)) +
              " under several processes (the all-reduce's gradient copies)";
    }
    lines.push_back(line);
  }
  print_by_iteration(lines);
  if (rows >= 0)
    std::printf("  reference log-probs: cached on the host, %lld bytes for up to %lld pairs (no second model)\n",
                (long long)cache_bytes, (long long)pairs_cached);
  std::printf("  not counted: the CUDA context and allocator slack (leave ~10%% free), generation's KV cache\n");
}

CommandAction setup_run(CLI::App& app) {
  auto o = std::make_shared<RunCliOptions>();
  app.add_option("--config", o->config, "recipe YAML (see examples/; --list-keys lists its keys)");
  app.add_flag("--list-keys", o->list_keys, "print every recipe key with its default and meaning, and exit");
  app.add_option("--output", o->output, "run folder (default: the recipe's output_dir)");
  app.add_flag("--resume", o->resume, "continue a killed run in the same folder");
  app.add_flag("--check", o->validate_only,
               "validate the recipe (and --device/--dtype), print the resolved settings and a training memory "
               "estimate per process, and exit");
  app.add_option("--device", o->device, std::string(kDeviceHelp) + "; every model of the run; wins over the "
                                        "recipe's device (--resume may continue on another device)");
  app.add_option("--dtype", o->dtype, std::string(kTrainingDtypeHelp) + "; must agree with the recipe's "
                                      "torch_dtype / bf16 when both are given");
  CLI::Option* token_budget = app.add_option("--max-tokens-per-micro-batch", o->max_tokens_per_micro_batch,
                 "every iteration's max_tokens_per_micro_batch (recipe key): micro-batches of pairs up to "
                 "this many packed tokens (default: the recipe's; none: a fixed count of pairs)")
      ->check(CLI::PositiveNumber);
  return [o, token_budget] {
    if (o->list_keys) {
      std::printf("%s", recipe_key_list().c_str());
      return;
    }
    check(!o->config.empty(), "spinlm run needs --config RECIPE.yaml (spinlm run --list-keys lists its keys)");
    install_stop_signals();  // SIGTERM/SIGINT/SIGUSR1: save at the next safe point, then stop
    // The whole recipe is validated before anything is written.
    Recipe recipe = load_recipe(o->config);
    if (token_budget->count() > 0)
      for (TrainSettings& t : recipe.iterations) t.max_tokens_per_micro_batch = o->max_tokens_per_micro_batch;
    if (o->validate_only) {
      // The same resolution run_spin does first: a bad --device/--dtype fails the check too.
      const RunPlacement chosen = resolve_placement(recipe.placement, o->device, o->dtype);
      print_check(o->config, recipe, chosen, resolve_run_device(recipe.placement, chosen));
      return;
    }
    RunOptions options;
    options.run_dir = o->output.empty() ? recipe.output_dir : o->output;
    options.resume = o->resume;
    options.device = o->device;
    options.dtype = o->dtype;
    const RunPlacement chosen = resolve_placement(recipe.placement, o->device, o->dtype);
    // [dist] null for one process; the process group on the run's device (NCCL for CUDA).
    options.dist = dist_from_environment(resolve_run_device(recipe.placement, chosen).device.str());
    const bool rank0 = options.dist == nullptr || options.dist->rank() == 0;
    options.show_progress = rank0;
    const RunSummary summary = run_spin(recipe, options);
    if (!rank0) return;  // rank 0 prints the table and writes the report
    std::printf("%s", format_summary_table(summary).c_str());
    if (!summary.stopped.empty()) std::printf("stopped early: %s\n", summary.stopped.c_str());
    std::printf("final model: %s\nreport: %s\n", summary.final_model.c_str(),
                write_report(options.run_dir).c_str());
  };
}

const bool registered = register_command("run", "run the SPIN loop of a recipe (generate, train, evaluate)", setup_run);

}  // namespace
}  // namespace spinlm
