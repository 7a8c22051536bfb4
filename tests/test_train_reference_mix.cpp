// train/: `--reference-mix BASE:ALPHA` (the opponent is alpha * log p_base + (1 - alpha) *
// log p_t, Alami et al. 2024) on real tiny models, checked against the independent Python
// reference (tests/reference/spin_reference.py, which shares no code with spinlm):
// - both cached reference files hold each model's summed response log-probs;
// - the first step's loss and rewards are those of the mixed reference;
// - alpha = 0 trains to exactly the weights of a run without the option.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <tuple>

#include "core/atomic_file.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/hf_model.h"
#include "model/transformer.h"
#include "train/reference_logprobs.h"
#include "train/spin_trainer.h"
#include "testkit.h"

using namespace spinlm;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kVocab = testkit::kTinyVocab;
constexpr int64_t kEos = testkit::kTinyEos;

// A model folder with random weights large enough that predictions are far from uniform.
std::string save_random_model(const std::string& label, uint64_t seed) {
  Transformer model(testkit::tiny_llama_config());
  testkit::randomize_parameters(model, seed, 0.2);
  const std::string dir = testkit::make_temp_dir(label);
  save_model(model, dir);
  return dir;
}

// Pairs in the generation output format (ids), responses of different lengths.
std::string write_pairs(const std::string& dir, int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto ids = [&](int64_t n) {
    std::vector<int64_t> out;
    for (int64_t i = 0; i < n; ++i) out.push_back(3 + static_cast<int64_t>(rng() % (kVocab - 3)));
    return out;
  };
  std::vector<json> rows;
  for (int i = 0; i < count; ++i) {
    std::vector<int64_t> prompt = ids(3 + static_cast<int64_t>(rng() % 4));
    prompt.insert(prompt.begin(), 1);
    std::vector<int64_t> real = ids(2 + static_cast<int64_t>(rng() % 5));
    std::vector<int64_t> generated = ids(2 + static_cast<int64_t>(rng() % 5));
    generated.push_back(kEos);
    rows.push_back({{"prompt_ids", prompt}, {"real_ids", real}, {"generated_ids", generated}});
  }
  const std::string path = dir + "/pairs.jsonl";
  write_jsonl_atomic(path, rows);
  return path;
}

// The Python reference's summed response log-probs (real, generated) of every pair under the
// model in model_dir, and with reference log-probs ref_real/ref_generated its logistic loss
// and mean rewards ("loss", "rewards.real", "rewards.generated").
SafetensorsFile python_scores(const std::string& model_dir, const std::vector<TokenPair>& pairs,
                              const std::vector<double>& ref_real, const std::vector<double>& ref_generated,
                              double beta, const std::string& dir, const std::string& name) {
  json batch = {{"loss", "logistic"}, {"beta", beta}, {"sft_weight", 0.0}, {"pairs", json::array()}};
  for (size_t i = 0; i < pairs.size(); ++i) {
    batch["pairs"].push_back({{"prompt", pairs[i].prompt}, {"real", pairs[i].real},
                              {"generated", pairs[i].generated}, {"ref_real", ref_real[i]},
                              {"ref_generated", ref_generated[i]}});
  }
  const std::string input = dir + "/" + name + ".json", output = dir + "/" + name + ".safetensors";
  write_file_atomic(input, batch.dump());
  auto py = testkit::run_python_reference(
      "spin_reference.py", "--model " + testkit::shell_quote(model_dir) + " --input " +
                               testkit::shell_quote(input) + " --output " + testkit::shell_quote(output));
  EXPECT_EQ(py.exit_code, 0) << py.output;
  return SafetensorsFile(output);
}

std::vector<double> as_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

SpinTrainOptions options_for(const std::string& model, const std::string& data, const std::string& out) {
  SpinTrainOptions o;
  o.loop.model_dir = model;
  o.loop.output_dir = out;
  o.data_files = {data};
  o.loop.batch_size = 4;  // every pair in the first step, so its metrics are means over all pairs
  o.loop.micro_batch_size = 2;
  o.loop.epochs = 2;
  o.loop.logging_steps = 1;
  o.loop.learning_rate = 1e-3;
  o.loop.warmup_ratio = 0.0;
  o.beta = 0.5;
  o.truncation = {64, 32};
  return o;
}

}  // namespace

TEST(ReferenceMix, CachedLogprobsAndFirstStepMatchPython) {
  const std::string model = save_random_model("mix-model", 51);
  const std::string base = save_random_model("mix-base", 53);
  const std::string dir = testkit::make_temp_dir("mix");
  const std::string data = write_pairs(dir, 4, 55);
  const double alpha = 0.3;
  SpinTrainOptions o = options_for(model, data, dir + "/out");
  o.reference_mix = base + ":" + std::to_string(alpha);
  train_spin(o);

  // The pairs exactly as training sees them, and each model's log-probs from Python.
  std::vector<TokenPair> pairs = load_training_pairs({data}, nullptr, StopTokens::single(kEos), o.truncation, kVocab);
  ASSERT_EQ(pairs.size(), 4u);
  const std::vector<double> zeros(pairs.size(), 0.0);
  SafetensorsFile py_model = python_scores(model, pairs, zeros, zeros, o.beta, dir, "model");
  SafetensorsFile py_base = python_scores(base, pairs, zeros, zeros, o.beta, dir, "base");
  const std::vector<double> model_real = as_vector(py_model.tensor("logps.real", at::kDouble));
  const std::vector<double> model_gen = as_vector(py_model.tensor("logps.generated", at::kDouble));
  const std::vector<double> base_real = as_vector(py_base.tensor("logps.real", at::kDouble));
  const std::vector<double> base_gen = as_vector(py_base.tensor("logps.generated", at::kDouble));
  // The two models must disagree, or the mix would not be visible.
  ASSERT_GT(std::abs(model_real[0] - base_real[0]), 0.1);

  // Both caches exist under their keys (weights hash - pairs hash) and hold Python's numbers.
  const std::string pairs_key = hash_pairs(pairs, o.truncation);
  for (const auto& [folder, real, generated] :
       {std::make_tuple(model, model_real, model_gen), std::make_tuple(base, base_real, base_gen)}) {
    const std::string key = hash_model_weights(folder) + "-" + pairs_key;
    const std::string path = dir + "/out/reference_logprobs-" + key + ".json";
    ASSERT_TRUE(fs::exists(path)) << path;
    json cache = json::parse(read_file(path));
    EXPECT_EQ(cache["key"].get<std::string>(), key);
    for (size_t i = 0; i < pairs.size(); ++i) {
      EXPECT_NEAR(cache["real"][i].get<double>(), real[i], 1e-4) << folder << " pair " << i;
      EXPECT_NEAR(cache["generated"][i].get<double>(), generated[i], 1e-4) << folder << " pair " << i;
    }
  }

  // The first step (policy = the starting model) against Python with the mixed reference.
  std::vector<double> mix_real, mix_gen;
  for (size_t i = 0; i < pairs.size(); ++i) {
    mix_real.push_back(alpha * base_real[i] + (1 - alpha) * model_real[i]);
    mix_gen.push_back(alpha * base_gen[i] + (1 - alpha) * model_gen[i]);
  }
  SafetensorsFile py_mix = python_scores(model, pairs, mix_real, mix_gen, o.beta, dir, "mix");
  std::vector<json> metrics;
  for (auto& row : read_jsonl(dir + "/out/metrics.jsonl")) metrics.push_back(row.value);
  ASSERT_FALSE(metrics.empty());
  const json& first = metrics[0];
  const double want_loss = py_mix.tensor("loss", at::kDouble).item<double>();
  EXPECT_NEAR(first["loss"].get<double>(), want_loss, 1e-5);
  EXPECT_GT(std::abs(want_loss - std::log(2.0)), 1e-3);  // not the unmixed first step's ln 2
  EXPECT_NEAR(first["rewards/real"].get<double>(),
              py_mix.tensor("rewards.real", at::kDouble).mean().item<double>(), 1e-5);
  EXPECT_NEAR(first["rewards/generated"].get<double>(),
              py_mix.tensor("rewards.generated", at::kDouble).mean().item<double>(), 1e-5);
}

TEST(ReferenceMix, AlphaZeroTrainsLikeNoMix) {
  const std::string model = save_random_model("mix0-model", 61);
  const std::string base = save_random_model("mix0-base", 63);
  const std::string dir = testkit::make_temp_dir("mix0");
  const std::string data = write_pairs(dir, 6, 65);
  train_spin(options_for(model, data, dir + "/plain"));
  SpinTrainOptions o = options_for(model, data, dir + "/mixed");
  o.reference_mix = base + ":0";
  train_spin(o);
  SafetensorsFolder plain(dir + "/plain"), mixed(dir + "/mixed");
  SafetensorsFolder start(model);
  int changed = 0;
  for (const std::string& name : plain.names()) {
    EXPECT_TRUE(at::equal(plain.tensor(name), mixed.tensor(name))) << name;
    changed += !at::equal(plain.tensor(name), start.tensor(name));
  }
  EXPECT_GT(changed, 0);  // training moved the weights, so the equality says something
  // The base model was scored (its cache exists) even though alpha = 0 gives it no weight.
  int caches = 0;
  for (auto& e : fs::directory_iterator(dir + "/mixed")) {
    caches += e.path().filename().string().rfind("reference_logprobs-", 0) == 0;
  }
  EXPECT_EQ(caches, 2);
}
