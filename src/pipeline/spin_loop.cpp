// The SPIN loop: generate -> train -> evaluate for each iteration, every step recorded in
// RUN/state.json so that --resume skips finished steps and resumes unfinished ones.
#include "pipeline/spin_loop.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/arith_task.h"
#include "eval/builtin_tasks.h"
#include "eval/evaluator.h"
#include "eval/heldout.h"
#include "eval/results.h"
#include "eval/task_yaml.h"
#include "generate/generate_file.h"
#include "io/jsonl.h"
#include "model/device_choice.h"
#include "model/hf_model.h"
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

nlohmann::json read_json(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& error) {
    fail(path, ": not valid JSON (", error.what(), ")");
  }
}

void write_json(const std::string& path, const nlohmann::json& value) {
  write_file_atomic(path, value.dump(2) + "\n");
}

// Final answers of the test rows by their index (non-blank line order): the "answer" field,
// else the "#### N" of the row's last assistant message.
std::vector<std::optional<int64_t>> test_answers(const std::string& path) {
  std::vector<std::optional<int64_t>> answers;
  for (const JsonlRow& row : read_jsonl(path)) {
    const json& v = row.value;
    std::optional<int64_t> answer;
    if (v.contains("answer") && v["answer"].is_number_integer()) {
      answer = v["answer"].get<int64_t>();
    } else if (v.contains("messages") && v["messages"].is_array()) {
      for (const json& m : v["messages"])
        if (m.is_object() && m.value("role", "") == "assistant" && m.contains("content") && m["content"].is_string())
          answer = extract_final_answer(m["content"].get<std::string>());
    }
    answers.push_back(answer);
  }
  return answers;
}

// Greedy exact match of "#### N" on a split (data.test -> "exact_match", data.heldout ->
// "heldout_exact_match"); the generations stay in generations_path.
nlohmann::json exact_match(const Transformer& model, const TextCodec& codec, const std::string& model_dir,
                           const Recipe& recipe, const std::string& split_path, int64_t max_samples,
                           const std::string& key, const std::string& generations_path, bool progress) {
  GenerateOptions g;
  g.model_dir = model_dir;
  g.device = model.device().str();
  g.dtype = dtype_option_name(model.dtype());
  g.input_path = split_path;
  g.output_path = generations_path;
  g.max_new_tokens = recipe.evaluation.max_new_tokens;
  g.sampling.greedy = true;
  g.seed = recipe.seed;
  g.batch_size = recipe.generation.batch_size;
  g.prompt_format = recipe.generation.prompt_format;
  g.limit = limit_of(max_samples);
  g.show_progress = progress;
  generate_file(model, codec, g);
  const std::vector<std::optional<int64_t>> answers = test_answers(split_path);
  int64_t correct = 0, total = 0;
  for (const JsonlRow& row : read_jsonl(generations_path)) {
    const int64_t index = row.value.at("index").get<int64_t>();
    check(index >= 0 && index < int64_t(answers.size()), generations_path, ":", row.line, ": index out of range");
    const std::optional<int64_t>& answer = answers[size_t(index)];
    check(answer.has_value(), split_path, ": row ", index + 1,
          " has no final answer (an \"answer\" field or \"#### N\" in the assistant message)");
    const json& generated = row.value.at("generated");
    const std::string text = generated.back().at("content").get<std::string>();
    correct += arith_answer_correct(text, *answer);
    ++total;
  }
  check(total > 0, split_path, ": no rows to evaluate");
  const double p = double(correct) / double(total);
  return {{key, p}, {key + "_stderr", std::sqrt(p * (1 - p) / double(std::max<int64_t>(1, total - 1)))},
          {key + "_n", total}};
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

// What every evaluated model (SFT, iterations, control) reports: exact match on data.test,
// and on data.heldout, held-out NLL, and the recipe's lm-eval tasks. generations_prefix +
// "test_generations.jsonl" / "heldout_generations.jsonl" keep the greedy answers.
nlohmann::json evaluate_model(const std::string& model_dir, const Recipe& recipe, const TrainDevice& placement,
                              const std::string& generations_prefix, bool progress) {
  nlohmann::json eval = nlohmann::json::object();
  const EvaluationSettings& ev = recipe.evaluation;
  if (!ev.exact_match && !ev.heldout_exact_match && !ev.heldout_nll && !ev.has_tasks()) return eval;
  const Transformer model = load_model(model_dir, placement.device, placement.dtype);
  const ModelText text = load_model_text(model_dir);
  check(text.codec != nullptr, model_dir, ": no tokenizer.json; evaluation needs the model's tokenizer");
  if (ev.exact_match)
    eval.update(exact_match(model, *text.codec, model_dir, recipe, recipe.data.test, recipe.data.max_test_samples,
                            "exact_match", generations_prefix + "test_generations.jsonl", progress));
  if (ev.heldout_exact_match)
    eval.update(exact_match(model, *text.codec, model_dir, recipe, recipe.data.heldout,
                            recipe.data.max_heldout_samples, "heldout_exact_match",
                            generations_prefix + "heldout_generations.jsonl", progress));
  if (ev.heldout_nll) eval.update(heldout_nll(model, text, recipe));
  if (ev.has_tasks()) eval.update(task_metrics(model, *text.codec, model_dir, ev, progress));
  return eval;
}

// Held-out reward accuracy of p_{t+1} against its opponent p_t on pairs p_t generated.
nlohmann::json heldout_rewards(const std::string& opponent_dir, const std::string& model_dir,
                               const std::string& pairs_path, const TrainSettings& settings,
                               const TrainDevice& placement) {
  HeldoutPairsOptions o;
  o.files = {pairs_path};
  o.truncation = {settings.max_length, settings.max_prompt_length};
  o.beta = settings.beta;
  o.batch_size = settings.per_device_train_batch_size;
  const ModelText text = load_model_text(model_dir);
  const std::vector<TokenPair> pairs = load_heldout_pairs(*text.codec, text.stop, text.vocab_size, o);
  ReferenceLogprobs opponent;
  {
    const Transformer p_t = load_model(opponent_dir, placement.device, placement.dtype);  // one model at a time
    opponent = score_heldout_pairs(p_t, pairs, o);
  }
  const Transformer p_next = load_model(model_dir, placement.device, placement.dtype);
  const HeldoutPairsResult r = summarize_pair_rewards(pairs, score_heldout_pairs(p_next, pairs, o), opponent, o.beta);
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
      latest = nlohmann::json::parse(read_file(pointer)).value("latest", "");
    } catch (const nlohmann::json::exception&) {
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
    check(path->empty() || file_exists(*path), recipe.source, ": data file ", *path, " does not exist");
}

class SpinRun {
 public:
  SpinRun(const Recipe& recipe, const RunOptions& options, const TrainDevice& placement)
      : recipe_(recipe),
        options_(options),
        placement_(placement),
        state_(RunState::open(options.run_dir, recipe_to_json(recipe), options.resume)) {}

  RunSummary run() {
    if (options_.resume) remove_stale_temporaries(options_.run_dir);
    state_.log(options_.resume ? "resuming run in " + options_.run_dir : "starting run in " + options_.run_dir);
    state_.log("models on " + placement_.device.str() + " in " + dtype_option_name(placement_.dtype));
    step("sft_eval", [&] {
      write_json(dir("sft_eval.json"), evaluate_model(recipe_.model_name_or_path, recipe_, placement_, dir("sft_"),
                                                      options_.show_progress));
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
  std::string dir(const std::string& relative) const { return options_.run_dir + "/" + relative; }

  template <class Work>
  void step(const std::string& name, Work work) {
    if (state_.done(name)) return;
    state_.log("step " + name);
    work();
    state_.mark_done(name);
  }

  void iteration(int64_t t, const std::string& model) {
    const TrainSettings& s = recipe_.iterations[size_t(t)];
    const std::string it = state_.iteration_dir(t);
    const std::string name = iter_name(t);
    step(name + "/generate", [&] {
      const uint64_t seed = recipe_.seed + uint64_t(t);
      const Transformer p_t = load_model(model, placement_.device, placement_.dtype);
      const TextCodec codec = TextCodec::load(model);
      generate_file(p_t, codec, generation_options(recipe_, model, p_t, recipe_.data.train, it + "/pairs.jsonl", seed,
                                                   limit_of(recipe_.data.max_train_samples), options_.show_progress));
      if (recipe_.evaluation.heldout_reward_accuracy)
        generate_file(p_t, codec, generation_options(recipe_, model, p_t, recipe_.data.heldout,
                                                     it + "/heldout_pairs.jsonl", seed + 100000,
                                                     limit_of(recipe_.data.max_heldout_samples), options_.show_progress));
      const nlohmann::json quality = sample_quality(recipe_.data.train, it + "/pairs.jsonl");
      if (!quality.is_null()) write_json(it + "/samples.json", quality);
    });
    step(name + "/train", [&] {
      SpinTrainOptions o;
      o.loop = loop_options(s, model, it + "/model", recipe_.seed + uint64_t(t), placement_);
      if (s.mix_previous && t > 0) o.data_files.push_back(dir(iter_name(t - 1) + "/pairs.jsonl"));
      o.data_files.push_back(it + "/pairs.jsonl");
      o.loss = s.loss;
      o.beta = s.beta;
      o.truncation = {s.max_length, s.max_prompt_length};
      o.sft_weight = s.sft_weight;
      train_spin(o);
      copy_metrics(it + "/model", it + "/metrics.jsonl");
    });
    if (!recipe_.checkpoints.keep) remove_checkpoints(it + "/model");
    step(name + "/eval", [&] {
      nlohmann::json eval = evaluate_model(it + "/model", recipe_, placement_, it + "/", options_.show_progress);
      if (recipe_.evaluation.heldout_reward_accuracy)
        eval.update(heldout_rewards(model, it + "/model", it + "/heldout_pairs.jsonl", s, placement_));
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
      // The SFT rows the SPIN pairs came from: the first max_train_samples rows of data.train.
      const std::string data = it + "/train.jsonl";
      std::vector<json> rows;
      for (const JsonlRow& row : read_jsonl(recipe_.data.train)) {
        if (recipe_.data.max_train_samples > 0 && int64_t(rows.size()) >= recipe_.data.max_train_samples) break;
        rows.push_back(row.value);
      }
      write_jsonl_atomic(data, rows);
      SftTrainOptions o;
      o.loop = loop_options(s, model, it + "/model", recipe_.seed + uint64_t(t), placement_);
      o.data_files = {data};
      if (s.mix_previous && t > 0) o.data_files.push_back(data);
      o.max_length = s.max_length;
      train_sft(o);
      copy_metrics(it + "/model", it + "/metrics.jsonl");
    });
    if (!recipe_.checkpoints.keep) remove_checkpoints(it + "/model");
    step(name + "/eval", [&] {
      const nlohmann::json eval = evaluate_model(it + "/model", recipe_, placement_, it + "/", options_.show_progress);
      write_json(it + "/eval.json", eval);
      state_.log(name + " eval: " + loggable(eval));
    });
  }

  // The stop rule after iteration t (empty: go on). Computed from the eval files, so a
  // resumed run decides exactly as the uninterrupted one did.
  std::string stop_reason(int64_t t) const {
    const nlohmann::json eval = read_json(dir(iter_name(t) + "/eval.json"));
    if (recipe_.stop.reward_accuracy_tolerance && eval.contains("heldout_reward_accuracy")) {
      const double accuracy = eval["heldout_reward_accuracy"].get<double>();
      if (std::abs(accuracy - 0.5) <= *recipe_.stop.reward_accuracy_tolerance)
        return "held-out reward accuracy " + std::to_string(accuracy) + " is within " +
               std::to_string(*recipe_.stop.reward_accuracy_tolerance) + " of 0.5 after iteration " +
               std::to_string(t);
    }
    if (recipe_.stop.patience > 0) {
      // Iterations since the best validation value (the SFT model counts as iteration -1).
      // Only data.heldout measurements are read here: data.test never steers the run.
      const std::string& metric = recipe_.stop.metric;
      const double sign = metric == "heldout_nll" ? -1.0 : 1.0;  // higher is better after this
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
  RunState state_;
};

}  // namespace

RunSummary run_spin(const Recipe& recipe, const RunOptions& options) {
  check(!options.run_dir.empty(), "no output folder: give --output or output_dir in the recipe");
  check_inputs(recipe);
  // --device/--dtype resolved once, and checked as training will check them (fp16 refused),
  // before the run folder is written.
  TrainLoopOptions device_options;
  device_options.device = options.device;
  device_options.dtype = options.dtype;
  const TrainDevice placement = resolve_train_device(device_options);
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
  select_on_validation(summary);
  return summary;
}

void select_on_validation(RunSummary& summary) {
  summary.selected.clear();
  summary.selected_by.clear();
  for (const char* metric : {"heldout_exact_match", "heldout_nll"}) {
    const double sign = std::string(metric) == "heldout_nll" ? -1.0 : 1.0;
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
                                 {"heldout_exact_match", "valid EM"},
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
    const bool percent = key == "exact_match" || key == "heldout_exact_match";
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
  out += "test EM: greedy exact match on data.test (the reported number); valid: data.heldout\n";
  if (!summary.selected.empty())
    out += "* selected on the validation split by " + summary.selected_by + " (data.test played no part)\n";
  return out;
}

}  // namespace spinlm
