// The SPIN loop end to end: recipes are validated before any work, a small run completes and
// its models load, a run killed during generation, during training or between iterations
// and resumed ends with the files of an uninterrupted run; `spinlm train --resume` on an
// iteration's finished training folder says it is finished; the stop rule reads validation
// numbers only. (`demo --quick`: test_demo.cpp.)
#include <gtest/gtest.h>

#include <sstream>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/arith_task.h"
#include "io/jsonl.h"
#include "model/hf_model.h"
#include "pipeline/recipe.h"
#include "pipeline/run_state.h"
#include "pipeline/spin_loop.h"
#include "testkit.h"
#include "testkit_data.h"
#include "testkit_process.h"

namespace spinlm {
namespace {

namespace fs = std::filesystem;
using testkit::shell_quote;

std::string error_of(const std::function<void()>& work) {
  try {
    work();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

const char* const kMinimal = "model_name_or_path: m\ndata:\n  train: t.jsonl\n";

// ---------------------------------------------------------------- recipes

TEST(Recipe, PaperRecipeHasTheFourIterationsOfTheZephyrRun) {
  const Recipe r = load_recipe(testkit::source_path("examples/zephyr-spin.yaml"));
  ASSERT_EQ(r.iterations.size(), 4u);
  const double lr[] = {5e-7, 5e-7, 1e-7, 1e-7}, beta[] = {0.1, 0.1, 0.1, 5.0};
  for (size_t t = 0; t < 4; ++t) {
    EXPECT_DOUBLE_EQ(r.iterations[t].learning_rate, lr[t]);
    EXPECT_DOUBLE_EQ(r.iterations[t].beta, beta[t]);
    EXPECT_EQ(r.iterations[t].loss, "logistic");  // "sigmoid" in TRL's words
    EXPECT_EQ(r.iterations[t].optim, "rmsprop");
    EXPECT_EQ(r.iterations[t].num_train_epochs, 2);
    EXPECT_EQ(r.iterations[t].batch_size(), 64);
    EXPECT_EQ(r.iterations[t].mix_previous, t > 0);
    EXPECT_EQ(r.iterations[t].max_length, 1024);
    EXPECT_EQ(r.iterations[t].max_prompt_length, 512);
  }
  EXPECT_EQ(r.generation.max_new_tokens, 256);
  // Relative paths are resolved against the recipe's folder.
  EXPECT_EQ(r.data.train, testkit::source_path("examples/ultrachat_200k/data/train_sft-*.parquet"));
  EXPECT_EQ(r.data.max_train_samples, 50000);
  EXPECT_NO_THROW(load_recipe(testkit::source_path("examples/tiny-arith.yaml")));
}

TEST(Recipe, DefaultsAndOverrides) {
  const Recipe r = parse_recipe(std::string(kMinimal) +
                                    "learning_rate: 1.0e-5\nnum_iterations: 2\n",
                                "r.yaml");
  EXPECT_EQ(r.iterations.size(), 2u);
  EXPECT_DOUBLE_EQ(r.iterations[1].learning_rate, 1e-5);
  EXPECT_DOUBLE_EQ(r.iterations[1].beta, 0.1);
  // Without held-out data the reward-accuracy evaluation is off, so the stop rule cannot use it.
  EXPECT_NE(error_of([] {
              parse_recipe(std::string(kMinimal) + "stop: {reward_accuracy_stderrs: 2}\n", "r.yaml");
            }).find("needs data.heldout"),
            std::string::npos);
  const Recipe o = parse_recipe(std::string(kMinimal) + "beta: 0.2\niterations:\n  - {}\n  - {beta: 5.0, loss_type: hinge}\n",
                                "r.yaml");
  EXPECT_DOUBLE_EQ(o.iterations[0].beta, 0.2);
  EXPECT_DOUBLE_EQ(o.iterations[1].beta, 5.0);
  EXPECT_EQ(o.iterations[1].loss, "hinge");
}

TEST(Recipe, MistakesNameTheKeyAndLine) {
  struct Case {
    std::string yaml, expected;
  };
  const std::vector<Case> cases = {
      {std::string(kMinimal) + "learning_rte: 1e-5\n", "r.yaml:4: unknown key 'learning_rte'"},
      {std::string(kMinimal) + "beta: fast\n", "r.yaml:4: key 'beta' must be a number, got 'fast'"},
      {std::string(kMinimal) + "beta: -1\n", "r.yaml:4: key 'beta' must be a positive number"},
      {std::string(kMinimal) + "optim: sgd\n", "r.yaml:4: key 'optim' must be one of rmsprop, adamw"},
      {std::string(kMinimal) + "generation:\n  temprature: 0.7\n", "r.yaml:5: unknown key 'generation.temprature'"},
      {std::string(kMinimal) + "iterations:\n  - {beta: 0.1}\n  - {lr: 1}\n", "r.yaml:6: unknown key 'iterations[1].lr'"},
      {std::string(kMinimal) + "num_train_epochs: 1.5\n", "r.yaml:4: key 'num_train_epochs' must be an integer"},
      {std::string(kMinimal) + "max_length: 100\nmax_prompt_length: 200\n", "key 'max_prompt_length' (200) must be below"},
      {"data:\n  train: t.jsonl\n", "missing key 'model_name_or_path'"},
      {"model_name_or_path: m\ndata: [1, 2\n", "r.yaml:3: not valid YAML"},
      {std::string(kMinimal) + "num_iterations: 3\niterations: [{}, {}]\n", "disagrees with the 2 entries"},
  };
  for (const Case& c : cases)
    EXPECT_NE(error_of([&] { parse_recipe(c.yaml, "r.yaml"); }).find(c.expected), std::string::npos)
        << c.yaml << "\n-> " << error_of([&] { parse_recipe(c.yaml, "r.yaml"); });
}

// The recipe's lm-eval tasks: names, data folder and every task's files are checked when the
// recipe is read, with the key and FILE:LINE of the mistake.
TEST(Recipe, EvaluationTasksAreValidatedWithKeyAndLine) {
  const std::string data = testkit::source_path("tests/data/eval");
  const std::string ok = std::string(kMinimal) + "evaluation:\n  tasks: [arc_challenge, gsm8k]\n  data_dir: " + data +
                         "\n  num_fewshot: 1\n";
  const Recipe r = parse_recipe(ok, "r.yaml");
  EXPECT_EQ(r.evaluation.tasks, (std::vector<std::string>{"arc_challenge", "gsm8k"}));
  EXPECT_EQ(r.evaluation.data_dir, data);
  EXPECT_EQ(r.evaluation.num_fewshot, 1);
  EXPECT_NE(recipe_to_json(r).find("\"tasks\""), std::string::npos);
  EXPECT_EQ(json::parse(recipe_to_json(parse_recipe(kMinimal, "r.yaml")))["evaluation"]["tasks"], json::array());

  const std::string empty = testkit::make_temp_dir("empty-eval-data");
  struct Case {
    std::string yaml, expected;
  };
  const std::vector<Case> cases = {
      {std::string(kMinimal) + "evaluation:\n  tasks:\n    - arc_challenge\n    - hellaswagg\n  data_dir: " + data + "\n",
       "r.yaml:7: key 'evaluation.tasks[1]': unknown task 'hellaswagg' (built-in: "},
      {std::string(kMinimal) + "evaluation:\n  tasks: [gsm8k]\n", "r.yaml:5: key 'evaluation.tasks' needs 'evaluation.data_dir'"},
      {std::string(kMinimal) + "evaluation:\n  tasks: [gsm8k]\n  data_dir: /nonexistent/eval\n",
       "r.yaml:6: key 'evaluation.data_dir': folder /nonexistent/eval does not exist"},
      {std::string(kMinimal) + "evaluation:\n  tasks: [gsm8k]\n  data_dir: " + empty + "\n",
       "r.yaml:5: key 'evaluation.tasks[0]' (task gsm8k): "},
      {std::string(kMinimal) + "evaluation:\n  task_files: [nope.yaml]\n  data_dir: " + data + "\n",
       "r.yaml:5: key 'evaluation.task_files[0]': "},
      {std::string(kMinimal) + "evaluation:\n  tasks: [mmlu, mmlu]\n  data_dir: " + data + "\n",
       "key 'evaluation.tasks[1]': task 'mmlu' is listed twice"},
      {std::string(kMinimal) + "evaluation:\n  data_dir: " + data + "\n",
       "r.yaml:5: key 'evaluation.data_dir' needs evaluation.tasks"},
      {std::string(kMinimal) + "evaluation:\n  tasks: 3\n", "r.yaml:5: key 'evaluation.tasks[0]': unknown task '3'"},
  };
  for (const Case& c : cases)
    EXPECT_NE(error_of([&] { parse_recipe(c.yaml, "r.yaml"); }).find(c.expected), std::string::npos)
        << c.yaml << "\n-> " << error_of([&] { parse_recipe(c.yaml, "r.yaml"); });
  // The missing task file is named (the error comes from reading data_dir/gsm8k.jsonl).
  const std::string missing = error_of([&] {
    parse_recipe(std::string(kMinimal) + "evaluation:\n  tasks: [gsm8k]\n  data_dir: " + empty + "\n", "r.yaml");
  });
  EXPECT_NE(missing.find(empty + "/gsm8k.jsonl"), std::string::npos) << missing;
}

// Choices (the stop rule) read the validation split only: patience watches a held-out
// measurement and a recipe that could only watch data.test is refused.
TEST(Recipe, StopRuleWatchesOnlyTheValidationSplit) {
  const std::string with_heldout = "model_name_or_path: m\ndata: {train: t.jsonl, heldout: h.jsonl, test: x.jsonl}\n";
  const Recipe nll = parse_recipe(with_heldout + "stop: {patience: 1}\n", "r.yaml");
  EXPECT_EQ(nll.stop.metric, "heldout_nll");
  const Recipe em = parse_recipe(with_heldout + "evaluation: {heldout_exact_match: true}\nstop: {patience: 2}\n", "r.yaml");
  EXPECT_EQ(em.stop.metric, "heldout_exact_match");
  EXPECT_NE(recipe_to_json(em).find("\"metric\": \"heldout_exact_match\""), std::string::npos);
  // Only test data: nothing on validation to watch.
  EXPECT_NE(error_of([] {
              parse_recipe("model_name_or_path: m\ndata: {train: t.jsonl, test: x.jsonl}\nstop: {patience: 1}\n", "r.yaml");
            }).find("r.yaml:3: key 'stop.patience' watches heldout_nll, which needs data.heldout"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_recipe(with_heldout + "stop: {patience: 1, metric: exact_match}\n", "r.yaml"); })
                .find("key 'stop.metric' must be one of heldout_exact_match, heldout_nll"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_recipe(with_heldout + "stop: {patience: 1, metric: heldout_exact_match}\n", "r.yaml"); })
                .find("needs data.heldout and evaluation.heldout_exact_match"),
            std::string::npos);
}

TEST(Recipe, RunRefusesABadRecipeBeforeWritingAnything) {
  const std::string dir = testkit::make_temp_dir("bad-recipe");
  write_file_atomic(dir + "/r.yaml", std::string(kMinimal) + "output_dir: out\nwarmup_ratio: 2\n");
  const auto result = testkit::run_spinlm("run --config " + shell_quote(dir + "/r.yaml"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("error: " + dir + "/r.yaml:5: key 'warmup_ratio' must be in [0, 1]"), std::string::npos)
      << result.output;
  EXPECT_FALSE(fs::exists(dir + "/out"));
}

// ---------------------------------------------------------------- run state

TEST(RunState, RecordsStepsAndRefusesToMixRuns) {
  const std::string dir = testkit::make_temp_dir("state") + "/run";
  {
    RunState state = RunState::open(dir, "{\"a\":1}", false);
    state.mark_done("iter_0/generate", {{"rows", 3}});
  }
  EXPECT_NE(error_of([&] { RunState::open(dir, "{\"a\":1}", false); }).find("pass --resume"), std::string::npos);
  EXPECT_NE(error_of([&] { RunState::open(dir, "{\"a\":2}", true); }).find("the recipe differs"), std::string::npos);
  RunState resumed = RunState::open(dir, "{\"a\":1}", true);
  EXPECT_TRUE(resumed.done("iter_0/generate"));
  EXPECT_FALSE(resumed.done("iter_0/train"));
  EXPECT_EQ(resumed.result("iter_0/generate").at("rows"), 3);
  resumed.log("hello");
  EXPECT_NE(read_file(dir + "/run.log").find("Z hello"), std::string::npos);
}

// ---------------------------------------------------------------- end to end

// A random tiny byte-vocabulary model, the arithmetic task and a two-iteration recipe.
struct Fixture {
  std::string dir, recipe;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture f;
    f.dir = testkit::make_temp_dir("pipeline");
    const auto init = testkit::run_spinlm("init-model --arch llama --vocab byte --hidden-size 32 --intermediate-size 64 --layers 2 "
                                          "--heads 2 --seed 3 --out " + shell_quote(f.dir + "/model"));
    EXPECT_EQ(init.exit_code, 0) << init.output;
    testkit::write_arith_split_files(f.dir, 9, {24, 8, 8});
    f.recipe = f.dir + "/recipe.yaml";
    write_file_atomic(f.recipe, R"(model_name_or_path: model
seed: 5
learning_rate: 1.0e-3
beta: 0.1
num_train_epochs: 2
per_device_train_batch_size: 4
gradient_accumulation_steps: 2
max_length: 160
max_prompt_length: 120
logging_steps: 1
data: {train: train.jsonl, heldout: heldout.jsonl, test: test.jsonl}
generation: {max_new_tokens: 24, batch_size: 1}
evaluation: {max_new_tokens: 16}
iterations:
  - {}
  - {mix_previous: true, beta: 0.5}
control: {enabled: true}
)");
    return f;
  }();
  return f;
}

std::string run_args(const std::string& out, bool resume) {
  // One thread: on a busy 2-core machine OpenMP threads spinning against other processes make
  // a tiny model's training many times slower.
  return "run --threads 1 --config " + shell_quote(fixture().recipe) + " --output " + shell_quote(out) + (resume ? " --resume" : "");
}

// The uninterrupted run every interrupted one is compared with.
const std::string& reference_run() {
  static const std::string out = [] {
    const std::string out = testkit::make_temp_dir("run-ref") + "/run";
    const auto result = testkit::run_spinlm(run_args(out, false));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return out;
  }();
  return out;
}

TEST(Run, CompletesAndItsModelsLoad) {
  const std::string& out = reference_run();
  for (const char* file : {"sft_eval.json", "state.json", "run.log", "iter_0/pairs.jsonl", "iter_0/metrics.jsonl",
                           "iter_0/eval.json", "iter_1/model/model.safetensors", "iter_1/eval.json",
                           "control/iter_1/model/model.safetensors", "control/iter_1/eval.json"})
    EXPECT_TRUE(file_exists(out + "/" + file)) << file;
  EXPECT_EQ(read_jsonl(out + "/iter_0/pairs.jsonl").size(), 24u);
  // Iteration 1 mixes the pairs of iterations 0 and 1: 48 pairs, batch 8, 2 epochs = 12 steps.
  const auto metrics = read_jsonl(out + "/iter_1/metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  int64_t last_step = 0;
  for (const auto& row : metrics)
    if (row.value.contains("step")) last_step = std::max<int64_t>(last_step, row.value["step"].get<int64_t>());
  EXPECT_EQ(last_step, 12);
  const json eval = json::parse(read_file(out + "/iter_1/eval.json"));
  for (const char* key : {"exact_match", "heldout_nll", "heldout_reward_accuracy"}) EXPECT_TRUE(eval.contains(key)) << key;
  for (const char* model : {"iter_0/model", "iter_1/model", "control/iter_1/model"}) {
    const Transformer m = load_model(out + "/" + model);
    EXPECT_EQ(m.config().hidden_size, 32) << model;
  }
  // Training moved the weights.
  EXPECT_NE(read_file(out + "/iter_0/model/model.safetensors"), read_file(fixture().dir + "/model/model.safetensors"));
  // Each model is read from disk once per role: the SFT model serves its evaluation and
  // iteration 0; a trained p_{t+1} stays in memory for its evaluation, and is read again only
  // for the next generation because the control trained in between; p_t's held-out scores
  // come from the generation step, so the opponent is never read again.
  std::vector<std::string> reads;
  {
    std::istringstream in(read_file(out + "/run.log"));
    for (std::string line; std::getline(in, line);)
      if (const size_t at = line.find("read model "); at != std::string::npos)
        reads.push_back(fs::path(line.substr(at + 11)).lexically_normal().string());
  }
  std::vector<std::string> expected;
  for (const std::string& dir : {fixture().dir + "/model", out + "/control/iter_0/model", out + "/iter_0/model",
                                 out + "/control/iter_1/model"})
    expected.push_back(fs::path(dir).lexically_normal().string());
  EXPECT_EQ(reads, expected);
  const json state = json::parse(read_file(out + "/state.json"));
  EXPECT_EQ(state.at("finished"), true);
  EXPECT_EQ(testkit::run_spinlm("report " + shell_quote(out)).exit_code, 0);
  EXPECT_TRUE(file_exists(out + "/report.html"));
  // A second fresh run into the same folder is refused.
  const auto again = testkit::run_spinlm(run_args(out, false));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("pass --resume"), std::string::npos) << again.output;
}

// Every file of a run folder with its content (metrics without their timing field; the log
// and the report, which hold times, left out).
std::map<std::string, std::string> run_files(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string rel = fs::relative(entry.path(), dir).string();
    const std::string name = entry.path().filename().string();
    if (name == "run.log" || name == "report.html") continue;
    std::string content = read_file(entry.path().string());
    if (name == "metrics.jsonl") {
      std::string cleaned;
      for (JsonlRow& row : read_jsonl(entry.path().string())) {
        row.value.erase("tokens_per_second");
        cleaned += row.value.dump() + "\n";
      }
      content = cleaned;
    }
    files[rel] = content;
  }
  return files;
}

// Starts `spinlm run`, waits until ready() says the run reached the phase, kills it with
// SIGKILL; true when the phase was reached before the run ended on its own.
bool kill_when(const std::string& out, bool resume, const std::function<bool()>& ready) {
  return testkit::kill_when(run_args(out, resume), "/dev/null", ready, 120);
}

bool state_has(const std::string& out, const std::string& step) {
  try {
    const json state = json::parse(read_file(out + "/state.json"));
    for (const auto& s : state.at("steps"))
      if (s == step) return true;
  } catch (...) {
  }
  return false;
}

void expect_same_as_reference(const std::string& out) {
  const auto expected = run_files(reference_run());
  const auto got = run_files(out);
  for (const auto& [path, content] : expected) {
    const auto it = got.find(path);
    if (it == got.end()) {
      ADD_FAILURE() << "missing after resume: " << path;
      continue;
    }
    EXPECT_TRUE(it->second == content) << "differs after resume: " << path;
  }
  for (const auto& [path, content] : got) EXPECT_TRUE(expected.count(path)) << "extra file after resume: " << path;
}

void resume_and_compare(const std::string& out) {
  const auto result = testkit::run_spinlm(run_args(out, true));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  expect_same_as_reference(out);
}

TEST(Run, KilledDuringGenerationResumesToTheSameFiles) {
  reference_run();
  const std::string out = testkit::make_temp_dir("run-kill-gen") + "/run";
  const std::string partial = out + "/iter_0/pairs.jsonl.partial";
  ASSERT_TRUE(kill_when(out, false, [&] {
    return file_exists(partial) && read_file(partial).find('\n') != std::string::npos;
  }));
  ASSERT_FALSE(file_exists(out + "/iter_0/pairs.jsonl")) << "the kill came after generation";
  resume_and_compare(out);
}

TEST(Run, KilledDuringTrainingResumesToTheSameFiles) {
  reference_run();
  const std::string out = testkit::make_temp_dir("run-kill-train") + "/run";
  ASSERT_TRUE(kill_when(out, false, [&] { return fs::exists(out + "/iter_1/model/epoch-1"); }));
  ASSERT_FALSE(state_has(out, "iter_1/train")) << "the kill came after training";
  resume_and_compare(out);
}

TEST(Run, KilledBetweenIterationsResumesToTheSameFiles) {
  reference_run();
  const std::string out = testkit::make_temp_dir("run-kill-between") + "/run";
  ASSERT_TRUE(kill_when(out, false, [&] { return state_has(out, "control_0/eval"); }));
  ASSERT_FALSE(state_has(out, "iter_1/train"));
  resume_and_compare(out);
}

// Killed after iteration 1's training finished but before the step was recorded: the
// resumed run must evaluate the trained model (read back from the finished folder), not the
// model it trained from.
TEST(Run, KilledAfterTrainingFinishedBeforeItWasRecordedResumesToTheSameFiles) {
  const std::string& reference = reference_run();
  const std::string out = testkit::make_temp_dir("run-kill-recorded") + "/run";
  fs::copy(reference, out, fs::copy_options::recursive);
  json state = json::parse(read_file(out + "/state.json"));
  json steps = json::array();
  for (const json& step : state["steps"]) {
    if (step == "iter_1/train") break;
    steps.push_back(step);
  }
  ASSERT_LT(steps.size(), state["steps"].size());
  state["steps"] = steps;
  state.erase("finished");
  write_file_atomic(out + "/state.json", state.dump(2) + "\n");
  for (const char* stale : {"iter_1/eval.json", "report.html", "control/iter_1/eval.json"}) fs::remove(out + "/" + stale);
  resume_and_compare(out);
}

// Corrupted state on resume: a recorded step whose outputs are not whole (a pairs file cut in
// the middle of a line, a model whose safetensors file lost its end, an evaluation file that
// is gone) is named and done again with every later step; the run ends as the reference did.
TEST(Run, CorruptedOutputsOfRecordedStepsAreNamedAndRedone) {
  const std::string& reference = reference_run();
  struct Case {
    std::string label, file;
    std::function<void(const std::string&)> damage;
  };
  const std::vector<Case> cases = {
      {"cut-pairs", "iter_0/pairs.jsonl",
       [](const std::string& path) {
         const std::string text = read_file(path);
         write_file_atomic(path, text.substr(0, text.size() / 2));
       }},
      {"cut-model", "iter_1/model/model.safetensors",
       [](const std::string& path) { fs::resize_file(path, fs::file_size(path) / 2); }},
      {"lost-eval", "control/iter_1/eval.json", [](const std::string& path) { fs::remove(path); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string out = testkit::make_temp_dir("run-" + c.label) + "/run";
    fs::copy(reference, out, fs::copy_options::recursive);
    fs::remove(out + "/report.html");
    c.damage(out + "/" + c.file);
    const auto result = testkit::run_spinlm(run_args(out, true));
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("as done, but " + out + "/" + c.file), std::string::npos) << result.output;
    expect_same_as_reference(out);
  }
}

// ---------------------------------------------------------------- after training

uintmax_t folder_bytes(const std::string& dir) {
  uintmax_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) total += entry.file_size();
  return total;
}

// The run keeps final models only: an iteration's checkpoints lose their weights and optimizer
// state once its training step is recorded, and `spinlm train --resume` on the folder then
// says the training finished (exit 0, model untouched) instead of failing on a missing
// checkpoint; different training options are a clear error naming the option.
TEST(Run, FinishedTrainingFolderKeepsNoOptimizerStateAndResumeSaysFinished) {
  const std::string& out = reference_run();
  const std::string model = out + "/iter_0/model";
  const json pointer = json::parse(read_file(model + "/trainer_state.json"));
  EXPECT_EQ(pointer.at("finished"), true);
  const std::string latest = pointer.at("latest").get<std::string>();
  EXPECT_EQ(latest, "epoch-2");
  for (const auto& entry : fs::recursive_directory_iterator(model)) {
    const std::string rel = fs::relative(entry.path(), model).string();
    if (rel.rfind("epoch-", 0) == 0 || rel.rfind("checkpoint-", 0) == 0)
      EXPECT_TRUE(entry.is_directory() ? rel == latest : rel == latest + "/trainer_state.json") << rel;
  }
  // Weights (fp32) + tokenizer and a few small files: well under twice the weights, where
  // one kept checkpoint (weights + RMSprop state) alone would be twice them.
  const uintmax_t weights = fs::file_size(model + "/model.safetensors");
  EXPECT_LT(folder_bytes(model), weights * 3 / 2) << folder_bytes(model) << " bytes for " << weights;

  const std::string before = read_file(model + "/model.safetensors");
  const std::string train = "train --threads 1 --model " + shell_quote(fixture().dir + "/model") + " --data " +
                            shell_quote(out + "/iter_0/pairs.jsonl") + " --output " + shell_quote(model) +
                            " --max-length 160 --max-prompt-length 120 --epochs 2 --batch-size 8 "
                            "--micro-batch-size 4 --learning-rate 1e-3 --seed 5 --logging-steps 1 --resume";
  const auto resumed = testkit::run_spinlm(train + " --beta 0.1");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("already finished; nothing to resume"), std::string::npos) << resumed.output;
  EXPECT_EQ(read_file(model + "/model.safetensors"), before);
  const auto other = testkit::run_spinlm(train + " --beta 0.3");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("error: "), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("beta"), std::string::npos) << other.output;
  EXPECT_EQ(other.output.find("has no trainer_state.json"), std::string::npos) << other.output;
}

// ---------------------------------------------------------------- stop rule

// The stop rule reads eval files, so a run folder whose steps are all recorded shows what it
// decides: patience on validation exact match stops when validation stops improving, even
// when the test number improves, and goes on when validation improves while test gets worse.
// The outputs of the generate and train steps a test records by hand, whole (a resumed run
// redoes a recorded step whose outputs are missing or broken): a pairs file, the held-out
// pairs and their scores, a metrics file, and a real tiny model.
void write_recorded_outputs(const std::string& run, int iterations) {
  const std::string model = run + "/../tiny-model";
  if (!file_exists(model + "/config.json")) {
    const auto made = testkit::run_spinlm("init-model --arch llama --vocab byte --hidden-size 16 --intermediate-size 32 "
                                          "--layers 1 --heads 2 --seed 1 --out " + shell_quote(model));
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }
  for (int t = 0; t < iterations; ++t) {
    const std::string it = run + "/iter_" + std::to_string(t);
    make_directories(it);
    for (const char* file : {"/pairs.jsonl", "/heldout_pairs.jsonl"}) write_file_atomic(it + file, "{}\n");
    write_file_atomic(it + "/heldout_opponent_logprobs.json", R"({"real": [], "generated": []})");
    write_file_atomic(it + "/metrics.jsonl", "");
    fs::remove_all(it + "/model");
    fs::copy(model, it + "/model", fs::copy_options::recursive);
  }
}

TEST(StopRule, ReadsTheValidationSplitNeverTheTestSplit) {
  for (const bool validation_improves : {true, false}) {
    const std::string dir = testkit::make_temp_dir("stop-rule");
    make_directories(dir + "/model");
    write_file_atomic(dir + "/model/config.json", "{}");
    for (const char* file : {"t.jsonl", "h.jsonl", "x.jsonl"}) write_file_atomic(dir + "/" + file, "");
    write_file_atomic(dir + "/r.yaml", "model_name_or_path: model\ndata: {train: t.jsonl, heldout: h.jsonl, test: x.jsonl}\n"
                                       "num_iterations: 2\nevaluation: {heldout_exact_match: true}\n"
                                       "stop: {patience: 1}\n");
    const Recipe recipe = load_recipe(dir + "/r.yaml");
    const std::string run = dir + "/run";
    {
      RunState state = RunState::open(run, recipe_to_json(recipe), false);
      for (const char* step : {"sft_eval", "iter_0/generate", "iter_0/train", "iter_0/eval", "iter_1/generate",
                               "iter_1/train", "iter_1/eval"})
        state.mark_done(step);
      state.iteration_dir(0);
      if (validation_improves) state.iteration_dir(1);
    }
    write_recorded_outputs(run, 2);
    write_file_atomic(run + "/sft_eval.json", R"({"exact_match": 0.20, "heldout_exact_match": 0.30})");
    // Validation and test disagree in both cases.
    write_file_atomic(run + "/iter_0/eval.json", validation_improves
                                                     ? R"({"exact_match": 0.10, "heldout_exact_match": 0.40})"
                                                     : R"({"exact_match": 0.50, "heldout_exact_match": 0.25})");
    if (validation_improves)
      write_file_atomic(run + "/iter_1/eval.json", R"({"exact_match": 0.05, "heldout_exact_match": 0.45})");
    RunOptions options;
    options.run_dir = run;
    options.resume = true;
    options.show_progress = false;
    const RunSummary summary = run_spin(recipe, options);
    if (validation_improves) {
      EXPECT_EQ(summary.stopped, "");
      EXPECT_EQ(summary.iterations_done, 2);
      EXPECT_EQ(summary.selected, "iter 1");  // the best validation number (and the worst test one)
    } else {
      EXPECT_EQ(summary.stopped, "heldout_exact_match (validation) has not improved for 1 iterations");
      EXPECT_EQ(summary.iterations_done, 1);
      EXPECT_EQ(summary.selected, "SFT");  // not iter 0, the best test number
    }
    EXPECT_EQ(summary.selected_by, "heldout_exact_match");
    const std::string table = format_summary_table(summary);
    EXPECT_NE(table.find(summary.selected + " *"), std::string::npos) << table;
  }
}

// The fixed-point rule: reward accuracy within k standard errors of 0.5 stops the run only once
// the iteration's training moved the model (its final training margin); a tie counts one half
// upstream (train/losses.h), so pairs of equal answers pull the accuracy to 0.5, not below.
TEST(StopRule, RewardAccuracyAtTheFixedPointOnlyAfterTheModelMoved) {
  for (const double margin : {0.01, 0.8}) {
    const std::string dir = testkit::make_temp_dir("stop-fixed-point");
    make_directories(dir + "/model");
    write_file_atomic(dir + "/model/config.json", "{}");
    for (const char* file : {"t.jsonl", "h.jsonl"}) write_file_atomic(dir + "/" + file, "");
    write_file_atomic(dir + "/r.yaml", "model_name_or_path: model\ndata: {train: t.jsonl, heldout: h.jsonl}\n"
                                       "num_iterations: 2\nstop: {reward_accuracy_stderrs: 2, min_train_margin: 0.1}\n");
    const Recipe recipe = load_recipe(dir + "/r.yaml");
    const std::string run = dir + "/run";
    {
      RunState state = RunState::open(run, recipe_to_json(recipe), false);
      for (const char* step : {"sft_eval", "iter_0/generate", "iter_0/train", "iter_0/eval", "iter_1/generate",
                               "iter_1/train", "iter_1/eval"})
        state.mark_done(step);
      state.iteration_dir(0);
      state.iteration_dir(1);
    }
    write_recorded_outputs(run, 2);
    write_file_atomic(run + "/sft_eval.json", "{}");
    // 0.56 is 1.5 standard errors (0.04) from 0.5: the fixed point within 2 standard errors.
    const json eval = {{"heldout_reward_accuracy", 0.56}, {"heldout_reward_accuracy_stderr", 0.04},
                       {"train_margins_last", margin}};
    write_file_atomic(run + "/iter_0/eval.json", eval.dump());
    write_file_atomic(run + "/iter_1/eval.json", eval.dump());
    RunOptions options;
    options.run_dir = run;
    options.resume = true;
    options.show_progress = false;
    const RunSummary summary = run_spin(recipe, options);
    if (margin < 0.1) {
      EXPECT_EQ(summary.stopped, "");  // an iteration that barely moved says nothing about the fixed point
      EXPECT_EQ(summary.iterations_done, 2);
    } else {
      EXPECT_NE(summary.stopped.find("within 2 standard errors"), std::string::npos) << summary.stopped;
      EXPECT_EQ(summary.iterations_done, 1);
    }
  }
}

}  // namespace
}  // namespace spinlm
