// `spinlm generate`: the model answers the first user turn of every conversation in a JSONL
// file (batched, KV-cached, resumable). All the work is generate_file(); this file only maps
// command-line options onto GenerateOptions.
#include <memory>

#include "cli/command.h"
#include "core/stop_signal.h"
#include "core/logging.h"
#include "generate/generate_file.h"
#include "model/device_choice.h"
#include "dist/dist_generate.h"  // [dist] several processes (docs/distributed.md)

namespace spinlm {
namespace {

CommandAction setup_generate(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  auto shard = std::make_shared<std::string>("0/1");
  auto progress_off = std::make_shared<bool>(false);
  auto graphs_off = std::make_shared<bool>(false);
  GenerateOptions& o = *options;
  app.add_option("--model", o.model_dir, "HuggingFace model folder")->required();
  app.add_option("--adapter", o.adapter_dir, "PEFT LoRA adapter folder run on top of --model, unmerged");
  app.add_option("--input", o.input_path,
                 "conversation JSONL ({\"messages\":..}, {\"prompt\",\"response\"} or {\"real\",\"generated\"})")
      ->required();
  app.add_option("--output", o.output_path, "output JSONL (resumed if OUTPUT.partial exists)")->required();
  app.add_option("--max-new-tokens", o.max_new_tokens, "most tokens per answer")->capture_default_str();
  app.add_option("--temperature", o.sampling.temperature, "sampling temperature (0: greedy)")
      ->capture_default_str();
  app.add_option("--top-p", o.sampling.top_p, "nucleus sampling mass (1: off)")->capture_default_str();
  app.add_option("--top-k", o.sampling.top_k, "keep the k most likely tokens (0: off)")->capture_default_str();
  app.add_option("--min-p", o.sampling.min_p, "drop tokens below min-p x the top probability (0: off)")
      ->capture_default_str();
  app.add_flag("--greedy", o.sampling.greedy, "argmax decoding");
  app.add_option("--seed", o.seed, "random seed (each row draws from (seed, row index, step))")
      ->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "rows decoded together")->capture_default_str();
  app.add_option("--max-batch-tokens", o.max_batch_tokens, "prompt tokens per prefill forward")
      ->capture_default_str();
  app.add_option("--prompt-format", o.prompt_format,
                 "chat (the model's chat template) or spin-legacy (\"### Instruction: ..\")")
      ->check(CLI::IsMember({"chat", "spin-legacy"}))
      ->capture_default_str();
  app.add_option("--system", o.system, "system message before the user turn (chat format)");
  app.add_option("--stop", o.stop, "stop string (repeatable); the answer is cut before it");
  app.add_option("--limit", o.limit, "only the first N rows")->check(CLI::PositiveNumber);
  app.add_option("--shard", *shard, "only rows i with i % N == I")->capture_default_str();
  app.add_flag("--skip-bad", o.skip_bad, "skip bad rows with a warning instead of stopping");
  app.add_option("--device", o.device, kDeviceHelp);
  app.add_option("--dtype", o.dtype, kInferenceDtypeHelp);
  app.add_option("--steps-per-sync", o.steps_per_sync,
                 "GPU: tokens every row decodes on the device between reads of the sampled tokens")
      ->capture_default_str();
  app.add_flag("--no-cuda-graphs", *graphs_off, "GPU: launch the decoding step kernel by kernel, not as a CUDA graph");
  app.add_flag("--no-progress", *progress_off, "no progress bar");
  return [options, shard, progress_off, graphs_off] {
    install_stop_signals();  // SIGTERM/SIGINT/SIGUSR1: save at the next safe point, then stop
    options->cuda_graphs = !*graphs_off;
    std::tie(options->shard_index, options->shard_count) = parse_shard(*shard);
    options->show_progress = !*progress_off;
    // A bad --device/--dtype fails here, before any work; "auto" and a bare "cuda" become
    // this rank's GPU (model/device_choice.h), the same device for the model and the ranks' tensors.
    const at::Device device = choose_device(options->device);
    options->dtype = dtype_option_name(choose_dtype(options->dtype, device));
    options->device = device.str();
    // [dist] with several ranks each generates its share and rank 0 merges (dist_generate.h)
    DistContext* dist = dist_from_environment(options->device);
    GenerateSummary summary = dist ? generate_file_distributed(*options, *dist) : generate_file(*options);
    log_info("generate: ", summary.rows_generated, " rows generated, ", summary.rows_resumed,
             " resumed, ", summary.rows_skipped, " skipped; ", summary.new_tokens, " new tokens in ",
             summary.seconds, " s -> ", options->output_path,
             summary.decode_windows > 0 ? "; device loop: " + std::to_string(summary.decode_windows) +
                                              " token reads, cuda graph " + (summary.cuda_graphs > 0 ? "yes" : "no")
                                        : std::string());
    if (summary.rows_skipped > 0) {
      log_warning(summary.rows_skipped, " bad rows skipped (--skip-bad); they are absent from ",
                  options->output_path);
    }
  };
}

const bool registered = register_command("generate", "sample the model's answers to the prompts of a JSONL file",
                                         setup_generate);

}  // namespace
}  // namespace spinlm
