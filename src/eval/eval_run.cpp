#include "eval/eval_run.h"

#include <cstdio>
#include <memory>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "eval/builtin_tasks.h"
#include "eval/model_eval.h"
#include "eval/results.h"
#include "eval/task_yaml.h"
#include "io/work_journal.h"
#include "model/device_choice.h"
#include "model/hf_model.h"
#include "model/model_text.h"
#include "model/lora.h"

namespace spinlm {
namespace {

// What an evaluation's numbers depend on: a journal made under another one is not resumed.
nlohmann::json evaluation_fingerprint(const EvalRunOptions& o, at::ScalarType dtype) {
  return {{"model", o.model_dir},
          {"adapter", o.adapter_dir},
          {"dtype", dtype_option_name(dtype)},
          {"tasks", o.tasks},
          {"task_files", o.task_files},
          {"data_dir", o.eval.data_dir},
          {"num_fewshot", o.eval.num_fewshot},
          {"limit", o.eval.limit},
          {"batch_size", o.eval.batch_size},
          {"max_length", o.eval.max_length},
          {"heldout_sft", o.heldout_sft},
          {"heldout_pairs", o.heldout_pairs},
          {"opponent", o.opponent_dir},
          {"beta", o.beta},
          {"loss", o.loss},
          {"heldout_max_length", o.max_length},
          {"heldout_max_prompt_length", o.max_prompt_length}};
}

}  // namespace

nlohmann::json run_evaluation(const EvalRunOptions& options) {
  check(!options.tasks.empty() || !options.task_files.empty() || !options.heldout_sft.empty() ||
            !options.heldout_pairs.empty(),
        "nothing to evaluate: give --tasks, --task-file, --heldout-sft or --heldout-pairs");
  check(options.heldout_pairs.empty() || !options.opponent_dir.empty(), "--heldout-pairs needs --opponent DIR");
  check(options.beta > 0, "--beta must be positive, got ", options.beta);
  ModelEvalPlan plan;
  plan.model_dir = options.model_dir;
  if (!options.adapter_dir.empty()) plan.adapters = {options.adapter_dir};
  // Task definitions first: a typo in a task name or YAML fails before the model loads.
  for (const auto& name : options.tasks) plan.tasks.push_back(builtin_task(name));
  for (const auto& file : options.task_files) plan.tasks.push_back(load_task_yaml(file));
  plan.task_options = options.eval;
  plan.show_progress = options.eval.show_progress;
  plan.ranks = options.ranks;
  if (!options.heldout_sft.empty()) {
    plan.heldout_sft.files = {options.heldout_sft};
    plan.heldout_sft.max_length = options.max_length;
    plan.heldout_sft.batch_size = options.eval.batch_size;
    plan.heldout_sft.limit = options.eval.limit;
  }

  const at::Device device = choose_device(options.device);
  const at::ScalarType dtype = choose_dtype(options.dtype, device);
  log_info("eval: model on ", device.str(), " in ", dtype_option_name(dtype));
  // Finished work is kept beside --output (io/work_journal.h): a stopped evaluation, rerun,
  // continues where it stopped.
  const auto journal = std::make_unique<WorkJournal>(
      options.output_path.empty() ? "" : options.output_path + ".journal", evaluation_fingerprint(options, dtype),
      options.ranks, "evaluation");
  plan.journal = journal.get();
  if (!options.heldout_pairs.empty()) {
    HeldoutPairsOptions& pairs_options = plan.heldout_pairs;
    pairs_options.files = {options.heldout_pairs};
    pairs_options.truncation.max_length = options.max_length;
    pairs_options.truncation.max_prompt_length = options.max_prompt_length;
    pairs_options.beta = options.beta;
    pairs_options.loss = parse_spin_loss(options.loss);
    pairs_options.batch_size = options.eval.batch_size;
    pairs_options.limit = options.eval.limit;
    pairs_options.ranks = options.ranks;
    // The opponent first, alone in memory; its scores are all the evaluation needs of it.
    const ModelText text = load_model_text(options.model_dir);
    check(text.codec != nullptr, options.model_dir, ": no tokenizer.json; held-out pairs need the model's tokenizer");
    const auto pairs = load_heldout_pairs(*text.codec, text.stop, text.vocab_size, pairs_options);
    HeldoutPairsOptions opponent_options = pairs_options;
    opponent_options.journal = {journal.get(), "opponent_pairs"};
    const Transformer opponent = load_model(options.opponent_dir, device, dtype);
    plan.opponent = score_heldout_pairs(opponent, pairs, opponent_options);
  }
  Transformer model = load_model(options.model_dir, device, dtype);
  attach_lora_adapter(model, options.adapter_dir);
  const ModelEvalResult result = evaluate_model(model, plan);
  nlohmann::json out = results_json(result, plan);
  if (result.heldout_pairs) out["heldout"]["pairs"]["opponent"] = options.opponent_dir;

  if (options.ranks.writer()) {
    if (options.print_table && !result.tasks.empty()) std::printf("%s", format_results_table(result.tasks).c_str());
    if (!options.output_path.empty()) {
      write_file_atomic(options.output_path, out.dump(2) + "\n");
      log_info("results written to ", options.output_path);
    }
  }
  journal->remove();
  return out;
}

}  // namespace spinlm
