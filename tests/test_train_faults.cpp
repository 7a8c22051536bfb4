// train/: faults inside a training run, on the real loop (run_train_loop) with a tiny model
// and a loss made from the data: a batch poisoned with NaN or infinity stops the run with the
// last good checkpoint kept as it was (the same bytes a clean run saved there), and --resume
// on clean data then reaches the clean run's weights; a latest checkpoint cut short is named
// and the newest whole one is resumed from, or, without one, the error says what to delete.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/transformer.h"
#include "testkit.h"
#include "train/train_loop.h"

using namespace spinlm;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kExamples = 8;

Transformer tiny_model() {
  json config = {{"model_type", "llama"},    {"vocab_size", 16},       {"hidden_size", 8},
                 {"intermediate_size", 16},  {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                 {"num_key_value_heads", 1}, {"rms_norm_eps", 1e-5},   {"rope_theta", 10000.0},
                 {"bos_token_id", 1},        {"eos_token_id", 2},      {"tie_word_embeddings", false},
                 {"max_position_embeddings", 32}};
  Transformer model(ModelConfig::from_json(config, "test config.json"));
  testkit::randomize_parameters(model, 7, 0.2);
  return model;
}

// Example i's value; `poisoned` (when >= 0) is replaced by `poison`.
struct Data {
  int64_t poisoned = -1;
  double poison = 0.0;
  double value(int64_t i) const { return i == poisoned ? poison : 0.5 + 0.1 * static_cast<double>(i); }
};

// Each example pulls every parameter towards its value: loss_i = mean((p - x_i)^2) summed
// over the parameters, divided by the batch size so micro-batches add up to the batch mean.
TrainLoopHooks hooks_for(Transformer& model, const Data& data) {
  TrainLoopHooks hooks;
  hooks.num_examples = kExamples;
  hooks.lengths.assign(kExamples, 4);
  hooks.micro_step = [&model, &data](const std::vector<int64_t>& micro, const std::vector<int64_t>& batch) {
    at::Tensor loss = at::zeros({}, at::kDouble);
    for (int64_t i : micro)
      for (const at::Tensor& p : model.parameters())
        loss = loss + (p.to(at::kDouble) - data.value(i)).square().mean();
    loss = loss / static_cast<double>(batch.size());
    loss.backward();
    return MetricMap{{"loss", loss.item<double>()}, {"tokens", 4.0 * static_cast<double>(micro.size())}};
  };
  return hooks;
}

TrainLoopOptions options_for(const std::string& out, int64_t epochs, int64_t save_steps) {
  TrainLoopOptions o;
  o.output_dir = out;
  o.learning_rate = 1e-2;
  o.optimizer.kind = "adamw";
  o.warmup_ratio = 0.0;
  o.epochs = epochs;
  o.batch_size = 2;  // 4 steps an epoch
  o.micro_batch_size = 1;
  o.logging_steps = 1;
  o.save_steps = save_steps;
  return o;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

void expect_same_weights(const std::string& a_dir, const std::string& b_dir) {
  SafetensorsFolder a(a_dir), b(b_dir);
  ASSERT_EQ(a.names(), b.names());
  for (const std::string& name : a.names()) EXPECT_TRUE(at::equal(a.tensor(name), b.tensor(name))) << name;
}

std::string latest_of(const std::string& out) {
  return read_json_file(out + "/trainer_state.json").at("latest").get<std::string>();
}

void cut_in_half(const std::string& path) { fs::resize_file(path, fs::file_size(path) / 2); }

// The example the given step (1-based) trains on first: epoch e's order is seeded, so the
// clean run's metrics cannot tell it; a run with only that example poisoned shows it.
int64_t an_example_of_step(int64_t step, const std::string& scratch) {
  for (int64_t i = 0; i < kExamples; ++i) {
    Data data{i, std::numeric_limits<double>::quiet_NaN()};
    Transformer model = tiny_model();
    const std::string out = scratch + "/probe-" + std::to_string(i);
    const std::string message = error_of([&] { run_train_loop(model, options_for(out, 1, 0), hooks_for(model, data)); });
    if (message.find("step " + std::to_string(step) + " ") != std::string::npos) return i;
  }
  return -1;
}

}  // namespace

TEST(TrainFaults, PoisonedBatchStopsAndKeepsTheLastGoodCheckpoint) {
  const std::string dir = testkit::make_temp_dir("train-poison");
  // The clean run, and the same run stopped after 2 steps (its checkpoint-2).
  {
    Transformer model = tiny_model();
    Data clean;
    run_train_loop(model, options_for(dir + "/clean", 1, 2), hooks_for(model, clean));
    Transformer stopped = tiny_model();
    TrainLoopOptions o = options_for(dir + "/clean-2", 1, 2);
    o.stop_after_steps = 2;
    run_train_loop(stopped, o, hooks_for(stopped, clean));
  }
  const int64_t third_step_example = an_example_of_step(3, dir);
  ASSERT_GE(third_step_example, 0);

  for (double poison : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE(poison);
    const std::string out = dir + "/poisoned-" + (std::isnan(poison) ? "nan" : "inf");
    Data data{third_step_example, poison};
    Transformer model = tiny_model();
    TrainLoopOptions o = options_for(out, 1, 2);
    const std::string message = error_of([&] { run_train_loop(model, o, hooks_for(model, data)); });
    EXPECT_NE(message.find("step 3 (epoch 1)"), std::string::npos) << message;
    EXPECT_NE(message.find(std::isnan(poison) ? "the loss is nan" : "the loss is inf"), std::string::npos) << message;
    EXPECT_NE(message.find("The last good checkpoint is kept (" + out + "/checkpoint-2)"), std::string::npos) << message;

    // checkpoint-2 is what the clean run saved there, byte for byte, and nothing came after it.
    EXPECT_EQ(latest_of(out), "checkpoint-2");
    EXPECT_EQ(read_file(out + "/checkpoint-2/model.safetensors"), read_file(dir + "/clean-2/checkpoint-2/model.safetensors"));
    EXPECT_EQ(read_file(out + "/checkpoint-2/optimizer.safetensors"),
              read_file(dir + "/clean-2/checkpoint-2/optimizer.safetensors"));
    EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
    for (const auto& entry : fs::directory_iterator(out))
      EXPECT_TRUE(entry.path().filename() == "checkpoint-2" || !entry.is_directory()) << entry.path();
    std::vector<JsonlRow> metrics = read_jsonl(out + "/metrics.jsonl");
    EXPECT_EQ(metrics.size(), 2u);
    for (const JsonlRow& row : metrics) EXPECT_TRUE(std::isfinite(row.value.at("loss").get<double>())) << row.value;

    // With the batch repaired, --resume reaches the clean run's weights.
    Data repaired;
    Transformer resumed = tiny_model();
    o.resume = true;
    run_train_loop(resumed, o, hooks_for(resumed, repaired));
    expect_same_weights(out, dir + "/clean");
  }
}

TEST(TrainFaults, CutLatestCheckpointFallsBackToTheNewestWholeOne) {
  const std::string dir = testkit::make_temp_dir("train-cut-checkpoint");
  Data clean;
  {
    Transformer model = tiny_model();
    run_train_loop(model, options_for(dir + "/straight", 2, 3), hooks_for(model, clean));
  }
  // 2 epochs of 4 steps, a checkpoint every 3: checkpoint-3, epoch-1 (step 4), checkpoint-6;
  // killed after step 6, when checkpoint-6 is the latest and epoch-1 the one before it.
  for (const std::string damaged : {"model.safetensors", "optimizer.safetensors", "trainer_state.json"}) {
    SCOPED_TRACE(damaged);
    const std::string out = dir + "/cut-" + damaged;
    TrainLoopOptions o = options_for(out, 2, 3);
    o.stop_after_steps = 6;
    {
      Transformer model = tiny_model();
      run_train_loop(model, o, hooks_for(model, clean));
    }
    ASSERT_EQ(latest_of(out), "checkpoint-6");
    ASSERT_TRUE(fs::exists(out + "/epoch-1"));
    cut_in_half(out + "/checkpoint-6/" + damaged);

    o.stop_after_steps = 0;
    o.resume = true;
    Transformer model = tiny_model();
    testing::internal::CaptureStderr();
    run_train_loop(model, o, hooks_for(model, clean));
    const std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("the latest checkpoint " + out + "/checkpoint-6 is damaged"), std::string::npos) << log;
    EXPECT_NE(log.find(out + "/checkpoint-6/" + damaged), std::string::npos) << log;
    EXPECT_NE(log.find("resuming from " + out + "/epoch-1 (step 4)"), std::string::npos) << log;
    expect_same_weights(out, dir + "/straight");
    EXPECT_EQ(read_jsonl(out + "/metrics.jsonl").size(), read_jsonl(dir + "/straight/metrics.jsonl").size());
  }
}

TEST(TrainFaults, CutOnlyCheckpointSaysWhatToDelete) {
  const std::string out = testkit::make_temp_dir("train-cut-only") + "/out";
  Data clean;
  TrainLoopOptions o = options_for(out, 1, 2);
  o.stop_after_steps = 3;
  {
    Transformer model = tiny_model();
    run_train_loop(model, o, hooks_for(model, clean));
  }
  ASSERT_EQ(latest_of(out), "checkpoint-2");
  cut_in_half(out + "/checkpoint-2/model.safetensors");
  o.resume = true;
  o.stop_after_steps = 0;
  Transformer model = tiny_model();
  const std::string message = error_of([&] { run_train_loop(model, o, hooks_for(model, clean)); });
  EXPECT_NE(message.find(out + "/checkpoint-2/model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("delete " + out + "/checkpoint-2 and " + out + "/trainer_state.json"), std::string::npos)
      << message;
  // Doing so trains from the beginning.
  fs::remove_all(out + "/checkpoint-2");
  fs::remove(out + "/trainer_state.json");
  Transformer again = tiny_model();
  EXPECT_EQ(run_train_loop(again, o, hooks_for(again, clean)).steps, 4);
}
