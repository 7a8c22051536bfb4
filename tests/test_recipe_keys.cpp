// The recipe keys that make a run fit its hardware (gradient_checkpointing, bf16 / torch_dtype,
// optimizer_state_dtype, save_steps, device): each parsed at the top level and per iteration
// where it belongs, bad values named with key and FILE:LINE, recorded in recipe.json (every
// key, from the one table that also prints the key list and docs/recipe-keys.md), combined
// with --device/--dtype as recipe.h says; an unknown key suggests the nearest known one; a tiny `spinlm run` with gradient checkpointing and save_steps writes resumable
// checkpoints inside both trainings (SPIN and the control's SFT) and ends on the weights of
// the run without them; bf16 and optimizer_state_dtype reach both trainers; `run --check`
// prints the resolved settings and the memory estimate.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/arith_task.h"
#include "io/safetensors.h"
#include "model/hf_model.h"
#include "pipeline/recipe.h"
#include "testkit.h"
#include "testkit_process.h"
#include "train/train_device.h"

namespace spinlm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testkit::shell_quote;

std::string error_of(const std::function<void()>& work) {
  try {
    work();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

const std::string kMinimal = "model_name_or_path: m\ndata:\n  train: t.jsonl\n";  // lines 1-3

// ---------------------------------------------------------------- parsing

TEST(RecipeKeys, EachKeyIsParsedAtTheTopAndPerIteration) {
  const Recipe r = parse_recipe(kMinimal +
                                    "device: cuda:1\n"
                                    "bf16: true\n"
                                    "torch_dtype: bfloat16\n"
                                    "gradient_checkpointing: true\n"
                                    "optimizer_state_dtype: bfloat16\n"
                                    "save_steps: 50\n"
                                    "iterations:\n"
                                    "  - {}\n"
                                    "  - {gradient_checkpointing: false, optimizer_state_dtype: float32, save_steps: 0}\n"
                                    "  - {optimizer_state_dtype: fp32}\n",
                                "r.yaml");
  EXPECT_EQ(r.placement.device, "cuda:1");
  EXPECT_EQ(r.placement.device_key, "device: cuda:1 at r.yaml:4");
  EXPECT_EQ(r.placement.dtype, "bf16");
  EXPECT_EQ(r.placement.dtype_key, "bf16: true at r.yaml:5");
  ASSERT_EQ(r.iterations.size(), 3u);
  EXPECT_TRUE(r.iterations[0].gradient_checkpointing);
  EXPECT_EQ(r.iterations[0].optimizer_state_dtype, "bf16");
  EXPECT_EQ(r.iterations[0].save_steps, 50);
  EXPECT_FALSE(r.iterations[1].gradient_checkpointing);
  EXPECT_EQ(r.iterations[1].optimizer_state_dtype, "fp32");
  EXPECT_EQ(r.iterations[1].save_steps, 0);
  EXPECT_TRUE(r.iterations[2].gradient_checkpointing);  // the top-level default
  EXPECT_EQ(r.iterations[2].optimizer_state_dtype, "fp32");
  EXPECT_EQ(r.iterations[2].save_steps, 50);

  // torch_dtype alone, bf16: false alone, and auto.
  EXPECT_EQ(parse_recipe(kMinimal + "torch_dtype: float32\n", "r.yaml").placement.dtype, "fp32");
  EXPECT_EQ(parse_recipe(kMinimal + "torch_dtype: bfloat16\n", "r.yaml").placement.dtype, "bf16");
  EXPECT_EQ(parse_recipe(kMinimal + "bf16: false\n", "r.yaml").placement.dtype, "fp32");
  EXPECT_EQ(parse_recipe(kMinimal + "bf16: true\ntorch_dtype: auto\n", "r.yaml").placement.dtype, "bf16");
  const Recipe plain = parse_recipe(kMinimal + "torch_dtype: auto\ndevice: auto\n", "r.yaml");
  EXPECT_EQ(plain.placement.dtype, "auto");
  EXPECT_EQ(plain.placement.device, "auto");
  EXPECT_TRUE(plain.placement.dtype_key.empty());
  EXPECT_TRUE(plain.placement.device_key.empty());
  for (const char* device : {"cpu", "cuda", "cuda:0", "cuda:12"})
    EXPECT_EQ(parse_recipe(kMinimal + "device: " + device + "\n", "r.yaml").placement.device, device);
}

// The key list's lines "INDENT key: value  # help" as (section path, key, value) triples;
// a line without a value opens a section (data:, generation:, ...) or is a key without default.
struct ListedKey {
  std::string section, key, value;
};
std::vector<ListedKey> listed_keys(const std::string& list) {
  std::vector<ListedKey> keys;
  std::vector<std::string> open;  // section names by indent level
  std::istringstream in(list);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t indent = line.find_first_not_of(' ');
    const std::string body = line.substr(indent, line.find(" # ") - indent);
    const size_t colon = body.find(':');
    const std::string key = body.substr(0, colon);
    std::string value = body.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of(' ') + 1);
    open.resize(indent / 2);
    std::string section;
    for (const std::string& name : open) section += (section.empty() ? "" : ".") + name;
    keys.push_back({section, key, value});
    open.push_back(key);
  }
  return keys;
}

TEST(RecipeKeys, RecipeJsonRecordsEveryListedKey) {
  // Every key of the list (one table drives both) that changes what a run computes is in
  // recipe.json, in its section, with the listed default.
  // (With both data sets: without them the evaluations that need one are off.)
  const json recorded =
      json::parse(recipe_to_json(parse_recipe(kMinimal + "  heldout: h.jsonl\n  test: x.jsonl\n", "r.yaml")));
  std::set<std::string> sections = {"data", "generation", "evaluation", "stop", "control", "iterations"};
  int64_t checked = 0;
  for (const ListedKey& k : listed_keys(recipe_key_list())) {
    if (k.section.empty() && sections.count(k.key)) continue;  // a section header
    if (k.key == "output_dir" || k.key == "num_iterations" || k.key == "bf16" || k.key == "negatives") continue;
    const bool train = k.section.empty() && !recorded.contains(k.key);
    json where = train ? recorded["iterations"][0] : recorded;
    std::istringstream parts(k.section);
    for (std::string part; std::getline(parts, part, '.');) where = where[part];
    ASSERT_TRUE(where.contains(k.key)) << k.section << "." << k.key;
    if (!k.value.empty() && k.key != "model_name_or_path") {
      // The list prints JSON for numbers, flags, lists and null, and strings bare.
      const json listed = json::accept(k.value) ? json::parse(k.value) : json(k.value);
      EXPECT_EQ(where[k.key], listed) << k.section << "." << k.key;
    }
    ++checked;
  }
  EXPECT_GT(checked, 50);
  const json set = json::parse(recipe_to_json(parse_recipe(
      kMinimal + "device: cpu\nbf16: true\niterations:\n  - {gradient_checkpointing: true, save_steps: 7}\n"
                 "  - {optimizer_state_dtype: bfloat16}\n",
      "r.yaml")));
  EXPECT_EQ(set.at("device"), "cpu");
  EXPECT_EQ(set.at("torch_dtype"), "bfloat16");
  EXPECT_EQ(set["iterations"][0].at("gradient_checkpointing"), true);
  EXPECT_EQ(set["iterations"][0].at("save_steps"), 7);
  EXPECT_EQ(set["iterations"][0].at("optimizer_state_dtype"), "float32");
  EXPECT_EQ(set["iterations"][1].at("optimizer_state_dtype"), "bfloat16");
  EXPECT_EQ(set["iterations"][1].at("gradient_checkpointing"), false);
  // bf16: true and torch_dtype: bfloat16 are the same setting; so are a default written out
  // and left out.
  EXPECT_EQ(recipe_to_json(parse_recipe(kMinimal + "bf16: true\n", "r.yaml")),
            recipe_to_json(parse_recipe(kMinimal + "torch_dtype: bfloat16\n", "r.yaml")));
  EXPECT_EQ(recipe_to_json(parse_recipe(kMinimal + "gradient_checkpointing: false\noptimizer_state_dtype: float32\n"
                                                   "save_steps: 0\ndevice: auto\ntorch_dtype: auto\n",
                                        "r.yaml")),
            recipe_to_json(parse_recipe(kMinimal, "r.yaml")));
}

TEST(RecipeKeys, TheListedDefaultsParseToTheDefaultRecipe) {
  // The list, with the two required values filled in, is a recipe; it means the defaults.
  // Left out: keys that are only allowed beside another (evaluation.num_fewshot and limit
  // need tasks; negatives' settings need reject: verified; min_train_margin needs
  // reward_accuracy_stderrs), and keys without a default.
  std::string yaml;
  std::istringstream in(recipe_key_list());
  const std::set<std::string> dependent = {"num_fewshot", "limit", "verifier", "max_resamples", "min_train_margin"};
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::string body = line.substr(0, line.find(" # "));
    const size_t colon = body.find(':');
    const std::string key = body.substr(body.find_first_not_of(' '), colon - body.find_first_not_of(' '));
    const bool header = body.find_first_not_of(' ', colon + 1) == std::string::npos;
    if (key == "model_name_or_path") { yaml += "model_name_or_path: m\n"; continue; }
    if (key == "train") { yaml += "  train: t.jsonl\n"; continue; }
    if (dependent.count(key)) continue;
    if (header && (key == "data" || key == "generation" || key == "negatives" || key == "evaluation" ||
                   key == "stop" || key == "control"))
      yaml += body + "\n";
    else if (!header)
      yaml += body + "\n";
  }
  EXPECT_EQ(recipe_to_json(parse_recipe(yaml, "listed.yaml")), recipe_to_json(parse_recipe(kMinimal, "r.yaml")))
      << yaml;
}

TEST(RecipeKeys, DocsListEqualsTheKeyTable) {
  const std::string doc = read_file(testkit::source_path("docs/recipe-keys.md"));
  const size_t begin = doc.find("```yaml\n");
  ASSERT_NE(begin, std::string::npos);
  const size_t end = doc.find("```", begin + 8);
  EXPECT_EQ(doc.substr(begin + 8, end - begin - 8), recipe_key_list())
      << "docs/recipe-keys.md is behind the key tables: regenerate its block with `spinlm run --list-keys`";
}

TEST(RecipeKeys, BadValuesNameTheKeyAndLine) {
  struct Case {
    std::string yaml, expected;
  };
  const std::vector<Case> cases = {
      {kMinimal + "gradient_checkpointing: yes please\n", "r.yaml:4: key 'gradient_checkpointing' must be true or false"},
      {kMinimal + "bf16: 1.5\n", "r.yaml:4: key 'bf16' must be true or false"},
      {kMinimal + "torch_dtype: float8\n", "r.yaml:4: key 'torch_dtype' must be one of auto, float32, bfloat16, float16"},
      {kMinimal + "torch_dtype: float16\n", "r.yaml:4: key 'torch_dtype' float16 cannot be trained"},
      {kMinimal + "torch_dtype: float32\nbf16: true\n", "r.yaml:5: key 'bf16' true contradicts torch_dtype: float32 (r.yaml:4)"},
      {kMinimal + "bf16: false\ntorch_dtype: bfloat16\n", "r.yaml:4: key 'bf16' false contradicts torch_dtype: bfloat16 (r.yaml:5)"},
      {kMinimal + "optimizer_state_dtype: float16\n",
       "r.yaml:4: key 'optimizer_state_dtype' must be one of float32, bfloat16, got 'float16'"},
      {kMinimal + "save_steps: -1\n", "r.yaml:4: key 'save_steps' must be at least 0, got -1"},
      {kMinimal + "save_steps: 2.5\n", "r.yaml:4: key 'save_steps' must be an integer"},
      {kMinimal + "device: tpu\n", "r.yaml:4: key 'device' must be auto, cpu, cuda or cuda:N (as --device), got 'tpu'"},
      {kMinimal + "device: cuda:x\n", "r.yaml:4: key 'device' must be auto, cpu, cuda or cuda:N"},
      {kMinimal + "iterations:\n  - {}\n  - {save_steps: many}\n", "r.yaml:6: key 'iterations[1].save_steps' must be an integer"},
      {kMinimal + "iterations:\n  - {optimizer_state_dtype: half}\n", "r.yaml:5: key 'iterations[0].optimizer_state_dtype' must be one of"},
      // Placement is one setting for every model of the run: top level only.
      {kMinimal + "iterations:\n  - {bf16: true}\n", "r.yaml:5: key 'iterations[0].bf16' belongs at the top level"},
      {kMinimal + "iterations:\n  - {}\n  - {device: cpu}\n", "r.yaml:6: key 'iterations[1].device' belongs at the top level"},
  };
  for (const Case& c : cases)
    EXPECT_NE(error_of([&] { parse_recipe(c.yaml, "r.yaml"); }).find(c.expected), std::string::npos)
        << c.yaml << "\n-> " << error_of([&] { parse_recipe(c.yaml, "r.yaml"); });
}

TEST(RecipeKeys, PlacementCombinesWithTheCommandLine) {
  const PlacementSettings none = parse_recipe(kMinimal, "r.yaml").placement;
  const PlacementSettings both = parse_recipe(kMinimal + "device: cuda\nbf16: true\n", "r.yaml").placement;
  // Neither: auto, from the default.
  RunPlacement p = resolve_placement(none, "auto", "auto");
  EXPECT_EQ(p.device, "auto");
  EXPECT_EQ(p.dtype, "auto");
  EXPECT_EQ(p.device_from, "default");
  // The recipe alone.
  p = resolve_placement(both, "auto", "");
  EXPECT_EQ(p.device, "cuda");
  EXPECT_EQ(p.device_from, "device: cuda at r.yaml:4");
  EXPECT_EQ(p.dtype, "bf16");
  EXPECT_EQ(p.dtype_from, "bf16: true at r.yaml:5");
  // The command line alone.
  p = resolve_placement(none, "cpu", "fp32");
  EXPECT_EQ(p.device, "cpu");
  EXPECT_EQ(p.dtype, "fp32");
  EXPECT_EQ(p.dtype_from, "--dtype");
  // Both: --device wins; --dtype must agree (in any spelling).
  p = resolve_placement(both, "cpu", "bfloat16");
  EXPECT_EQ(p.device, "cpu");
  EXPECT_EQ(p.device_from, "--device");
  EXPECT_EQ(p.dtype, "bf16");
  EXPECT_EQ(error_of([&] { resolve_placement(both, "cpu", "fp32"); }),
            "--dtype fp32 contradicts the recipe's bf16: true at r.yaml:5: give the dtype in one place, or the same "
            "in both");
  // A value only --dtype knows is left to the trainer's check (fp16: "training supports fp32 and bf16").
  EXPECT_EQ(resolve_placement(none, "auto", "float16").dtype, "fp16");
  // A device the recipe asks for and this build lacks: the error names the key and its line.
  if (!at::hasCUDA()) {
    EXPECT_EQ(error_of([&] { resolve_run_device(both, resolve_placement(both, "auto", "auto")); }),
              "r.yaml:4: key 'device' cuda: this spinlm was built against a libtorch without CUDA (--device overrides "
              "the recipe's device)");
    EXPECT_EQ(resolve_run_device(both, resolve_placement(both, "cpu", "auto")).device, at::Device(at::kCPU));
    EXPECT_NE(error_of([&] { resolve_run_device(none, resolve_placement(none, "cuda", "auto")); }).find("--device cuda: "),
              std::string::npos);
  }
}

TEST(RecipeKeys, UnknownKeySuggestsTheNearestKnownOne) {
  struct Case {
    std::string yaml, expected;
  };
  const std::vector<Case> cases = {
      {kMinimal + "learning_rat: 1e-5\n", "r.yaml:4: unknown key 'learning_rat'; did you mean 'learning_rate'?"},
      {kMinimal + "learnign_rate: 1e-5\n", "r.yaml:4: unknown key 'learnign_rate'; did you mean 'learning_rate'?"},
      {kMinimal + "gradient_checkpoint: true\n", "did you mean 'gradient_checkpointing'?"},
      {kMinimal + "save_step: 5\n", "did you mean 'save_steps'?"},
      {kMinimal + "torch_dype: bfloat16\n", "did you mean 'torch_dtype'?"},
      {kMinimal + "generation:\n  temprature: 0.7\n",
       "r.yaml:5: unknown key 'generation.temprature'; did you mean 'generation.temperature'?"},
      {kMinimal + "iterations:\n  - {bta: 0.2}\n", "r.yaml:5: unknown key 'iterations[0].bta'; did you mean 'iterations[0].beta'?"},
      {kMinimal + "evaluation:\n  exactmatch: true\n", "did you mean 'evaluation.exact_match'?"},
      // Nothing close: no guess, and no list of every key.
      {kMinimal + "iterations:\n  - {lr: 1}\n",
       "r.yaml:5: unknown key 'iterations[0].lr' (not a key here, nor close to one; `spinlm run --list-keys` "
       "lists them)"},
      {kMinimal + "colour: blue\n", "r.yaml:4: unknown key 'colour' (not a key here, nor close to one"},
  };
  for (const Case& c : cases) {
    const std::string error = error_of([&] { parse_recipe(c.yaml, "r.yaml"); });
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.yaml << "\n-> " << error;
    EXPECT_EQ(error.find("known here"), std::string::npos) << error;
    EXPECT_EQ(error.find("max_grad_norm"), std::string::npos) << error;  // no list of keys
  }
}

// ---------------------------------------------------------------- a run

// A random tiny byte-vocabulary model and 24 arithmetic problems (no held-out or test split:
// only training is compared).
struct RunFixture {
  std::string dir;
};

const RunFixture& run_fixture() {
  static const RunFixture f = [] {
    RunFixture f;
    f.dir = testkit::make_temp_dir("recipe-keys");
    const auto init = testkit::run_spinlm("init-model --arch llama --vocab byte --hidden-size 32 --intermediate-size 64 "
                                          "--layers 2 --heads 2 --seed 3 --out " + shell_quote(f.dir + "/model"));
    EXPECT_EQ(init.exit_code, 0) << init.output;
    write_arith_jsonl(f.dir + "/train.jsonl", make_arith_splits(11, {24, 0, 0}).train);
    return f;
  }();
  return f;
}

// One SPIN iteration of 12 steps (24 pairs, batch 2) and the control's SFT beside it, with
// the extra recipe lines.
std::string write_recipe(const std::string& name, const std::string& extra) {
  const std::string path = run_fixture().dir + "/" + name + ".yaml";
  write_file_atomic(path, "model_name_or_path: model\nseed: 5\nlearning_rate: 1.0e-3\nbeta: 0.1\n"
                          "num_train_epochs: 1\nper_device_train_batch_size: 2\nmax_length: 96\n"
                          "max_prompt_length: 64\nlogging_steps: 1\n"
                          "data: {train: train.jsonl}\ngeneration: {max_new_tokens: 12, batch_size: 8}\n"
                          "control: {enabled: true}\n" + extra);
  return path;
}

std::string run_args(const std::string& recipe, const std::string& out, bool resume) {
  return "run --threads 1 --config " + shell_quote(recipe) + " --output " + shell_quote(out) + (resume ? " --resume" : "");
}

// The step checkpoint (checkpoint-<step>/) a training folder's trainer_state.json points at
// (the pointer is written last, so the checkpoint is complete and a resume starts from it);
// "" when there is none.
std::string step_checkpoint(const std::string& model_dir) {
  const std::string pointer = model_dir + "/trainer_state.json";
  if (!file_exists(pointer)) return "";
  const json state = json::parse(read_file(pointer), nullptr, false);
  if (state.is_discarded() || !state.contains("latest")) return "";
  const std::string latest = state["latest"].get<std::string>();
  return latest.rfind("checkpoint-", 0) == 0 ? model_dir + "/" + latest : "";
}

// Starts `spinlm ARGS` with its output in log, kills it (SIGKILL) once ready() is true;
// true when that happened before the command ended on its own.
bool kill_when(const std::string& args, const std::string& log, const std::function<bool()>& ready) {
  return testkit::kill_when(args, log, ready, 300);
}

// Largest |a - b| over the parameters of two model folders.
double max_weight_difference(const std::string& a, const std::string& b) {
  const Transformer x = load_model(a), y = load_model(b);
  double worst = 0;
  for (const auto& [name, tensor] : x.named_parameters())
    worst = std::max(worst, (tensor - y.parameter(name)).abs().max().item<double>());
  return worst;
}

std::set<std::string> tensor_dtypes(const std::string& path) {
  std::set<std::string> dtypes;
  const SafetensorsFile file(path);
  for (const auto& [name, entry] : file.entries()) dtypes.insert(name == "step" ? "(step)" : entry.dtype);
  return dtypes;
}

TEST(RecipeKeysRun, GradientCheckpointingAndSaveStepsCheckpointInsideTheIterationAndKeepTheWeights) {
  const std::string dir = testkit::make_temp_dir("recipe-keys-run");
  // Without either key: the weights to compare with.
  const std::string plain = dir + "/plain";
  const auto reference = testkit::run_spinlm(run_args(write_recipe("plain", ""), plain, false));
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  EXPECT_EQ(reference.output.find("with gradient checkpointing"), std::string::npos) << reference.output;

  const std::string recipe = write_recipe("checkpointed", "gradient_checkpointing: true\nsave_steps: 2\n");
  const std::string out = dir + "/checkpointed";
  // 1. Killed inside SPIN's training once a step checkpoint is in place.
  std::string seen;
  ASSERT_TRUE(kill_when(run_args(recipe, out, false), dir + "/first.log", [&] {
    seen = step_checkpoint(out + "/iter_0/model");
    return !seen.empty();
  })) << read_file(dir + "/first.log");
  const std::string spin_checkpoint = step_checkpoint(out + "/iter_0/model");
  ASSERT_FALSE(spin_checkpoint.empty()) << "the step checkpoint " << seen << " is gone";
  for (const char* file : {"model.safetensors", "optimizer.safetensors", "config.json", "trainer_state.json"})
    EXPECT_TRUE(file_exists(spin_checkpoint + "/" + file)) << spin_checkpoint << "/" << file;
  const json spin_state = json::parse(read_file(spin_checkpoint + "/trainer_state.json"));
  const int64_t step = spin_state.at("global_step").get<int64_t>();
  EXPECT_EQ(step % 2, 0);
  EXPECT_LT(step, 12);
  EXPECT_EQ(fs::path(spin_checkpoint).filename().string(), "checkpoint-" + std::to_string(step));
  EXPECT_FALSE(file_exists(out + "/iter_0/model/model.safetensors")) << "the kill came after training";
  const json recipe_json = json::parse(read_file(out + "/recipe.json"));
  EXPECT_EQ(recipe_json["iterations"][0].at("gradient_checkpointing"), true);
  EXPECT_EQ(recipe_json["iterations"][0].at("save_steps"), 2);

  // 2. Resumed from it (with gradient checkpointing), killed inside the control's SFT.
  ASSERT_TRUE(kill_when(run_args(recipe, out, true), dir + "/second.log",
                        [&] { return !step_checkpoint(out + "/control/iter_0/model").empty(); }))
      << read_file(dir + "/second.log");
  const std::string second = read_file(dir + "/second.log");
  EXPECT_NE(second.find("resuming from " + spin_checkpoint + " at step " + std::to_string(step)), std::string::npos)
      << second;
  EXPECT_NE(second.find("with gradient checkpointing"), std::string::npos) << second;
  const std::string control_checkpoint = step_checkpoint(out + "/control/iter_0/model");
  ASSERT_FALSE(control_checkpoint.empty());
  EXPECT_TRUE(file_exists(control_checkpoint + "/optimizer.safetensors"));

  // 3. Resumed to the end: the control's SFT continues from its step checkpoint.
  const auto last = testkit::run_spinlm(run_args(recipe, out, true));
  ASSERT_EQ(last.exit_code, 0) << last.output;
  EXPECT_NE(last.output.find("resuming from " + out + "/control/iter_0/model/checkpoint-"), std::string::npos)
      << last.output;
  EXPECT_NE(last.output.find("with gradient checkpointing"), std::string::npos) << last.output;

  // Same weights as the run without gradient checkpointing, within fp32 rounding.
  EXPECT_LT(max_weight_difference(plain + "/iter_0/model", out + "/iter_0/model"), 1e-5);
  EXPECT_LT(max_weight_difference(plain + "/control/iter_0/model", out + "/control/iter_0/model"), 1e-5);
  // Training moved them (the comparison is not between two copies of the initial model).
  EXPECT_GT(max_weight_difference(run_fixture().dir + "/model", out + "/iter_0/model"), 1e-4);
}

TEST(RecipeKeysRun, Bf16AndOptimizerStateDtypeReachBothTrainers) {
  const std::string dir = testkit::make_temp_dir("recipe-keys-bf16");
  const std::string recipe = write_recipe("bf16", "device: cpu\nbf16: true\noptimizer_state_dtype: bfloat16\n"
                                                  "keep_checkpoints: true\n");
  const std::string out = dir + "/run";
  const auto result = testkit::run_spinlm(run_args(recipe, out, false));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(read_file(out + "/run.log").find("models on cpu in bf16"), std::string::npos);
  for (const std::string model : {out + "/iter_0/model", out + "/control/iter_0/model"}) {
    EXPECT_EQ(tensor_dtypes(model + "/model.safetensors"), std::set<std::string>{"BF16"}) << model;
    // bf16 state and no fp32 master copy (optimizer.h).
    EXPECT_EQ(tensor_dtypes(model + "/epoch-1/optimizer.safetensors"), (std::set<std::string>{"(step)", "BF16"}))
        << model;
    const json state = json::parse(read_file(model + "/epoch-1/trainer_state.json"));
    EXPECT_EQ(state.at("fingerprint").at("optimizer_state_dtype"), "bf16") << model;
  }
  // --dtype against the recipe's bf16: refused before the run folder is written.
  const auto contradicted = testkit::run_spinlm(run_args(recipe, dir + "/fp32", false) + " --dtype fp32");
  EXPECT_NE(contradicted.exit_code, 0);
  EXPECT_NE(contradicted.output.find("error: --dtype fp32 contradicts the recipe's bf16: true at " + recipe + ":14"),
            std::string::npos)
      << contradicted.output;
  EXPECT_FALSE(fs::exists(dir + "/fp32"));
}

// ---------------------------------------------------------------- run --check

TEST(RecipeCheck, PrintsTheResolvedSettingsAndTheMemoryEstimate) {
  const std::string recipe =
      write_recipe("check", "gradient_checkpointing: true\nsave_steps: 4\niterations:\n  - {}\n"
                            "  - {gradient_checkpointing: false, optimizer_state_dtype: bfloat16, mix_previous: true}\n");
  const auto r = testkit::run_spinlm("run --config " + shell_quote(recipe) + " --check --device cpu --dtype fp32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string& expected : std::vector<std::string>{
           recipe + ": valid recipe, 2 iterations; models on cpu in fp32", "device cpu (--device), dtype fp32 (--dtype)",
        "iter 0: rmsprop with fp32 state; gradient checkpointing on; batch 2 = 2 pairs per micro-batch x 1 "
        "accumulation steps, max_length 96; checkpoints at epoch ends and every 4 steps",
        "iter 1: rmsprop with bf16 state; gradient checkpointing off;",
        "peak memory per training process (estimate: src/train/memory_estimate.h)", "attention eager, 1 process:",
        "activations", "with gradient checkpointing", "peak", "under several processes",
        "reference log-probs: cached on the host, 1536 bytes for up to 48 pairs (no second model)"})
    EXPECT_NE(r.output.find(expected), std::string::npos) << expected << "\n---\n" << r.output;
  EXPECT_FALSE(fs::exists(run_fixture().dir + "/run"));
}

// The paper's recipe checks without its model (no estimate then); with a Mistral-7B
// config.json in place of the model folder, the estimate shows the 7B numbers.
TEST(RecipeCheck, ZephyrRecipeChecksAndEstimatesTheSevenBillionModel) {
  const std::string example = testkit::source_path("examples/zephyr-spin.yaml");
  const auto plain = testkit::run_spinlm("run --config " + shell_quote(example) + " --check");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_NE(plain.output.find("valid recipe, 4 iterations"), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("in bf16"), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("gradient checkpointing on"), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("rmsprop with bf16 state"), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("peak memory: no estimate"), std::string::npos) << plain.output;

  const std::string dir = testkit::make_temp_dir("zephyr-check");
  write_file_atomic(dir + "/zephyr-spin.yaml", read_file(example));
  fs::create_directories(dir + "/zephyr-7b-sft-full");
  write_file_atomic(dir + "/zephyr-7b-sft-full/config.json",
                    json{{"model_type", "mistral"}, {"vocab_size", 32000}, {"hidden_size", 4096},
                         {"intermediate_size", 14336}, {"num_hidden_layers", 32}, {"num_attention_heads", 32},
                         {"num_key_value_heads", 8}, {"max_position_embeddings", 32768}, {"rms_norm_eps", 1e-5},
                         {"rope_theta", 10000.0}, {"sliding_window", 4096}, {"tie_word_embeddings", false},
                         {"bos_token_id", 1}, {"eos_token_id", 2}, {"torch_dtype", "bfloat16"}}
                        .dump());
  const auto r = testkit::run_spinlm("run --config " + shell_quote(dir + "/zephyr-spin.yaml") + " --check");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // P = 7,241,732,096; bf16 weights and gradients and bf16 RMSprop state: 2P bytes each.
  for (const char* expected : {"7.24e+09 parameters", "iter 0-3: weights 13.49 GiB, gradients 13.49 GiB, optimizer "
                                                      "state 13.49 GiB, master weights 0.00 GiB"})
    EXPECT_NE(r.output.find(expected), std::string::npos) << expected << "\n---\n" << r.output;
}

}  // namespace
}  // namespace spinlm
