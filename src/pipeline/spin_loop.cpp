// The SPIN loop: generate -> train -> evaluate for each iteration, every step recorded in
// RUN/state.json so that --resume skips finished steps and resumes unfinished ones.
#include "pipeline/spin_loop.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <tuple>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/stop_signal.h"
#include "data/arith_task.h"
#include "data/verifier.h"
#include "eval/answer_distribution.h"
#include "eval/builtin_tasks.h"
#include "eval/evaluator.h"
#include "eval/heldout.h"
#include "eval/paired.h"
#include "eval/results.h"
#include "eval/task_yaml.h"
#include "dist/dist_generate.h"
#include "generate/generate_file.h"
#include "io/json_text.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/device_choice.h"
#include "model/hf_model.h"
#include "model/lora.h"
#include "model/stop_tokens.h"
#include "pipeline/run_state.h"
#include "train/sft_trainer.h"
#include "train/spin_trainer.h"
#include "train/train_device.h"

namespace spinlm {
namespace fs = std::filesystem;

namespace {

int64_t limit_of(int64_t max_samples) { return max_samples > 0 ? max_samples : -1; }

std::string iter_name(int64_t t) { return "iter_" + std::to_string(t); }

nlohmann::json read_json(const std::string& path) { return read_json_file(path); }

void write_json(const std::string& path, const nlohmann::json& value) {
  write_file_atomic(path, value.dump(2) + "\n");
}

// Final answers of the rows by their index (non-blank line order; data/verifier.h).
std::vector<std::optional<int64_t>> test_answers(const std::string& path) {
  std::vector<std::optional<int64_t>> answers;
  for (const JsonlRow& row : read_jsonl(path)) answers.push_back(row_final_answer(row.value));
  return answers;
}

// [dist] The ranks of a run as the loop sees them: every rank computes its share (or all of
// a measurement that is not split), rank 0 alone writes the run folder, and sync() is a
// barrier. Without a process group: one rank that writes, and sync() does nothing.
struct Ranks {
  DistContext* dist = nullptr;
  bool writer() const { return dist == nullptr || dist->rank() == 0; }
  int64_t index() const { return dist ? dist->rank() : 0; }
  int64_t count() const { return dist ? dist->world_size() : 1; }
  void sync() const {
    if (dist) dist->barrier();
  }
  // Whether the flag holds on any rank (the same answer on every rank).
  bool any(bool flag) const {
    std::vector<double> value = {flag ? 1.0 : 0.0};
    if (dist) dist->all_reduce_sum(value);
    return value[0] > 0;
  }
};

// Generation into options.output_path, split across the ranks (dist/dist_generate.h: the
// merged file is byte-identical to one process's and exists on return).
void generate(const Transformer& model, const TextCodec& codec, const GenerateOptions& options, const Ranks& ranks) {
  if (ranks.dist)
    generate_file_distributed(model, codec, options, *ranks.dist);
  else
    generate_file(model, codec, options);
}

// A model in memory being evaluated, and how.
struct Evaluation {
  const Transformer& model;
  const ModelText& text;
  const std::string& model_dir;
  const Recipe& recipe;
  const Ranks& ranks;
  bool progress;
};

// A split of the recipe's data: data.test ("", "test_") or data.heldout ("heldout_", "heldout_").
struct Split {
  const std::string& path;
  int64_t max_samples;
  std::string prefix, file;  // key prefix, file prefix
};

// Exact match of "#### N" on a split ("exact_match", "heldout_exact_match"), greedy or with
// one sample at temperature 1 ("sample_accuracy", "heldout_sample_accuracy"); the answers stay
// in generations_path, one row per problem with its "correct" flag (what McNemar's test
// against the control reads).
nlohmann::json exact_match(const Evaluation& e, const Split& split, const std::string& key,
                           const std::string& generations_path, bool sampled) {
  GenerateOptions g;
  g.model_dir = e.model_dir;
  g.device = e.model.device().str();
  g.dtype = dtype_option_name(e.model.dtype());
  g.input_path = split.path;
  g.output_path = generations_path;
  g.max_new_tokens = e.recipe.evaluation.max_new_tokens;
  g.sampling.greedy = !sampled;
  g.sampling.temperature = 1.0;
  g.seed = e.recipe.seed;
  g.batch_size = e.recipe.generation.batch_size;
  g.prompt_format = e.recipe.generation.prompt_format;
  g.limit = limit_of(split.max_samples);
  g.show_progress = e.progress;
  generate(e.model, *e.text.codec, g, e.ranks);
  const std::vector<std::optional<int64_t>> answers = test_answers(split.path);
  int64_t correct = 0, total = 0;
  std::vector<json> rows;
  for (const JsonlRow& row : read_jsonl(generations_path)) {
    const int64_t index = row.value.at("index").get<int64_t>();
    check(index >= 0 && index < int64_t(answers.size()), generations_path, ":", row.line, ": index out of range");
    const std::optional<int64_t>& answer = answers[size_t(index)];
    check(answer.has_value(), split.path, ": row ", index + 1,
          " has no final answer (an \"answer\" field or \"#### N\" in the assistant message)");
    const json& generated = row.value.at("generated");
    const std::string text = generated.back().at("content").get<std::string>();
    const bool right = arith_answer_correct(text, *answer);
    correct += right;
    ++total;
    rows.push_back(row.value);
    rows.back()["correct"] = right;
  }
  check(total > 0, split.path, ": no rows to evaluate");
  e.ranks.sync();  // every rank has read the merged answers before rank 0 rewrites them
  if (e.ranks.writer()) write_jsonl_atomic(generations_path, rows);
  const double p = double(correct) / double(total);
  return {{key, p}, {key + "_stderr", std::sqrt(p * (1 - p) / double(std::max<int64_t>(1, total - 1)))},
          {key + "_n", total}};
}

// The exact distance to p_data on a split whose rows list their valid answers
// (eval/answer_distribution.h): the means under "<prefix>forward_kl", ... and one row per
// problem in rows_path (what the paired comparison with the control reads). [dist] Each rank
// scores its share of the problems into rows_path.rank-R-of-W; rank 0 merges them by index.
nlohmann::json distribution(const Evaluation& e, const Split& split, const std::string& rows_path) {
  AnswerDistributionOptions o;
  o.file = split.path;
  o.limit = limit_of(split.max_samples);
  o.batch_size = e.recipe.evaluation.batch_size;
  o.show_progress = e.progress && e.ranks.writer();
  o.shard_index = e.ranks.index();
  o.shard_count = e.ranks.count();
  const std::vector<ProblemDistribution> mine = score_answer_distribution(e.model, *e.text.codec, e.text.stop, o);
  std::vector<json> rows;
  for (const ProblemDistribution& p : mine) rows.push_back(to_json(p));
  if (!e.ranks.dist) {
    write_jsonl_atomic(rows_path, rows);
    return summarize_distribution(mine, split.prefix);
  }
  write_jsonl_atomic(rank_file_path(rows_path, int(e.ranks.index()), int(e.ranks.count())), rows);
  merge_rank_files(rows_path, *e.ranks.dist);
  std::vector<ProblemDistribution> problems;
  for (const JsonlRow& row : read_jsonl(rows_path))
    problems.push_back(problem_from_json(row.value, rows_path + ":" + std::to_string(row.line)));
  return summarize_distribution(problems, split.prefix);
}

// The recipe's lm-evaluation-harness tasks on a model in memory: "<task>/<metric>" (and
// "<task>/<metric>_stderr" where defined) for the tables, and the harness-shaped results
// (subsets such as mmlu_<subject> included) under "lm_eval".
nlohmann::json task_metrics(const Transformer& model, const TextCodec& codec, const std::string& model_dir,
                            const EvaluationSettings& ev, bool progress) {
  std::vector<TaskDefinition> tasks;
  for (const std::string& name : ev.tasks) tasks.push_back(builtin_task(name));
  for (const std::string& file : ev.task_files) tasks.push_back(load_task_yaml(file));
  EvalOptions options;
  options.data_dir = ev.data_dir;
  options.num_fewshot = int(ev.num_fewshot);
  options.limit = limit_of(ev.limit);
  options.batch_size = ev.batch_size;
  options.eos_ids = load_stop_tokens(model_dir, model.config(), &codec).ids;
  options.show_progress = progress;
  std::vector<TaskResult> results;
  nlohmann::json eval = nlohmann::json::object();
  for (const TaskDefinition& task : tasks) {
    results.push_back(evaluate_task(model, codec, task, options));
    for (const auto& [metric, summary] : results.back().metrics) {
      const std::string key = task.config.name + "/" + metric;
      eval[key] = summary.value;
      if (std::isfinite(summary.stderr_value)) eval[key + "_stderr"] = summary.stderr_value;
    }
  }
  const nlohmann::json harness = results_to_json(
      results, {{"model", "spinlm"}, {"model_args", "pretrained=" + model_dir}, {"batch_size", ev.batch_size},
                {"num_fewshot", ev.num_fewshot < 0 ? nlohmann::json() : nlohmann::json(ev.num_fewshot)},
                {"limit", ev.limit > 0 ? nlohmann::json(ev.limit) : nlohmann::json()}, {"data_dir", ev.data_dir}});
  eval["lm_eval"] = {{"results", harness.at("results")}, {"n-shot", harness.value("n-shot", nlohmann::json())},
                     {"n-samples", harness.value("n-samples", nlohmann::json())},
                     {"versions", harness.value("versions", nlohmann::json())}};
  return eval;
}

nlohmann::json heldout_nll(const Transformer& model, const ModelText& text, const Recipe& recipe) {
  HeldoutSftOptions o;
  o.files = {recipe.data.heldout};
  o.max_length = recipe.iterations.front().max_length;
  o.batch_size = recipe.iterations.front().per_device_train_batch_size;
  o.limit = limit_of(recipe.data.max_heldout_samples);
  const HeldoutSftResult r = heldout_sft(model, *text.codec, text.stop, o);
  return {{"heldout_nll", r.nll_per_token}, {"heldout_perplexity", r.perplexity}};
}

// Whether the recipe measures each model at all (else the evaluation is empty).
bool evaluates_models(const EvaluationSettings& ev) {
  return ev.exact_match || ev.heldout_exact_match || ev.heldout_nll || ev.distribution || ev.has_tasks();
}

// What every evaluated model (SFT, iterations, control) reports: exact match on data.test,
// and on data.heldout, held-out NLL, the exact distribution metrics and one-sample accuracy
// where asked for, and the recipe's lm-eval tasks. generations_prefix + "test_generations.jsonl",
// "heldout_generations.jsonl", "test_samples.jsonl", "test_distribution.jsonl", ... keep the
// answers and the per-problem numbers.
nlohmann::json evaluate_model(const Transformer& model, const std::string& model_dir, const Recipe& recipe,
                              const std::string& generations_prefix, const Ranks& ranks, bool progress) {
  nlohmann::json eval = nlohmann::json::object();
  const EvaluationSettings& ev = recipe.evaluation;
  const ModelText text = load_model_text(model_dir);
  check(text.codec != nullptr, model_dir, ": no tokenizer.json; evaluation needs the model's tokenizer");
  const Evaluation e{model, text, model_dir, recipe, ranks, progress};
  for (const auto& [exact, split] :
       {std::pair<bool, Split>{ev.exact_match, Split{recipe.data.test, recipe.data.max_test_samples, "", "test_"}},
        std::pair<bool, Split>{ev.heldout_exact_match, Split{recipe.data.heldout, recipe.data.max_heldout_samples,
                                                             "heldout_", "heldout_"}}}) {
    if (split.path.empty()) continue;
    const std::string files = generations_prefix + split.file;
    if (exact) {
      eval.update(exact_match(e, split, split.prefix + "exact_match", files + "generations.jsonl", false));
      if (ev.sample_accuracy)
        eval.update(exact_match(e, split, split.prefix + "sample_accuracy", files + "samples.jsonl", true));
    }
    if (ev.distribution) eval.update(distribution(e, split, files + "distribution.jsonl"));
  }
  // Not split across ranks: every rank computes these in full (the same numbers).
  if (ev.heldout_nll) eval.update(heldout_nll(model, text, recipe));
  if (ev.has_tasks()) eval.update(task_metrics(model, *text.codec, model_dir, ev, progress && ranks.writer()));
  return eval;
}

// The held-out pairs of an iteration (generated by p_t), as the trainer scores its own.
HeldoutPairsOptions heldout_pair_options(const std::string& pairs_path, const TrainSettings& settings) {
  HeldoutPairsOptions o;
  o.files = {pairs_path};
  o.truncation = {settings.max_length, settings.max_prompt_length};
  o.beta = settings.beta;
  o.loss = parse_spin_loss(settings.loss);
  o.batch_size = settings.per_device_train_batch_size;
  return o;
}

std::vector<TokenPair> heldout_pairs(const std::string& model_dir, const HeldoutPairsOptions& o) {
  const ModelText text = load_model_text(model_dir);
  return load_heldout_pairs(*text.codec, text.stop, text.vocab_size, o);
}

// p_t's log-probs of the held-out pairs, scored while p_t is in memory for generation and
// kept in scores_path ({"real": [..], "generated": [..]}) for the evaluation of p_{t+1}.
ReferenceLogprobs score_opponent(const Transformer& p_t, const std::string& model_dir, const HeldoutPairsOptions& o) {
  return score_heldout_pairs(p_t, heldout_pairs(model_dir, o), o);
}

// Held-out reward accuracy of p_{t+1} (in memory) against its opponent p_t on pairs p_t
// generated, from p_t's saved scores.
nlohmann::json heldout_rewards(const Transformer& p_next, const std::string& model_dir,
                               const ReferenceLogprobs& opponent, const HeldoutPairsOptions& o) {
  const std::vector<TokenPair> pairs = heldout_pairs(model_dir, o);
  const HeldoutPairsResult r = summarize_pair_rewards(pairs, score_heldout_pairs(p_next, pairs, o), opponent, o);
  return {{"heldout_reward_accuracy", r.reward_accuracy},
          {"heldout_reward_accuracy_stderr", r.reward_accuracy_stderr},
          {"heldout_reward_margin", r.reward_margin},
          {"heldout_identical_pairs", r.identical_pairs},
          {"heldout_rewards_real", r.rewards_real},
          {"heldout_rewards_generated", r.rewards_generated}};
}

// Share of generated answers that are exactly one of the row's valid solutions, and that
// equal the real answer (rows with a "solutions" field only; null without any).
nlohmann::json sample_quality(const std::string& train_path, const std::string& pairs_path) {
  std::vector<std::vector<std::string>> solutions;
  for (const JsonlRow& row : read_jsonl(train_path))
    solutions.push_back(row.value.contains("solutions") && row.value["solutions"].is_array()
                            ? row.value["solutions"].get<std::vector<std::string>>()
                            : std::vector<std::string>{});
  int64_t valid = 0, same = 0, total = 0;
  for (const JsonlRow& row : read_jsonl(pairs_path)) {
    const int64_t index = row.value.at("index").get<int64_t>();
    if (index < 0 || index >= int64_t(solutions.size()) || solutions[size_t(index)].empty()) continue;
    const std::string generated = row.value.at("generated").back().value("content", "");
    const std::string real = row.value.at("real").back().value("content", "");
    const auto& s = solutions[size_t(index)];
    valid += std::find(s.begin(), s.end(), generated) != s.end();
    same += generated == real;
    ++total;
  }
  if (total == 0) return nullptr;
  return {{"samples_valid_solution", double(valid) / double(total)},
          {"samples_equal_real", double(same) / double(total)}, {"samples", total}};
}

// An evaluation for run.log: the numbers, without the harness-shaped task results.
std::string loggable(nlohmann::json eval) {
  eval.erase("lm_eval");
  return eval.dump();
}

GenerateOptions generation_options(const Recipe& recipe, const std::string& model_dir, const Transformer& model,
                                   const std::string& input, const std::string& output, uint64_t seed, int64_t limit,
                                   bool progress) {
  GenerateOptions g;
  g.model_dir = model_dir;
  g.device = model.device().str();
  g.dtype = dtype_option_name(model.dtype());
  g.input_path = input;
  g.output_path = output;
  g.max_new_tokens = recipe.generation.max_new_tokens;
  g.sampling.temperature = recipe.generation.temperature;
  g.sampling.top_p = recipe.generation.top_p;
  g.sampling.top_k = recipe.generation.top_k;
  g.sampling.min_p = recipe.generation.min_p;
  g.seed = seed;
  g.batch_size = recipe.generation.batch_size;
  g.prompt_format = recipe.generation.prompt_format;
  g.limit = limit;
  g.show_progress = progress;
  return g;
}

// The optimisation settings shared by the SPIN trainer and the control's SFT.
TrainLoopOptions loop_options(const TrainSettings& s, const std::string& model_dir, const std::string& out,
                              uint64_t seed, const TrainDevice& placement) {
  TrainLoopOptions loop;
  loop.model_dir = model_dir;
  loop.device = placement.device.str();
  loop.dtype = dtype_option_name(placement.dtype);
  loop.output_dir = out;
  loop.learning_rate = s.learning_rate;
  loop.optimizer.kind = s.optim;
  loop.optimizer.weight_decay = s.weight_decay;
  loop.lr_scheduler = s.lr_scheduler_type;
  loop.warmup_ratio = s.warmup_ratio;
  loop.epochs = s.num_train_epochs;
  loop.batch_size = s.batch_size();
  loop.micro_batch_size = s.per_device_train_batch_size;
  loop.max_grad_norm = s.max_grad_norm;
  loop.logging_steps = s.logging_steps;
  loop.save_steps = s.save_steps;
  loop.optimizer.state_dtype = s.optimizer_state_dtype;
  loop.gradient_checkpointing = s.gradient_checkpointing;
  loop.seed = seed;
  loop.resume = true;  // a step that is not done yet continues from its own last checkpoint
  return loop;
}

// The training metrics next to the model (part of the step's outputs).
void copy_metrics(const std::string& model_dir, const std::string& metrics_path) {
  const std::string metrics = model_dir + "/metrics.jsonl";
  if (file_exists(metrics)) write_file_atomic(metrics_path, read_file(metrics));
}

// After a training step is recorded as done: the weights and optimizer state of its
// checkpoints (epoch-*/, checkpoint-*/: about 3x the model size each) are removed, since the
// run keeps only final models. The newest checkpoint's trainer_state.json stays, because
// OUT/trainer_state.json ({"latest": ..., "finished": true}) points at it: `spinlm train
// --resume` on the folder then says the training already finished instead of failing on a
// missing checkpoint. Only after the step is recorded, because an unfinished step resumes
// from the checkpoints; idempotent, so a kill in between is repaired by the resumed run.
void remove_checkpoints(const std::string& model_dir) {
  if (!fs::is_directory(model_dir)) return;
  std::string latest;
  const std::string pointer = model_dir + "/trainer_state.json";
  if (file_exists(pointer)) {
    try {
      latest = read_json_file(pointer).value("latest", "");
    } catch (const std::exception&) {
      latest.clear();
    }
  }
  for (const auto& entry : fs::directory_iterator(model_dir)) {
    const std::string name = entry.path().filename().string();
    // ".tmp-<folder>": a checkpoint a kill interrupted while it was being written.
    const bool partial = name.rfind(".tmp-", 0) == 0;
    if (!entry.is_directory() || (!partial && name.rfind("epoch-", 0) != 0 && name.rfind("checkpoint-", 0) != 0))
      continue;
    if (name != latest) {
      fs::remove_all(entry.path());
      continue;
    }
    std::vector<fs::path> heavy;
    for (const auto& file : fs::directory_iterator(entry.path()))
      if (file.path().filename() != "trainer_state.json") heavy.push_back(file.path());
    for (const fs::path& path : heavy) fs::remove_all(path);
  }
}

// A process killed inside write_file_atomic leaves "<file>.tmp.<pid>" behind. Nothing else
// works in the run folder while `spinlm run --resume` starts, so such files are debris.
void remove_stale_temporaries(const std::string& run_dir) {
  std::vector<fs::path> stale;
  for (const auto& entry : fs::recursive_directory_iterator(run_dir))
    if (entry.is_regular_file() && entry.path().filename().string().find(".tmp.") != std::string::npos)
      stale.push_back(entry.path());
  for (const fs::path& path : stale) fs::remove(path);
}

void check_inputs(const Recipe& recipe) {
  check(file_exists(recipe.model_name_or_path + "/config.json"), recipe.source, ": model_name_or_path ",
        recipe.model_name_or_path, " is not a model folder (no config.json)");
  for (const std::string* path : {&recipe.data.train, &recipe.data.heldout, &recipe.data.test})
    check(path->empty() || data_path_exists(*path), recipe.source, ": data file ", *path, " does not exist");
  // LoRA target modules name modules of this model: checked before any work.
  const ModelConfig config = load_config(recipe.model_name_or_path + "/config.json");
  for (size_t t = 0; t < recipe.iterations.size(); ++t) {
    if (!recipe.iterations[t].lora.enabled()) continue;
    try {
      resolve_lora_targets(config, recipe.iterations[t].lora.targets);
    } catch (const Error& e) {
      fail(recipe.source, ": iteration ", t, ": ", e.what());
    }
  }
}

// How an iteration's training moved on its own pairs: logps/real and rewards/margins of the
// first and the last logged window of metrics.jsonl (null when nothing was logged).
nlohmann::json training_drift(const std::string& metrics_path) {
  if (!file_exists(metrics_path)) return nullptr;
  const std::vector<JsonlRow> rows = read_jsonl(metrics_path);
  std::vector<const json*> logged;
  for (const JsonlRow& row : rows)
    if (row.value.contains("logps/real") && row.value.contains("rewards/margins")) logged.push_back(&row.value);
  if (logged.empty()) return nullptr;
  const json& first = *logged.front();
  const json& last = *logged.back();
  return {{"train_logps_real_first", first["logps/real"]}, {"train_logps_real_last", last["logps/real"]},
          {"train_margins_first", first["rewards/margins"]}, {"train_margins_last", last["rewards/margins"]}};
}

// Per-problem values of a measurement file: a key of the distribution rows, or "correct" of
// the generations rows; by problem index.
std::map<int64_t, double> per_problem(const std::string& path, const std::string& key) {
  std::map<int64_t, double> values;
  for (const JsonlRow& row : read_jsonl(path)) {
    const json& v = row.value;
    check(v.contains("index") && v.contains(key), path, ":", row.line, ": no \"index\" or \"", key, "\"");
    values[v["index"].get<int64_t>()] = v[key].is_boolean() ? double(v[key].get<bool>()) : v[key].get<double>();
  }
  return values;
}

}  // namespace

nlohmann::json compare_with_control(const std::string& spin_dir, const std::string& control_dir) {
  nlohmann::json out = nlohmann::json::object();
  for (const std::string split : {"test_", "heldout_"}) {
    const std::string prefix = split == "test_" ? "" : "heldout_";
    const auto paired = [&](const std::string& file, const std::string& key, const std::string& name) {
      const std::string a = spin_dir + "/" + split + file, b = control_dir + "/" + split + file;
      if (!file_exists(a) || !file_exists(b)) return;
      const std::map<int64_t, double> va = per_problem(a, key), vb = per_problem(b, key);
      std::vector<double> xa, xb;
      for (const auto& [index, value] : va) {
        auto found = vb.find(index);
        check(found != vb.end(), b, ": problem ", index, " is missing (measured in ", a, ")");
        xa.push_back(value);
        xb.push_back(found->second);
      }
      out[prefix + name] = to_json(paired_difference(xa, xb));
      if (key == "correct") {
        std::vector<bool> ca(xa.begin(), xa.end()), cb(xb.begin(), xb.end());
        out[prefix + name]["mcnemar"] = to_json(mcnemar(ca, cb));
      }
    };
    for (const char* measure : {"forward_kl", "valid_mass", "tv", "shape_tv", "shape_entropy"})
      paired("distribution.jsonl", measure, measure);
    paired("generations.jsonl", "correct", "exact_match");
    paired("samples.jsonl", "correct", "sample_accuracy");
  }
  return out;
}

namespace {

class SpinRun {
 public:
  SpinRun(const Recipe& recipe, const RunOptions& options, const TrainDevice& placement)
      : recipe_(recipe),
        options_(options),
        placement_(placement),
        ranks_{options.dist},
        state_(open_state(recipe, options, ranks_)) {}

  RunSummary run() {
    state_.log(options_.resume ? "resuming run in " + options_.run_dir : "starting run in " + options_.run_dir);
    state_.log("models on " + placement_.device.str() + " in " + dtype_option_name(placement_.dtype));
    step("sft_eval", [&] {
      write_json(dir("sft_eval.json"), evaluate(recipe_.model_name_or_path, dir("sft_")));
    });
    std::string model = recipe_.model_name_or_path, control_model = model;
    const int64_t T = int64_t(recipe_.iterations.size());
    int64_t t = 0;
    for (; t < T; ++t) {
      iteration(t, model);
      model = dir(iter_name(t) + "/model");
      if (recipe_.control.enabled) {
        control(t, control_model);
        control_model = dir("control/" + iter_name(t) + "/model");
      }
      if (const std::string reason = stop_reason(t); !reason.empty()) {
        if (state_.get("stopped").is_null()) {
          state_.set("stopped", reason);
          state_.log("stopping early: " + reason);
        }
        ++t;
        break;
      }
    }
    if (state_.get("finished") != true) {
      state_.set("finished", true);
      state_.log("run finished after " + std::to_string(t) + " iterations; final model " + model);
    }
    RunSummary summary = read_run_summary(options_.run_dir);
    summary.iterations_done = t;
    summary.final_model = model;
    summary.stopped = state_.get("stopped").is_string() ? state_.get("stopped").get<std::string>() : "";
    return summary;
  }

 private:
  // [dist] Rank 0 opens (or resumes) the folder, clearing a killed run's debris, before the
  // other ranks follow its state.json.
  static RunState open_state(const Recipe& recipe, const RunOptions& options, const Ranks& ranks) {
    if (!ranks.writer()) {
      ranks.sync();
      return RunState::follow(options.run_dir);
    }
    RunState state = RunState::open(options.run_dir, recipe_to_json(recipe), options.resume);
    if (options.resume) {
      remove_stale_temporaries(options.run_dir);
      repair(state, recipe, options.run_dir);
    }
    ranks.sync();
    return state;
  }

  // What is wrong with a recorded step's outputs ("" when they are whole): each file is there
  // and reads (JSON parses, every JSONL line parses, a model's safetensors headers fit their
  // files).
  // The folder of a step's outputs: "iter_T/..." -> RUN/iter_T, "control_T/..." ->
  // RUN/control/iter_T, "sft_eval" -> RUN.
  static std::string step_folder(const std::string& step, const std::string& run_dir) {
    const std::string head = step.substr(0, step.find('/'));
    if (head == "sft_eval") return run_dir;
    return head.rfind("control_", 0) == 0 ? run_dir + "/control/iter_" + head.substr(8) : run_dir + "/" + head;
  }

  static std::string broken_output(const std::string& step, const Recipe& recipe, const std::string& run_dir) {
    const size_t slash = step.find('/');
    const std::string head = step.substr(0, slash), action = slash == std::string::npos ? "" : step.substr(slash + 1);
    const std::string folder = step_folder(step, run_dir);
    std::vector<std::string> json_files, jsonl_files, models;
    if (head == "sft_eval") json_files = {run_dir + "/sft_eval.json"};
    if (action == "generate") {
      jsonl_files = {folder + "/pairs.jsonl"};
      if (recipe.evaluation.heldout_reward_accuracy) {
        jsonl_files.push_back(folder + "/heldout_pairs.jsonl");
        json_files.push_back(folder + "/heldout_opponent_logprobs.json");
      }
    }
    if (action == "train") {
      models = {folder + "/model"};
      jsonl_files = {folder + "/metrics.jsonl"};
    }
    if (action == "eval") json_files = {folder + "/eval.json"};
    try {
      for (const std::string& path : json_files) {
        if (!file_exists(path)) return path + " is missing";
        read_json_file(path);
      }
      for (const std::string& path : jsonl_files) {
        if (!file_exists(path)) return path + " is missing";
        const std::string text = read_file(path);
        if (!text.empty() && text.back() != '\n') return path + " ends in the middle of a line";
        read_jsonl(path);
      }
      for (const std::string& dir : models) {
        if (!file_exists(dir + "/config.json")) return dir + "/config.json is missing";
        SafetensorsFolder weights(dir);
      }
    } catch (const Error& error) {
      return error.what();
    }
    return "";
  }

  // Corrupted state on resume: the first recorded step whose outputs are not whole is done
  // again, with every step after it (a broken model folder is removed, so its training starts
  // over); the earlier steps stand.
  static void repair(RunState& state, const Recipe& recipe, const std::string& run_dir) {
    for (const std::string& step : state.finished_steps()) {
      const std::string problem = broken_output(step, recipe, run_dir);
      if (problem.empty()) continue;
      log_warning("state.json records step ", step, " as done, but ", problem, "; doing it again, with every later step");
      state.log("repair: step " + step + " is redone (" + problem + ")");
      if (step.size() > 6 && step.compare(step.size() - 6, 6, "/train") == 0)
        fs::remove_all(step_folder(step, run_dir) + "/model");
      state.forget_from(step);
      return;
    }
  }

  std::string dir(const std::string& relative) const { return options_.run_dir + "/" + relative; }

  // The model of folder dir, read from disk only when the model held from the last step is
  // another: the SFT model serves its evaluation and iteration 0's generation and training,
  // and the trained p_{t+1} (trained in place) its evaluation and the next generation.
  Transformer& model_at(const std::string& dir) {
    if (!held_ || held_dir_ != dir) {
      held_.reset();  // one model in memory at a time
      state_.log("read model " + dir);
      held_ = std::make_unique<Transformer>(load_model(dir, placement_.device, placement_.dtype));
      held_dir_ = dir;
    }
    return *held_;
  }
  void release_model() {
    held_.reset();
    held_dir_.clear();
  }

  nlohmann::json evaluate(const std::string& model_dir, const std::string& files_prefix) {
    if (!evaluates_models(recipe_.evaluation)) return nlohmann::json::object();
    return evaluate_model(model_at(model_dir), model_dir, recipe_, files_prefix, ranks_, options_.show_progress);
  }

  // Writes a run file: rank 0 alone (each step's closing barrier publishes it to the others).
  void write_json(const std::string& path, const nlohmann::json& value) const {
    if (ranks_.writer()) spinlm::write_json(path, value);
  }

  template <class Work>
  void step(const std::string& name, Work work) {
    if (state_.done(name)) return;
    state_.log("step " + name);
    work();
    ranks_.sync();  // [dist] every rank's share and rank 0's files are complete
    state_.mark_done(name);
    // Preemption (core/stop_signal.h): a signal during a step that has no safe point of its
    // own (evaluation, scoring) stops the run once the step is recorded.
    if (ranks_.any(stop_requested()))
      throw Preempted("run stopped by " + stop_cause() +
                      " after step " + name + ": rerun the same command with --resume to continue");
  }

  void iteration(int64_t t, const std::string& model) {
    const TrainSettings& s = recipe_.iterations[size_t(t)];
    const std::string it = state_.iteration_dir(t);
    const std::string name = iter_name(t);
    step(name + "/generate", [&] {
      const uint64_t seed = recipe_.seed + uint64_t(t);
      const Transformer& p_t = model_at(model);
      const TextCodec codec = TextCodec::load(model);
      const GenerateOptions g = generation_options(recipe_, model, p_t, recipe_.data.train, it + "/pairs.jsonl", seed,
                                                   limit_of(recipe_.data.max_train_samples), options_.show_progress);
      if (recipe_.generation.negatives.reject_verified) {
        const nlohmann::json counts = generate_filtered_negatives(p_t, codec, g, it);
        write_json(it + "/negatives.json", counts);
        state_.log(name + " verifier-filtered negatives: " + counts.dump());
      } else {
        generate(p_t, codec, g, ranks_);
      }
      if (recipe_.evaluation.heldout_reward_accuracy) {
        generate(p_t, codec, generation_options(recipe_, model, p_t, recipe_.data.heldout, it + "/heldout_pairs.jsonl",
                                                seed + 100000, limit_of(recipe_.data.max_heldout_samples),
                                                options_.show_progress),
                 ranks_);
        const ReferenceLogprobs opponent =
            score_opponent(p_t, model, heldout_pair_options(it + "/heldout_pairs.jsonl", s));
        write_json(it + "/heldout_opponent_logprobs.json", {{"real", opponent.real}, {"generated", opponent.generated}});
      }
      if (ranks_.writer()) {
        const nlohmann::json quality = sample_quality(recipe_.data.train, it + "/pairs.jsonl");
        if (!quality.is_null()) write_json(it + "/samples.json", quality);
      }
    });
    // With LoRA the trainer writes the adapter to iter_T/adapter/; iter_T/model/ is p_t with
    // it merged (p_{t+1}), so every later step reads an HF folder as without LoRA.
    const bool lora = s.lora.enabled();
    const std::string trained = it + (lora ? "/adapter" : "/model");
    step(name + "/train", [&] {
      SpinTrainOptions o;
      o.loop = loop_options(s, model, trained, recipe_.seed + uint64_t(t), placement_);
      o.loop.lora = s.lora;
      o.loop.parallel = ranks_.dist;
      if (s.mix_previous && t > 0) o.data_files.push_back(dir(iter_name(t - 1) + "/pairs.jsonl"));
      o.data_files.push_back(it + "/pairs.jsonl");
      o.loss = s.loss;
      o.beta = s.beta;
      o.truncation = {s.max_length, s.max_prompt_length};
      o.sft_weight = s.sft_weight;
      o.model = &model_at(model);
      try {
        train_spin(o);
      } catch (...) {
        release_model();  // half trained
        throw;
      }
      held_->set_requires_grad(false);
      held_->set_gradient_checkpointing(false);
      if (lora) {
        merge_lora(*held_, *held_->lora());
        held_->set_lora(nullptr);
        if (ranks_.writer()) save_model(*held_, it + "/model", model);
      }
      held_dir_ = it + "/model";  // trained in place: p_{t+1}, as saved
      if (ranks_.writer()) {
        copy_metrics(trained, it + "/metrics.jsonl");
        warn_on_displacement(name, training_drift(it + "/metrics.jsonl"));
      }
    });
    if (!recipe_.checkpoints.keep && ranks_.writer()) remove_checkpoints(trained);
    step(name + "/eval", [&] {
      nlohmann::json eval = evaluate(it + "/model", it + "/");
      if (recipe_.evaluation.heldout_reward_accuracy) {
        const nlohmann::json saved = read_json(it + "/heldout_opponent_logprobs.json");
        ReferenceLogprobs opponent;
        opponent.real = saved.at("real").get<std::vector<double>>();
        opponent.generated = saved.at("generated").get<std::vector<double>>();
        eval.update(heldout_rewards(model_at(it + "/model"), it + "/model", opponent,
                                    heldout_pair_options(it + "/heldout_pairs.jsonl", s)));
      }
      const nlohmann::json drift = training_drift(it + "/metrics.jsonl");
      if (!drift.is_null()) eval.update(drift);
      write_json(it + "/eval.json", eval);
      state_.log(name + " eval: " + loggable(eval));
    });
  }

  // Continued SFT with the compute of SPIN iteration t: as many examples as that iteration
  // has pairs (the training set twice when it mixes), same epochs, batch, optimizer, schedule.
  void control(int64_t t, const std::string& model) {
    const TrainSettings& s = recipe_.iterations[size_t(t)];
    const std::string it = dir("control/" + iter_name(t));
    make_directories(it);
    const std::string name = "control_" + std::to_string(t);
    step(name + "/train", [&] {
      release_model();  // the control trains alone in memory
      // The SFT rows the SPIN pairs came from: the first max_train_samples rows of data.train.
      const std::string data = it + "/train.jsonl";
      std::vector<json> rows;
      JsonlReader reader(recipe_.data.train);
      for (json row; !(recipe_.data.max_train_samples > 0 && int64_t(rows.size()) >= recipe_.data.max_train_samples) &&
                     reader.next(row);)
        rows.push_back(std::move(row));
      if (ranks_.writer()) write_jsonl_atomic(data, rows);
      ranks_.sync();
      SftTrainOptions o;
      o.loop = loop_options(s, model, it + "/model", recipe_.seed + uint64_t(t), placement_);
      o.loop.parallel = ranks_.dist;
      o.data_files = {data};
      if (s.mix_previous && t > 0) o.data_files.push_back(data);
      o.max_length = s.max_length;
      train_sft(o);
      if (ranks_.writer()) copy_metrics(it + "/model", it + "/metrics.jsonl");
    });
    if (!recipe_.checkpoints.keep && ranks_.writer()) remove_checkpoints(it + "/model");
    step(name + "/eval", [&] {
      const nlohmann::json eval = evaluate(it + "/model", it + "/");
      write_json(it + "/eval.json", eval);
      state_.log(name + " eval: " + loggable(eval));
      if (!ranks_.writer()) return;
      const nlohmann::json paired = compare_with_control(dir(iter_name(t)), it);
      if (!paired.empty()) {
        write_json(dir(iter_name(t) + "/vs_control.json"), paired);
        state_.log(iter_name(t) + " - " + name + " (paired): " + paired.dump());
      }
    });
  }

  // Verifier-filtered negatives (recipe generation.negatives): every prompt is answered
  // (draws_0.jsonl); an answer the verifier accepts is drawn again with the next seed
  // (draws_r.jsonl, only those prompts), up to max_resamples times; a prompt whose every draw
  // was accepted gives no pair. The pairs keep the input's index and order. Each draw file
  // resumes by itself and every draw depends only on (seed, model, prompt), so a rerun
  // after a kill writes the same pairs.jsonl.
  nlohmann::json generate_filtered_negatives(const Transformer& p_t, const TextCodec& codec,
                                             const GenerateOptions& options, const std::string& it) {
    const NegativeSettings& n = recipe_.generation.negatives;
    const Verifier verifier = parse_verifier(n.verifier);
    std::vector<json> inputs;  // the training rows by index
    for (const JsonlRow& row : read_jsonl(options.input_path)) inputs.push_back(row.value);
    std::map<int64_t, json> pairs;  // index -> pair row
    std::vector<int64_t> accepted;  // indices whose latest draw the verifier accepts
    int64_t draws = 0, accepted_first = 0, prompts = 0;
    for (int64_t round = 0; round <= n.max_resamples; ++round) {
      GenerateOptions g = options;
      g.output_path = it + "/draws_" + std::to_string(round) + ".jsonl";
      g.seed = options.seed + uint64_t(round) * 7919;
      std::vector<int64_t> source;  // draw row -> input index
      if (round > 0) {
        if (accepted.empty()) break;
        std::vector<json> rows;
        for (int64_t index : accepted) rows.push_back(inputs[size_t(index)]);
        g.input_path = it + "/draws_" + std::to_string(round) + ".input.jsonl";
        g.limit = -1;
        if (ranks_.writer() && !file_exists(g.input_path)) write_jsonl_atomic(g.input_path, rows);
        ranks_.sync();
        source = accepted;
      }
      generate(p_t, codec, g, ranks_);
      accepted.clear();
      for (const JsonlRow& row : read_jsonl(g.output_path)) {
        json value = row.value;
        const int64_t local = value.at("index").get<int64_t>();
        const int64_t index = round == 0 ? local : source.at(size_t(local));
        value["index"] = index;
        value["draws"] = round + 1;
        const std::string response = value.at("generated").back().at("content").get<std::string>();
        ++draws;
        if (round == 0) ++prompts;
        if (verify_response(verifier, inputs.at(size_t(index)), response,
                            options.input_path + ": row " + std::to_string(index + 1))) {
          accepted.push_back(index);
          if (round == 0) ++accepted_first;
          pairs.erase(index);
        } else {
          pairs[index] = value;
        }
      }
    }
    std::vector<json> rows;
    for (auto& [index, row] : pairs) rows.push_back(std::move(row));
    check(!rows.empty(), it, ": every generated answer was accepted by the ", n.verifier, " verifier after ",
          n.max_resamples, " resamples: no pairs to train on (the model solves the training prompts; "
          "turn generation.negatives off or add harder prompts)");
    if (ranks_.writer()) write_jsonl_atomic(it + "/pairs.jsonl", rows);
    return {{"verifier", n.verifier}, {"max_resamples", n.max_resamples}, {"prompts", prompts},
            {"accepted_first_draw", accepted_first}, {"draws", draws}, {"pairs", int64_t(rows.size())},
            {"dropped", prompts - int64_t(rows.size())}};
  }

  // Likelihood displacement: the real answers' log-prob falling while the margin grows.
  void warn_on_displacement(const std::string& name, const nlohmann::json& drift) const {
    const double limit = recipe_.evaluation.displacement_warning;
    if (drift.is_null() || limit <= 0) return;
    const double fall = drift["train_logps_real_first"].get<double>() - drift["train_logps_real_last"].get<double>();
    const bool margin_grew = drift["train_margins_last"].get<double>() > drift["train_margins_first"].get<double>();
    if (fall <= limit || !margin_grew) return;
    char text[320];
    std::snprintf(text, sizeof text,
                  "%s: the real answers' log-prob fell by %.2f nats per answer during training (logps/real %.2f -> "
                  "%.2f) while the margin grew (%.3f -> %.3f): likelihood displacement; a lower learning rate, "
                  "fewer epochs or sft_weight > 0 counter it",
                  name.c_str(), fall, drift["train_logps_real_first"].get<double>(),
                  drift["train_logps_real_last"].get<double>(), drift["train_margins_first"].get<double>(),
                  drift["train_margins_last"].get<double>());
    log_warning(text);
    state_.log(std::string("warning: ") + text);
  }

  // The stop rule after iteration t (empty: go on). Computed from the eval files, so a
  // resumed run decides exactly as the uninterrupted one did.
  std::string stop_reason(int64_t t) const {
    const nlohmann::json eval = read_json(dir(iter_name(t) + "/eval.json"));
    if (recipe_.stop.reward_accuracy_stderrs && eval.contains("heldout_reward_accuracy")) {
      const double accuracy = eval["heldout_reward_accuracy"].get<double>();
      const double se = eval.value("heldout_reward_accuracy_stderr", nlohmann::json(0.0)).is_number()
                            ? eval["heldout_reward_accuracy_stderr"].get<double>()
                            : 0.0;
      const double k = *recipe_.stop.reward_accuracy_stderrs;
      const double margin = eval.contains("train_margins_last") ? eval["train_margins_last"].get<double>() : 0.0;
      if (std::abs(accuracy - 0.5) <= k * se && margin >= recipe_.stop.min_train_margin) {
        char text[256];
        std::snprintf(text, sizeof text,
                      "held-out reward accuracy %.4f is within %g standard errors (%.4f) of 0.5 after iteration %lld, "
                      "whose training moved the model (final training margin %.3f >= %g)",
                      accuracy, k, se, static_cast<long long>(t), margin, recipe_.stop.min_train_margin);
        return text;
      }
    }
    if (recipe_.stop.patience > 0) {
      // Iterations since the best validation value (the SFT model counts as iteration -1).
      // Only data.heldout measurements are read here: data.test never steers the run.
      const std::string& metric = recipe_.stop.metric;
      const double sign = metric == "heldout_exact_match" ? 1.0 : -1.0;  // higher is better after this
      const auto value = [&](const std::string& path) {
        const nlohmann::json eval = read_json(path);
        return eval.contains(metric) && eval[metric].is_number() ? sign * eval[metric].get<double>() : -INFINITY;
      };
      double best = value(dir("sft_eval.json"));
      int64_t since_best = 0;
      for (int64_t i = 0; i <= t; ++i) {
        const double v = value(dir(iter_name(i) + "/eval.json"));
        if (v > best) {
          best = v;
          since_best = 0;
        } else {
          ++since_best;
        }
      }
      if (since_best >= recipe_.stop.patience)
        return metric + " (validation) has not improved for " + std::to_string(since_best) + " iterations";
    }
    return "";
  }

  const Recipe& recipe_;
  RunOptions options_;
  TrainDevice placement_;  // every model of the run: device and dtype
  Ranks ranks_;
  RunState state_;
  std::unique_ptr<Transformer> held_;  // model_at's model, of folder held_dir_
  std::string held_dir_;
};

}  // namespace

RunSummary run_spin(const Recipe& recipe, const RunOptions& options) {
  check(!options.run_dir.empty(), "no output folder: give --output or output_dir in the recipe");
  check_inputs(recipe);
  // --device/--dtype and the recipe's placement keys resolved once (resolve_placement), and
  // checked as training will check them (fp16 refused), before the run folder is written.
  const RunPlacement chosen = resolve_placement(recipe.placement, options.device, options.dtype);
  const TrainDevice placement = resolve_run_device(recipe.placement, chosen);
  SpinRun run(recipe, options, placement);
  return run.run();
}

RunSummary read_run_summary(const std::string& run_dir) {
  RunSummary summary;
  const auto add = [&](std::vector<EvaluatedModel>& list, const std::string& label, const std::string& path) {
    if (file_exists(path)) list.push_back({label, read_json(path)});
  };
  add(summary.spin, "SFT", run_dir + "/sft_eval.json");
  for (int64_t t = 0; fs::exists(run_dir + "/" + iter_name(t)); ++t) {
    add(summary.spin, "iter " + std::to_string(t), run_dir + "/" + iter_name(t) + "/eval.json");
    summary.iterations_done = t + 1;
  }
  for (int64_t t = 0; fs::exists(run_dir + "/control/" + iter_name(t)); ++t)
    add(summary.control, "control " + std::to_string(t), run_dir + "/control/" + iter_name(t) + "/eval.json");
  for (int64_t t = 0; file_exists(run_dir + "/" + iter_name(t) + "/vs_control.json"); ++t)
    summary.vs_control.push_back(read_json(run_dir + "/" + iter_name(t) + "/vs_control.json"));
  select_on_validation(summary);
  return summary;
}

void select_on_validation(RunSummary& summary) {
  summary.selected.clear();
  summary.selected_by.clear();
  for (const char* metric : {"heldout_exact_match", "heldout_forward_kl", "heldout_nll"}) {
    const double sign = std::string(metric) == "heldout_exact_match" ? 1.0 : -1.0;
    double best = -INFINITY;
    for (const EvaluatedModel& m : summary.spin) {
      if (!m.eval.contains(metric) || !m.eval[metric].is_number()) continue;
      const double v = sign * m.eval[metric].get<double>();
      if (v > best) best = v, summary.selected = m.label;
    }
    if (!summary.selected.empty()) {
      summary.selected_by = metric;
      return;
    }
  }
}

std::string format_summary_table(const RunSummary& summary) {
  struct Column {
    std::string key, title;
  };
  std::vector<Column> columns = {{"exact_match", "test EM"},
                                 {"sample_accuracy", "test T=1"},
                                 {"forward_kl", "test KL"},
                                 {"valid_mass", "test mass"},
                                 {"tv", "test TV"},
                                 {"heldout_exact_match", "valid EM"},
                                 {"heldout_forward_kl", "valid KL"},
                                 {"heldout_reward_accuracy", "reward acc"},
                                 {"heldout_nll", "valid NLL"}};
  std::vector<const EvaluatedModel*> rows;
  for (size_t i = 0; i < summary.spin.size(); ++i) {
    rows.push_back(&summary.spin[i]);
    // Control t sits below SPIN iter t (row i = t + 1, since row 0 is SFT).
    if (i >= 1 && i - 1 < summary.control.size()) rows.push_back(&summary.control[i - 1]);
  }
  for (size_t t = summary.spin.empty() ? 0 : summary.spin.size() - 1; t < summary.control.size(); ++t)
    rows.push_back(&summary.control[t]);
  // lm-eval columns: "<task>/<metric>" keys in first-seen order.
  for (const EvaluatedModel* m : rows)
    for (const auto& [key, value] : m->eval.items()) {
      const bool is_stderr = key.size() > 7 && key.compare(key.size() - 7, 7, "_stderr") == 0;
      if (key.find('/') == std::string::npos || is_stderr || !value.is_number()) continue;
      bool seen = false;
      for (const Column& c : columns) seen = seen || c.key == key;
      if (!seen) columns.push_back({key, key});
    }
  std::vector<Column> shown;  // only columns some model has
  for (const Column& c : columns)
    for (const EvaluatedModel* m : rows)
      if (m->eval.contains(c.key) && m->eval[c.key].is_number()) {
        shown.push_back(c);
        break;
      }
  // Exact matches in percent, the others as they are.
  const auto cell = [](const nlohmann::json& eval, const std::string& key) -> std::string {
    if (!eval.contains(key) || !eval[key].is_number()) return "-";
    const bool percent = key == "exact_match" || key == "heldout_exact_match" || key == "sample_accuracy";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, percent ? "%.1f%%" : "%.4f", eval[key].get<double>() * (percent ? 100 : 1));
    return buffer;
  };
  const auto pad = [](const std::string& text, size_t width, bool left) {
    const std::string fill(text.size() < width ? width - text.size() : 0, ' ');
    return left ? text + fill : fill + text;
  };
  std::string out = pad("model", 12, true);
  for (const Column& c : shown) out += "  " + pad(c.title, std::max<size_t>(c.title.size(), 10), false);
  out += "\n";
  for (const EvaluatedModel* m : rows) {
    const std::string mark = !summary.selected.empty() && m->label == summary.selected ? " *" : "";
    out += pad(m->label + mark, 12, true);
    for (const Column& c : shown) out += "  " + pad(cell(m->eval, c.key), std::max<size_t>(c.title.size(), 10), false);
    out += "\n";
  }
  out += "test EM: greedy exact match on data.test (the reported number); T=1: one sample at temperature 1;\n"
         "KL: forward KL(p_data || p) in nats per answer; mass: p(valid answers); valid: data.heldout\n";
  // Paired differences SPIN - control on the test problems.
  bool header = false;
  for (size_t t = 0; t < summary.vs_control.size(); ++t) {
    const nlohmann::json& v = summary.vs_control[t];
    std::string line;
    for (const auto& [key, label, percent] : {std::tuple<const char*, const char*, bool>{"forward_kl", "KL", false},
                                              {"valid_mass", "mass", false},
                                              {"exact_match", "EM", true},
                                              {"sample_accuracy", "T=1", true}}) {
      if (!v.contains(key)) continue;
      const nlohmann::json& d = v[key];
      const double scale = percent ? 100.0 : 1.0;
      char buffer[160];
      if (d["stderr"].is_number())
        std::snprintf(buffer, sizeof buffer, "  %s %+.4g +- %.2g", label, d["mean"].get<double>() * scale,
                      d["stderr"].get<double>() * scale);
      else
        std::snprintf(buffer, sizeof buffer, "  %s %+.4g", label, d["mean"].get<double>() * scale);
      line += buffer;
      if (d.contains("mcnemar")) {
        std::snprintf(buffer, sizeof buffer, " (McNemar p %.3g)", d["mcnemar"]["p_value"].get<double>());
        line += buffer;
      }
    }
    if (line.empty()) continue;
    if (!header) out += "SPIN - control, paired over the test problems (mean +- standard error; EM in points):\n";
    header = true;
    out += "  iter " + std::to_string(t) + ":" + line + "\n";
  }
  if (!summary.selected.empty())
    out += "* selected on the validation split by " + summary.selected_by + " (data.test played no part)\n";
  return out;
}

}  // namespace spinlm
