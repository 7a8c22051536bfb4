// `spinlm eval`: benchmark tasks computed as lm-evaluation-harness v0.4.0 computes them, plus
// held-out SFT NLL/perplexity and SPIN reward accuracy. All the work is run_evaluation();
// this file maps command-line options onto EvalRunOptions.
#include <memory>

#include "cli/command.h"
#include "core/stop_signal.h"
#include "dist/dist_context.h"
#include "eval/builtin_tasks.h"
#include "eval/eval_run.h"
#include "model/device_choice.h"

namespace spinlm {
namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) parts.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return parts;
}

CommandAction setup_eval(CLI::App& app) {
  auto options = std::make_shared<EvalRunOptions>();
  auto tasks = std::make_shared<std::string>();
  auto progress_off = std::make_shared<bool>(false);
  EvalRunOptions& o = *options;
  std::string known;
  for (const auto& name : builtin_task_names()) known += (known.empty() ? "" : ", ") + name;
  app.footer(
      "Data layout (--data-dir D), rows with the HuggingFace datasets' fields:\n"
      "  D/<task>.jsonl          the evaluated split (arc: test, hellaswag: validation, mmlu: test,\n"
      "                          truthfulqa: validation, winogrande: validation, gsm8k: test)\n"
      "  D/<task>.fewshot.jsonl  the few-shot split (train; mmlu: dev)\n"
      "  mmlu: one file for all subjects (cais/mmlu \"all\"); each row's `subject` picks its\n"
      "  description and its few-shot examples (the first k dev rows of that subject).\n"
      "See docs/eval.md.");
  app.add_option("--model", o.model_dir, "HuggingFace model folder")->required();
  app.add_option("--adapter", o.adapter_dir, "PEFT LoRA adapter folder run on top of --model, unmerged");
  app.add_option("--tasks", *tasks, "comma-separated built-in tasks: " + known);
  app.add_option("--task-file", o.task_files, "task YAML file (repeatable; see docs/eval.md)");
  app.add_option("--data-dir", o.eval.data_dir, "folder of the task JSONL files");
  app.add_option("--num-fewshot", o.eval.num_fewshot,
                 "few-shot examples per prompt (default: each task's; 0-shot tasks stay 0-shot)");
  app.add_option("--limit", o.eval.limit, "only the first N documents of each task (and held-out rows)")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-size", o.eval.batch_size, "sequences per forward / rows decoded together")
      ->capture_default_str();
  app.add_option("--max-length", o.eval.max_length, "model context for tasks (0: max_position_embeddings)")
      ->capture_default_str();
  app.add_option("--output", o.output_path, "results JSON (harness shape)");
  app.add_option("--heldout-sft", o.heldout_sft, "conversation JSONL: NLL and perplexity of the assistant tokens");
  app.add_option("--heldout-pairs", o.heldout_pairs, "SPIN pairs JSONL: reward accuracy against --opponent");
  app.add_option("--opponent", o.opponent_dir, "the opponent model folder (for --heldout-pairs)");
  app.add_option("--beta", o.beta, "SPIN beta for the held-out rewards")->capture_default_str();
  app.add_option("--loss", o.loss, "the training loss the rewards follow: logistic | hinge | exponential | ipo (ipo: "
                                   "per-token log-probs, as TRL)")
      ->check(CLI::IsMember({"logistic", "sigmoid", "hinge", "exponential", "ipo"}))
      ->capture_default_str();
  app.add_option("--heldout-max-length", o.max_length, "held-out sequence length")->capture_default_str();
  app.add_option("--heldout-max-prompt-length", o.max_prompt_length, "held-out pair prompt length")
      ->capture_default_str();
  app.add_option("--device", o.device, kDeviceHelp);
  app.add_option("--dtype", o.dtype, kInferenceDtypeHelp);
  app.add_flag("--no-progress", *progress_off, "no progress bar");
  return [options, tasks, progress_off] {
    install_stop_signals();  // SIGTERM/SIGINT/SIGUSR1: keep the finished work (--output's journal), then stop
    options->tasks = split_commas(*tasks);
    // [dist] null for one process: under `spinlm launch` / torchrun the work is split.
    options->ranks.group = dist_from_environment(choose_device(options->device).str());
    options->eval.show_progress = !*progress_off && options->ranks.writer();
    run_evaluation(*options);
  };
}

const bool registered =
    register_command("eval", "benchmark tasks as lm-evaluation-harness computes them, held-out NLL and reward accuracy",
                     setup_eval);

}  // namespace
}  // namespace spinlm
