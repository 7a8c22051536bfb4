// Disk full and write errors (tests/faults/write_fault.cpp, loaded with LD_PRELOAD): a write
// that fails while spinlm saves a checkpoint, a generated row, an evaluation or a model gives
// an error naming the file and a non-zero exit, leaves every earlier file as it was, and once
// space returns the same command (with --resume) completes with the result of a run that
// never failed.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "core/atomic_file.h"
#include "data/arith_task.h"
#include "io/jsonl.h"
#include "model/hf_model.h"
#include "testkit.h"
#include "testkit_data.h"

namespace spinlm {
namespace {

using json = nlohmann::json;
using testkit::shell_quote;
namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// `spinlm ARGS` with writes to files whose path contains `pattern` failing with errno.
testkit::CommandResult run_with_fault(const std::string& pattern, const std::string& args, int error = 28) {
  return testkit::run_command("env LD_PRELOAD=" + shell_quote(SPINLM_WRITE_FAULT) + " SPINLM_FAULT_PATH=" +
                              shell_quote(pattern) + " SPINLM_FAULT_ERRNO=" + std::to_string(error) + " " +
                              shell_quote(testkit::spinlm_binary()) + " " + args + " 2>&1");
}

// Every file under dir with its bytes.
std::map<std::string, std::string> files_of(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) files[fs::relative(entry.path(), dir).string()] = read_file(entry.path().string());
  return files;
}

class Faults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testkit::make_temp_dir("faults");
    const auto made = testkit::run_spinlm("init-model --arch llama --hidden-size 32 --intermediate-size 64 --layers 2 "
                                          "--heads 4 --kv-heads 2 --vocab byte --seed 5 --out " +
                                          shell_quote(dir_ + "/model"));
    ASSERT_EQ(made.exit_code, 0) << made.output;
    std::vector<json> pairs;
    for (int i = 0; i < 8; ++i) {
      json user = {{"role", "user"}, {"content", "q" + std::to_string(i)}};
      pairs.push_back({{"real", {user, {{"role", "assistant"}, {"content", "real " + std::to_string(i)}}}},
                       {"generated", {user, {{"role", "assistant"}, {"content", "gen " + std::to_string(i * 3)}}}}});
    }
    write_jsonl_atomic(dir_ + "/pairs.jsonl", pairs);
  }
  static std::string train_args(const std::string& out) {
    return "train --threads 1 --model " + shell_quote(dir_ + "/model") + " --data " + shell_quote(dir_ + "/pairs.jsonl") +
           " --output " + shell_quote(out) + " --batch-size 2 --epochs 3 --learning-rate 1e-3 --optimizer adamw";
  }
  static std::string dir_;
};
std::string Faults::dir_;

TEST_F(Faults, FullDiskDuringACheckpointNamesTheFileKeepsTheEarlierOnesAndResumeCompletes) {
  const std::string whole = dir_ + "/train-whole", out = dir_ + "/train-full";
  ASSERT_EQ(testkit::run_spinlm(train_args(whole)).exit_code, 0);
  // The first epoch's checkpoint is written, the second's hits a full disk.
  const auto failed = run_with_fault("epoch-2", train_args(out));
  EXPECT_NE(failed.exit_code, 0) << failed.output;
  EXPECT_TRUE(contains(failed.output, "error: " + out + "/.tmp-epoch-2/")) << failed.output;
  EXPECT_TRUE(contains(failed.output, "No space left on device")) << failed.output;
  const auto before = files_of(out + "/epoch-1");
  EXPECT_FALSE(before.empty());
  for (const auto& [path, bytes] : files_of(out)) EXPECT_FALSE(contains(path, ".tmp")) << "debris: " << path;
  // Space returns: --resume continues from epoch 1 and reaches the uninterrupted weights.
  const auto resumed = testkit::run_spinlm(train_args(out) + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "epoch-1")) << resumed.output;
  EXPECT_EQ(read_file(out + "/model.safetensors"), read_file(whole + "/model.safetensors"));
}

TEST_F(Faults, WriteErrorOnTheFinalModelNamesItAndResumeWritesIt) {
  const std::string whole = dir_ + "/train-whole-2", out = dir_ + "/train-eio";
  ASSERT_EQ(testkit::run_spinlm(train_args(whole)).exit_code, 0);
  const auto failed = run_with_fault(out + "/model.safetensors", train_args(out), 5 /* EIO */);
  EXPECT_NE(failed.exit_code, 0) << failed.output;
  EXPECT_TRUE(contains(failed.output, out + "/model.safetensors")) << failed.output;
  EXPECT_TRUE(contains(failed.output, "Input/output error")) << failed.output;
  EXPECT_FALSE(file_exists(out + "/model.safetensors"));
  const auto resumed = testkit::run_spinlm(train_args(out) + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(read_file(out + "/model.safetensors"), read_file(whole + "/model.safetensors"));
}

TEST_F(Faults, FullDiskInARunNamesTheFileAndResumeEndsAsTheRunThatNeverFailed) {
  testkit::write_arith_split_files(dir_, 4, {10, 6, 6});
  write_file_atomic(dir_ + "/recipe.yaml", R"(model_name_or_path: model
seed: 5
learning_rate: 1.0e-3
num_train_epochs: 1
per_device_train_batch_size: 4
max_length: 160
max_prompt_length: 120
data: {train: train.jsonl, heldout: heldout.jsonl, test: test.jsonl}
generation: {max_new_tokens: 16, batch_size: 4}
evaluation: {max_new_tokens: 16}
iterations:
  - {}
  - {}
)");
  const auto args = [&](const std::string& out, bool resume) {
    return "run --threads 1 --config " + shell_quote(dir_ + "/recipe.yaml") + " --output " + shell_quote(out) +
           (resume ? " --resume" : "");
  };
  const std::string whole = dir_ + "/run-whole";
  ASSERT_EQ(testkit::run_spinlm(args(whole, false)).exit_code, 0);
  // Each in turn: the pairs being generated, a metrics file, an evaluation, a model.
  for (const std::string target : {"iter_1/pairs.jsonl", "iter_0/model/metrics.jsonl", "iter_0/eval.json",
                                   "iter_1/model/model.safetensors"}) {
    SCOPED_TRACE(target);
    const std::string out = dir_ + "/run-full-" + std::to_string(std::hash<std::string>()(target) % 10000);
    const auto failed = run_with_fault(target, args(out, false));
    EXPECT_NE(failed.exit_code, 0) << failed.output;
    EXPECT_TRUE(contains(failed.output, "error: " + out + "/" + target)) << failed.output;
    const auto resumed = testkit::run_spinlm(args(out, true));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    for (const char* file : {"iter_0/pairs.jsonl", "iter_1/pairs.jsonl", "iter_0/eval.json", "iter_1/eval.json",
                             "iter_0/model/model.safetensors", "iter_1/model/model.safetensors"})
      EXPECT_EQ(read_file(out + "/" + file), read_file(whole + "/" + file)) << file;
    // The training curve too, but for its timing field.
    const auto a = read_jsonl(out + "/iter_0/metrics.jsonl"), b = read_jsonl(whole + "/iter_0/metrics.jsonl");
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].value["loss"], b[i].value["loss"]) << i;
  }
}

}  // namespace
}  // namespace spinlm
