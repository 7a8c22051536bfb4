// `spinlm run` with LoRA (use_peft): each iteration trains a fresh adapter on p_t, keeps it in
// iter_T/adapter/ (a PEFT folder), and iter_T/model/ is p_{t+1} = p_t with the adapter merged;
// a run killed in generation, in training, or between training and evaluation, and resumed,
// ends with the files of an uninterrupted run. With save_merged: false only the adapters are
// written and the run computes the same; a run may start from an adapter folder; the control
// trains an adapter too.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>

#include "core/atomic_file.h"
#include "io/json_text.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/hf_model.h"
#include "model/lora.h"
#include "testkit.h"
#include "testkit_data.h"
#include "testkit_process.h"

namespace spinlm {
namespace {

namespace fs = std::filesystem;
using testkit::shell_quote;

struct Fixture {
  std::string dir, recipe;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture f;
    f.dir = testkit::make_temp_dir("lora-run");
    const auto init = testkit::run_spinlm("init-model --arch llama --vocab byte --hidden-size 32 --intermediate-size 64 "
                                          "--layers 2 --heads 2 --seed 3 --out " + shell_quote(f.dir + "/model"));
    EXPECT_EQ(init.exit_code, 0) << init.output;
    testkit::write_arith_split_files(f.dir, 9, {24, 8, 8});
    f.recipe = f.dir + "/recipe.yaml";
    write_file_atomic(f.recipe, R"(model_name_or_path: model
seed: 5
learning_rate: 1.0e-2
optim: adamw
beta: 0.1
num_train_epochs: 2
per_device_train_batch_size: 4
gradient_accumulation_steps: 2
max_length: 160
max_prompt_length: 120
logging_steps: 1
use_peft: true
lora_r: 4
lora_alpha: 8
lora_dropout: 0.1
lora_target_modules: all-linear
data: {train: train.jsonl, heldout: heldout.jsonl, test: test.jsonl}
generation: {max_new_tokens: 24, batch_size: 1}
evaluation: {max_new_tokens: 16}
iterations:
  - {}
  - {mix_previous: true, lora_target_modules: [q_proj, v_proj], use_rslora: true}
)");
    return f;
  }();
  return f;
}

std::string run_args(const std::string& recipe, const std::string& out, bool resume) {
  return "run --threads 1 --config " + shell_quote(recipe) + " --output " + shell_quote(out) +
         (resume ? " --resume" : "");
}
std::string run_args(const std::string& out, bool resume) { return run_args(fixture().recipe, out, resume); }

// A recipe of the fixture's folder: the fixture's text with `lines` put in front (top-level
// keys) and each (from, to) replaced.
std::string variant(const std::string& name, const std::string& lines,
                    const std::vector<std::pair<std::string, std::string>>& edits = {}) {
  std::string text = read_file(fixture().recipe);
  for (const auto& [from, to] : edits) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
  }
  const std::string path = fixture().dir + "/" + name + ".yaml";
  write_file_atomic(path, lines + text);
  return path;
}

std::string finished_run(const std::string& label, const std::string& recipe) {
  const std::string out = testkit::make_temp_dir(label) + "/run";
  const auto result = testkit::run_spinlm(run_args(recipe, out, false));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return out;
}

const std::string& reference_run() {
  static const std::string out = finished_run("lora-run-ref", fixture().recipe);
  return out;
}

// The same run with save_merged: false (only the adapters are written).
const std::string& unmerged_recipe() {
  static const std::string path = variant("unmerged", "save_merged: false\n");
  return path;
}
const std::string& unmerged_run() {
  static const std::string out = finished_run("lora-run-unmerged", unmerged_recipe());
  return out;
}

// Every file of a run folder (metrics without their timing field; the log and the report,
// which hold times, left out; the run folder's own path, which adapter_config.json names
// as base_model_name_or_path from iteration 1 on, written as RUN).
std::map<std::string, std::string> run_files(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string rel = fs::relative(entry.path(), dir).string();
    const std::string name = entry.path().filename().string();
    if (name == "run.log" || name == "report.html") continue;
    std::string content = read_file(entry.path().string());
    if (name == "adapter_config.json") {
      // The base an adapter names depends on save_merged (p_t's folder, or p_0's): compared apart.
      nlohmann::json config = nlohmann::json::parse(content);
      config.erase("base_model_name_or_path");
      content = config.dump();
    }
    for (size_t at = content.find(dir); at != std::string::npos; at = content.find(dir, at))
      content.replace(at, dir.size(), "RUN");
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

bool state_has(const std::string& out, const std::string& step) {
  try {
    const nlohmann::json state = nlohmann::json::parse(read_file(out + "/state.json"));
    for (const auto& s : state.at("steps"))
      if (s == step) return true;
  } catch (...) {
  }
  return false;
}

void resume_and_compare(const std::string& out, const std::string& recipe, const std::string& reference) {
  const auto result = testkit::run_spinlm(run_args(recipe, out, true));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto expected = run_files(reference);
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

void resume_and_compare(const std::string& out) { resume_and_compare(out, fixture().recipe, reference_run()); }

bool kill_when(const std::string& out, const std::function<bool()>& ready,
               const std::string& recipe = fixture().recipe) {
  return testkit::kill_when(run_args(recipe, out, false), "/dev/null", ready, 120);
}

// The tensors of a model folder.
std::map<std::string, at::Tensor> weights(const std::string& dir) {
  std::map<std::string, at::Tensor> out;
  SafetensorsFolder folder(dir);
  for (const std::string& name : folder.names()) out[name] = folder.tensor(name);
  return out;
}

}  // namespace

// The adapters are PEFT folders on p_t, and p_{t+1} is exactly p_t with iteration t's adapter
// merged (rebuilt here from the files: base + adapter 0 = iter_0/model, iter_0/model +
// adapter 1 = iter_1/model).
TEST(LoraRun, IterationsKeepAdaptersAndMergeThem) {
  const std::string& out = reference_run();
  for (const char* file : {"iter_0/adapter/adapter_config.json", "iter_0/adapter/adapter_model.safetensors",
                           "iter_1/adapter/adapter_model.safetensors", "iter_0/model/model.safetensors",
                           "iter_1/model/model.safetensors", "iter_1/eval.json", "iter_1/metrics.jsonl"})
    EXPECT_TRUE(file_exists(out + "/" + file)) << file;
  const nlohmann::json second = read_json_file(out + "/iter_1/adapter/adapter_config.json");
  EXPECT_EQ(second["use_rslora"], true);
  EXPECT_EQ(second["target_modules"], nlohmann::json::array({"q_proj", "v_proj"}));
  // The first logged loss of each iteration is ln 2: the fresh adapter starts at p_t = reference.
  for (const char* it : {"iter_0", "iter_1"}) {
    const auto rows = read_jsonl(out + "/" + it + "/metrics.jsonl");
    ASSERT_FALSE(rows.empty());
    EXPECT_NEAR(rows[0].value["loss"].get<double>(), std::log(2.0), 1e-6) << it;
  }
  std::string previous = fixture().dir + "/model";
  for (const char* it : {"iter_0", "iter_1"}) {
    Transformer p = load_model(previous);
    merge_lora(p, *load_lora_adapter(out + "/" + it + "/adapter", p.config()));
    SafetensorsFolder saved(out + "/" + it + "/model");
    for (const auto& [name, tensor] : p.named_parameters()) EXPECT_TRUE(at::equal(saved.tensor(name), tensor)) << it << " " << name;
    previous = out + "/" + it + "/model";
  }
  // The trained adapter moved the model.
  EXPECT_NE(read_file(out + "/iter_0/model/model.safetensors"), read_file(fixture().dir + "/model/model.safetensors"));
}

TEST(LoraRun, KilledDuringGenerationResumesToTheSameFiles) {
  reference_run();
  const std::string out = testkit::make_temp_dir("lora-run-kill-gen") + "/run";
  const std::string partial = out + "/iter_1/pairs.jsonl.partial";
  ASSERT_TRUE(kill_when(out, [&] { return file_exists(partial) && read_file(partial).find('\n') != std::string::npos; }));
  ASSERT_FALSE(file_exists(out + "/iter_1/pairs.jsonl")) << "the kill came after generation";
  resume_and_compare(out);
}

TEST(LoraRun, KilledDuringTrainingResumesToTheSameFiles) {
  reference_run();
  const std::string out = testkit::make_temp_dir("lora-run-kill-train") + "/run";
  ASSERT_TRUE(kill_when(out, [&] { return fs::exists(out + "/iter_1/adapter/epoch-1"); }));
  ASSERT_FALSE(state_has(out, "iter_1/train")) << "the kill came after training";
  resume_and_compare(out);
}

TEST(LoraRun, KilledBeforeEvaluationResumesToTheSameFiles) {
  reference_run();
  const std::string out = testkit::make_temp_dir("lora-run-kill-eval") + "/run";
  ASSERT_TRUE(kill_when(out, [&] { return state_has(out, "iter_0/train"); }));
  ASSERT_FALSE(state_has(out, "iter_0/eval")) << "the kill came after evaluation";
  resume_and_compare(out);
}

}  // namespace spinlm

namespace spinlm {

// A target module the model does not have stops the run before any work, naming it.
TEST(LoraRun, UnknownTargetModuleIsRefusedBeforeAnyWork) {
  const std::string dir = testkit::make_temp_dir("lora-run-bad");
  std::string recipe = read_file(fixture().recipe);
  recipe.replace(recipe.find("lora_target_modules: all-linear"), 31, "lora_target_modules: [q_proj, qkv_proj]");
  write_file_atomic(fixture().dir + "/bad.yaml", recipe);
  const auto result = testkit::run_spinlm("run --config " + shell_quote(fixture().dir + "/bad.yaml") + " --output " +
                                          shell_quote(dir + "/run"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("\"qkv_proj\""), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(dir + "/run/iter_0"));
}

}  // namespace spinlm

namespace spinlm {

// save_merged: false writes iter_T/adapter/ only; every other file equals the merged run's (the
// model in memory is the same), and `spinlm merge` of p_0 with the adapters in order gives the
// merged run's iter_1/model bit for bit.
TEST(LoraRun, UnmergedRunKeepsAdaptersOnlyAndComputesTheSame) {
  auto merged = run_files(reference_run());
  auto unmerged = run_files(unmerged_run());
  // The reference log-prob caches are named by the model's key (p_1's folder, or p_0 and
  // iter_0's adapter), which the trainer's states hold too: compared without the key.
  for (auto* files : {&merged, &unmerged}) {
    std::map<std::string, std::string> renamed;
    for (auto it = files->begin(); it != files->end();) {
      if (it->first.size() > 18 && it->first.compare(it->first.size() - 18, 18, "trainer_state.json") == 0) {
        nlohmann::json state = nlohmann::json::parse(it->second);
        if (state.contains("fingerprint")) state["fingerprint"].erase("model_hash");
        it->second = state.dump();
      }
      const size_t at = it->first.find("/reference_logprobs-");
      if (at == std::string::npos) {
        ++it;
        continue;
      }
      nlohmann::json cache = nlohmann::json::parse(it->second);
      cache.erase("key");
      renamed[it->first.substr(0, at) + "/reference_logprobs.json"] = cache.dump();
      it = files->erase(it);
    }
    files->insert(renamed.begin(), renamed.end());
  }
  for (const auto& [path, content] : merged) {
    if (path == "state.json" || path == "recipe.json") continue;  // the recipe, which differs in save_merged
    const bool model_file = path.rfind("iter_0/model/", 0) == 0 || path.rfind("iter_1/model/", 0) == 0;
    const auto it = unmerged.find(path);
    if (model_file) {
      EXPECT_TRUE(it == unmerged.end()) << "written with save_merged false: " << path;
      continue;
    }
    if (it == unmerged.end()) {
      ADD_FAILURE() << "missing with save_merged false: " << path;
      continue;
    }
    EXPECT_TRUE(it->second == content) << "differs with save_merged false: " << path;
  }
  for (const auto& [path, content] : unmerged) EXPECT_TRUE(merged.count(path)) << "extra file: " << path;
  const nlohmann::json second = read_json_file(unmerged_run() + "/iter_1/adapter/adapter_config.json");
  EXPECT_EQ(second["base_model_name_or_path"], fixture().dir + "/model");

  const std::string out = testkit::make_temp_dir("lora-run-merge") + "/p2";
  const auto merge = testkit::run_spinlm("merge --model " + shell_quote(fixture().dir + "/model") + " --adapter " +
                                         shell_quote(unmerged_run() + "/iter_0/adapter") + " --adapter " +
                                         shell_quote(unmerged_run() + "/iter_1/adapter") + " --output " +
                                         shell_quote(out));
  ASSERT_EQ(merge.exit_code, 0) << merge.output;
  const auto expected = weights(reference_run() + "/iter_1/model");
  const auto got = weights(out);
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [name, tensor] : expected) EXPECT_TRUE(at::equal(got.at(name), tensor)) << name;
}

// Resumed in iteration 1's training, an unmerged run rebuilds p_1 from p_0 and iter_0's
// adapter and ends with the uninterrupted run's files.
TEST(LoraRun, UnmergedRunKilledDuringTrainingResumesToTheSameFiles) {
  unmerged_run();
  const std::string out = testkit::make_temp_dir("lora-run-unmerged-kill") + "/run";
  ASSERT_TRUE(kill_when(out, [&] { return fs::exists(out + "/iter_1/adapter/epoch-1"); }, unmerged_recipe()));
  ASSERT_FALSE(state_has(out, "iter_1/train")) << "the kill came after training";
  resume_and_compare(out, unmerged_recipe(), unmerged_run());
  EXPECT_FALSE(fs::exists(out + "/iter_0/model"));
}

// model_name_or_path may name an adapter folder (alignment-handbook's convention): p_0 is its
// base_model_name_or_path with it merged, so a run from iter_0/adapter computes what a run
// from the merged iter_0/model computes.
TEST(LoraRun, AdapterFolderAsTheStartingModelEqualsItsMergedFolder) {
  const std::vector<std::pair<std::string, std::string>> one_iteration = {
      {"  - {}\n  - {mix_previous: true,", "  - {"}};
  const std::string from_adapter = finished_run(
      "lora-run-from-adapter",
      variant("from-adapter", "", {{"model_name_or_path: model", "model_name_or_path: " + reference_run() + "/iter_0/adapter"},
                                   one_iteration[0]}));
  const std::string from_merged = finished_run(
      "lora-run-from-merged",
      variant("from-merged", "", {{"model_name_or_path: model", "model_name_or_path: " + reference_run() + "/iter_0/model"},
                                  one_iteration[0]}));
  for (const char* file : {"sft_eval.json", "iter_0/pairs.jsonl", "iter_0/heldout_pairs.jsonl", "iter_0/eval.json",
                           "iter_0/test_generations.jsonl"})
    EXPECT_EQ(read_file(from_adapter + "/" + file), read_file(from_merged + "/" + file)) << file;
  const auto a = weights(from_adapter + "/iter_0/model"), b = weights(from_merged + "/iter_0/model");
  for (const auto& [name, tensor] : b) EXPECT_TRUE(at::equal(a.at(name), tensor)) << name;
  // The base the adapter names must be a model folder.
  const std::string broken = testkit::make_temp_dir("lora-run-broken-base");
  nlohmann::json config = read_json_file(reference_run() + "/iter_0/adapter/adapter_config.json");
  config["base_model_name_or_path"] = broken + "/nowhere";
  write_file_atomic(broken + "/adapter_config.json", config.dump());
  const auto refused = testkit::run_spinlm(
      run_args(variant("broken-base", "", {{"model_name_or_path: model", "model_name_or_path: " + broken}}),
               broken + "/run", false));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("base_model_name_or_path"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("broken-base.yaml"), std::string::npos) << refused.output;
}

// With use_peft the control trains an adapter of the same shape on its own model (the same
// trainable parameters as SPIN), and its merged model is that model with the adapter added.
TEST(LoraRun, ControlTrainsAnAdapterToo) {
  const std::string out = finished_run(
      "lora-run-control", variant("control", "control: {enabled: true}\n", {{"  - {}\n  - {mix_previous: true,", "  - {"}}));
  for (const char* file : {"control/iter_0/adapter/adapter_config.json", "control/iter_0/adapter/adapter_model.safetensors",
                           "control/iter_0/model/model.safetensors", "control/iter_0/eval.json", "iter_0/vs_control.json"})
    EXPECT_TRUE(file_exists(out + "/" + file)) << file;
  const nlohmann::json config = read_json_file(out + "/control/iter_0/adapter/adapter_config.json");
  EXPECT_EQ(config["target_modules"], nlohmann::json::array({"q_proj", "v_proj"}));
  EXPECT_EQ(config["use_rslora"], true);
  Transformer p = load_model(fixture().dir + "/model");
  merge_lora(p, *load_lora_adapter(out + "/control/iter_0/adapter", p.config()));
  const auto saved = weights(out + "/control/iter_0/model");
  for (const auto& [name, tensor] : p.named_parameters()) EXPECT_TRUE(at::equal(saved.at(name), tensor)) << name;
  EXPECT_NE(read_file(out + "/control/iter_0/model/model.safetensors"),
            read_file(fixture().dir + "/model/model.safetensors"));
}

}  // namespace spinlm
