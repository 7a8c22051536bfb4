#include "eval/model_eval.h"

#include <cmath>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "data/arith_task.h"
#include "data/verifier.h"
#include "eval/answer_distribution.h"
#include "eval/results.h"
#include "generate/generate_shards.h"
#include "io/jsonl.h"
#include "model/device_choice.h"
#include "model/model_text.h"

namespace spinlm {
namespace {

using json = nlohmann::json;

// Exact match of "#### N" on a split ("exact_match", "heldout_exact_match"), greedy or with
// one sample at temperature 1 ("sample_accuracy", ...); the answers stay in generations_path,
// one row per problem with its "correct" flag (what McNemar's test against a control reads).
json exact_match(const Transformer& model, const TextCodec& codec, const ModelEvalPlan& plan, const AnswerSplit& split,
                 const std::string& key, const std::string& generations_path, bool sampled) {
  // One unit of the journal once the answers are checked and written (generation itself
  // resumes from its partial file).
  const std::string unit = UnitKey().add(split.path).add(std::to_string(split.limit)).add(generations_path).hex();
  const json* recorded = plan.journal ? plan.journal->find(key, unit) : nullptr;
  if (!plan.ranks.any(recorded == nullptr)) return *recorded;  // [dist] skipped by every rank or by none
  GenerateOptions g;
  g.model_dir = plan.model_dir;
  g.device = model.device().str();
  g.dtype = dtype_option_name(model.dtype());
  g.input_path = split.path;
  g.output_path = generations_path;
  g.max_new_tokens = plan.answers.max_new_tokens;
  g.sampling.greedy = !sampled;
  g.sampling.temperature = 1.0;
  g.seed = plan.answers.seed;
  g.batch_size = plan.answers.batch_size;
  g.prompt_format = plan.answers.prompt_format;
  g.limit = split.limit;
  g.show_progress = plan.show_progress;
  generate_file(model, codec, g, plan.ranks);
  std::vector<std::optional<int64_t>> answers;
  for (const JsonlRow& row : read_jsonl(split.path)) answers.push_back(row_final_answer(row.value));
  int64_t correct = 0, total = 0;
  std::vector<json> rows;
  for (const JsonlRow& row : read_jsonl(generations_path)) {
    const int64_t index = row.value.at("index").get<int64_t>();
    check(index >= 0 && index < int64_t(answers.size()), generations_path, ":", row.line, ": index out of range");
    const std::optional<int64_t>& answer = answers[size_t(index)];
    check(answer.has_value(), split.path, ": row ", index + 1,
          " has no final answer (an \"answer\" field or \"#### N\" in the assistant message)");
    const std::string text = row.value.at("generated").back().at("content").get<std::string>();
    const bool right = arith_answer_correct(text, *answer);
    correct += right;
    ++total;
    rows.push_back(row.value);
    rows.back()["correct"] = right;
  }
  check(total > 0, split.path, ": no rows to evaluate");
  plan.ranks.sync();  // every rank has read the merged answers before rank 0 rewrites them
  if (plan.ranks.writer()) write_jsonl_atomic(generations_path, rows);
  const double p = double(correct) / double(total);
  const json metrics = {{key, p},
                        {key + "_stderr", std::sqrt(p * (1 - p) / double(std::max<int64_t>(1, total - 1)))},
                        {key + "_n", total}};
  if (plan.journal) plan.journal->record(key, unit, metrics);
  return metrics;
}

// The exact distance to p_data on a split whose rows list their valid answers: the means
// under "<prefix>forward_kl", ... and one row per problem in rows_path. [dist] Each rank
// scores its share of the problems into rows_path.rank-R-of-W; rank 0 merges them by index.
json distribution(const Transformer& model, const ModelText& text, const ModelEvalPlan& plan,
                  const AnswerSplit& split, const std::string& rows_path) {
  AnswerDistributionOptions o;
  o.file = split.path;
  o.limit = split.limit;
  o.batch_size = plan.answers.scoring_batch_size;
  o.show_progress = plan.show_progress && plan.ranks.writer();
  o.shard_index = plan.ranks.index();
  o.shard_count = plan.ranks.count();
  // This rank's problems, one unit of the journal.
  const std::string key = UnitKey()
                              .add(split.path)
                              .add(std::to_string(split.limit))
                              .add(std::to_string(o.shard_index) + "/" + std::to_string(o.shard_count))
                              .hex();
  std::vector<json> rows;
  std::vector<ProblemDistribution> mine;
  if (const json* recorded = plan.journal ? plan.journal->find("distribution", key) : nullptr) {
    for (const json& row : *recorded) {
      rows.push_back(row);
      mine.push_back(problem_from_json(row, "work journal"));
    }
  } else {
    mine = score_answer_distribution(model, *text.codec, text.stop, o);
    for (const ProblemDistribution& p : mine) rows.push_back(to_json(p));
    if (plan.journal) plan.journal->record("distribution", key, rows);
  }
  if (plan.ranks.group == nullptr) {
    write_jsonl_atomic(rows_path, rows);
    return summarize_distribution(mine, split.key_prefix);
  }
  write_jsonl_atomic(rank_file_path(rows_path, plan.ranks.index(), plan.ranks.count()), rows);
  merge_rank_files(rows_path, plan.ranks);
  std::vector<ProblemDistribution> problems;
  for (const JsonlRow& row : read_jsonl(rows_path))
    problems.push_back(problem_from_json(row.value, rows_path + ":" + std::to_string(row.line)));
  return summarize_distribution(problems, split.key_prefix);
}

json harness_run_config(const Transformer& model, const ModelEvalPlan& plan) {
  const EvalOptions& o = plan.task_options;
  std::string model_args = "pretrained=" + plan.model_dir;  // the harness's spelling; peft= per adapter
  for (const std::string& adapter : plan.adapters) model_args += ",peft=" + adapter;
  return {{"model", "spinlm"},
          {"model_args", model_args},
          {"batch_size", o.batch_size},
          {"num_fewshot", o.num_fewshot < 0 ? json(nullptr) : json(o.num_fewshot)},
          {"limit", has_limit(o.limit) ? json(o.limit) : json(nullptr)},
          {"data_dir", o.data_dir},
          {"device", model.device().str()},  // resolved: what the numbers came from
          {"dtype", dtype_option_name(model.dtype())},
          {"harness_semantics", "lm-evaluation-harness v0.4.0"}};
}

}  // namespace

ModelEvalResult evaluate_model(const Transformer& model, const ModelEvalPlan& plan) {
  const ModelText text = load_model_text(plan.model_dir);
  check(text.codec != nullptr, plan.model_dir, ": no tokenizer.json; evaluation needs the model's tokenizer");
  ModelEvalResult r;
  r.run_config = harness_run_config(model, plan);
  for (const AnswerSplit& split : plan.splits) {
    if (split.exact_match) {
      r.answers.update(exact_match(model, *text.codec, plan, split, split.key_prefix + "exact_match",
                                   split.files_prefix + "generations.jsonl", false));
      if (split.sample_accuracy)
        r.answers.update(exact_match(model, *text.codec, plan, split, split.key_prefix + "sample_accuracy",
                                     split.files_prefix + "samples.jsonl", true));
    }
    if (split.distribution) r.answers.update(distribution(model, text, plan, split, split.files_prefix + "distribution.jsonl"));
  }
  if (!plan.heldout_sft.files.empty()) {
    HeldoutSftOptions o = plan.heldout_sft;
    o.ranks = plan.ranks;
    o.journal = {plan.journal, "heldout_sft"};
    r.heldout_sft = heldout_sft(model, *text.codec, text.stop, o);
    log_info("held-out SFT: ", r.heldout_sft->tokens, " assistant tokens, NLL/token ", r.heldout_sft->nll_per_token,
             ", perplexity ", r.heldout_sft->perplexity);
  }
  EvalOptions task_options = plan.task_options;
  task_options.eos_ids = text.stop.ids;
  task_options.ranks = plan.ranks;
  task_options.show_progress = plan.show_progress;
  task_options.journal = plan.journal;
  for (const TaskDefinition& task : plan.tasks) r.tasks.push_back(evaluate_task(model, *text.codec, task, task_options));
  if (!plan.heldout_pairs.files.empty()) {
    check(plan.opponent.has_value(), "held-out reward accuracy needs the opponent's scores of the pairs");
    HeldoutPairsOptions o = plan.heldout_pairs;
    o.ranks = plan.ranks;
    o.journal = {plan.journal, "heldout_pairs"};
    const std::vector<TokenPair> pairs = load_heldout_pairs(*text.codec, text.stop, text.vocab_size, o);
    r.heldout_pairs = summarize_pair_rewards(pairs, score_heldout_pairs(model, pairs, o), *plan.opponent, o);
    log_info("held-out pairs: ", r.heldout_pairs->pairs, " pairs, reward accuracy ", r.heldout_pairs->reward_accuracy,
             ", margin ", r.heldout_pairs->reward_margin);
  }
  return r;
}

json results_json(const ModelEvalResult& result, const ModelEvalPlan& plan) {
  json out = results_to_json(result.tasks, result.run_config);
  if (result.heldout_sft) out["heldout"]["sft"] = to_json(*result.heldout_sft);
  if (result.heldout_pairs) {
    out["heldout"]["pairs"] = to_json(*result.heldout_pairs);
    out["heldout"]["pairs"]["beta"] = plan.heldout_pairs.beta;
    out["heldout"]["pairs"]["loss"] = spin_loss_name(plan.heldout_pairs.loss);
  }
  if (!result.answers.empty()) out["answers"] = result.answers;
  return out;
}

json flat_metrics_json(const ModelEvalResult& result) {
  json out = result.answers;
  if (result.heldout_sft)
    out.update({{"heldout_nll", result.heldout_sft->nll_per_token}, {"heldout_perplexity", result.heldout_sft->perplexity}});
  if (!result.tasks.empty()) {
    for (const TaskResult& task : result.tasks)
      for (const auto& [metric, summary] : task.metrics) {
        const std::string key = task.config.name + "/" + metric;
        out[key] = summary.value;
        if (std::isfinite(summary.stderr_value)) out[key + "_stderr"] = summary.stderr_value;
      }
    const json harness = results_to_json(result.tasks, result.run_config);
    json lm_eval = json::object();
    for (const char* key : {"results", "config", "n-shot", "n-samples", "versions"})
      lm_eval[key] = harness.value(key, json());
    out["lm_eval"] = lm_eval;
  }
  if (const auto& r = result.heldout_pairs)
    out.update({{"heldout_reward_accuracy", r->reward_accuracy},
                {"heldout_reward_accuracy_stderr", r->reward_accuracy_stderr},
                {"heldout_reward_margin", r->reward_margin},
                {"heldout_identical_pairs", r->identical_pairs},
                {"heldout_rewards_real", r->rewards_real},
                {"heldout_rewards_generated", r->rewards_generated}});
  return out;
}

}  // namespace spinlm
