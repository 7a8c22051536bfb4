#include "eval/eval_run.h"

#include <cstdio>
#include <memory>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "eval/builtin_tasks.h"
#include "eval/results.h"
#include "eval/task_yaml.h"
#include "generate/generate_file.h"
#include "model/device_choice.h"
#include "model/hf_model.h"
#include "model/lora.h"
#include "model/stop_tokens.h"

namespace spinlm {

nlohmann::json run_evaluation(const EvalRunOptions& options) {
  check(!options.tasks.empty() || !options.task_files.empty() || !options.heldout_sft.empty() ||
            !options.heldout_pairs.empty(),
        "nothing to evaluate: give --tasks, --task-file, --heldout-sft or --heldout-pairs");
  check(options.heldout_pairs.empty() || !options.opponent_dir.empty(), "--heldout-pairs needs --opponent DIR");
  // Task definitions first: a typo in a task name or YAML fails before the model loads.
  std::vector<TaskDefinition> tasks;
  for (const auto& name : options.tasks) tasks.push_back(builtin_task(name));
  for (const auto& file : options.task_files) tasks.push_back(load_task_yaml(file));

  const at::Device device = choose_device(options.device);
  const at::ScalarType dtype = choose_dtype(options.dtype, device);
  log_info("eval: model on ", device.str(), " in ", dtype_option_name(dtype));
  const TextCodec codec = TextCodec::load(options.model_dir);
  auto model = std::make_unique<Transformer>(load_model(options.model_dir, device, dtype));
  attach_lora_adapter(*model, options.adapter_dir);
  const StopTokens stop = load_stop_tokens(options.model_dir, model->config(), &codec);
  EvalOptions eval = options.eval;
  eval.eos_ids = stop.ids;

  std::vector<TaskResult> results;
  for (const auto& task : tasks) results.push_back(evaluate_task(*model, codec, task, eval));

  nlohmann::json run_config = {{"model", "spinlm"},
                               {"model_args", "pretrained=" + options.model_dir},
                               {"batch_size", eval.batch_size},
                               {"num_fewshot", eval.num_fewshot < 0 ? nlohmann::json(nullptr) : nlohmann::json(eval.num_fewshot)},
                               {"limit", eval.limit < 0 ? nlohmann::json(nullptr) : nlohmann::json(eval.limit)},
                               {"data_dir", eval.data_dir},
                               {"device", device.str()},  // resolved: what the numbers came from
                               {"dtype", dtype_option_name(dtype)},
                               {"harness_semantics", "lm-evaluation-harness v0.4.0"}};
  nlohmann::json out = results_to_json(results, run_config);

  if (!options.heldout_sft.empty()) {
    HeldoutSftOptions sft;
    sft.files = {options.heldout_sft};
    sft.max_length = options.max_length;
    sft.batch_size = eval.batch_size;
    sft.limit = eval.limit;
    const auto result = heldout_sft(*model, codec, stop, sft);
    out["heldout"]["sft"] = to_json(result);
    log_info("held-out SFT: ", result.tokens, " assistant tokens, NLL/token ", result.nll_per_token, ", perplexity ",
             result.perplexity);
  }
  if (!options.heldout_pairs.empty()) {
    HeldoutPairsOptions pairs_options;
    pairs_options.files = {options.heldout_pairs};
    pairs_options.truncation.max_length = options.max_length;
    pairs_options.truncation.max_prompt_length = options.max_prompt_length;
    check(options.beta > 0, "--beta must be positive, got ", options.beta);
    pairs_options.beta = options.beta;
    pairs_options.loss = parse_spin_loss(options.loss);
    pairs_options.batch_size = eval.batch_size;
    pairs_options.limit = eval.limit;
    const auto pairs = load_heldout_pairs(codec, stop, model->config().vocab_size, pairs_options);
    const auto model_scores = score_heldout_pairs(*model, pairs, pairs_options);
    // One model in memory at a time: the opponent loads after the model is released.
    model.reset();
    const Transformer opponent = load_model(options.opponent_dir, device, dtype);
    const auto opponent_scores = score_heldout_pairs(opponent, pairs, pairs_options);
    const auto result = summarize_pair_rewards(pairs, model_scores, opponent_scores, pairs_options);
    out["heldout"]["pairs"] = to_json(result);
    out["heldout"]["pairs"]["beta"] = options.beta;
    out["heldout"]["pairs"]["loss"] = spin_loss_name(pairs_options.loss);
    out["heldout"]["pairs"]["opponent"] = options.opponent_dir;
    log_info("held-out pairs: ", result.pairs, " pairs, reward accuracy ", result.reward_accuracy, ", margin ",
             result.reward_margin);
  }

  if (options.print_table && !results.empty()) std::printf("%s", format_results_table(results).c_str());
  if (!options.output_path.empty()) {
    write_file_atomic(options.output_path, out.dump(2) + "\n");
    log_info("results written to ", options.output_path);
  }
  return out;
}

}  // namespace spinlm
