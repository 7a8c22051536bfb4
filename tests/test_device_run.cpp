// --device / --dtype on every model command (issue 9), checked on this CPU build:
//   - per-rank choice: "auto" and a bare "cuda" mean the GPU of the process's local rank,
//     read from the same variables (and with the same precedence) as dist/dist_env.h;
//   - generate, score and eval default to "auto", which is cpu/fp32 here: their results equal
//     those of an explicit --device cpu --dtype fp32 exactly, while bf16 changes them;
//     eval's run_config records the resolved device and dtype;
//   - `spinlm run --device/--dtype`: a bad value (cuda on a CPU build, fp16 training, an
//     unknown name) fails before the run folder exists; a bf16 run trains and saves bf16
//     weights (read from the safetensors header here, not through spinlm), an fp32 one fp32;
//     a finished run resumes under another --dtype (device and dtype are not part of the recipe).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/arith_task.h"
#include "dist/dist_env.h"
#include "io/jsonl.h"
#include "model/device_choice.h"
#include "testkit.h"
#include "testkit_data.h"

namespace spinlm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testkit::shell_quote;

// ---------------------------------------------------------------- per-rank choice

TEST(DeviceRank, AutoAndBareCudaMeanTheLocalRanksGpu) {
  EXPECT_EQ(device_name_for_rank("auto", true, 0), "cuda:0");
  EXPECT_EQ(device_name_for_rank("auto", true, 3), "cuda:3");
  EXPECT_EQ(device_name_for_rank("", true, 1), "cuda:1");
  EXPECT_EQ(device_name_for_rank("cuda", true, 2), "cuda:2");
  // Explicit choices stand.
  EXPECT_EQ(device_name_for_rank("cuda:1", true, 3), "cuda:1");
  EXPECT_EQ(device_name_for_rank("cpu", true, 3), "cpu");
  // Without CUDA: auto is the CPU; a bare cuda stays as given, for parse_device's error.
  EXPECT_EQ(device_name_for_rank("auto", false, 2), "cpu");
  EXPECT_EQ(device_name_for_rank("cuda", false, 2), "cuda");
  EXPECT_THROW(device_name_for_rank("auto", true, -1), Error);
  if (!at::hasCUDA()) {
    EXPECT_EQ(choose_device("auto", 5), at::Device(at::kCPU));
    EXPECT_EQ(choose_device("", 1), at::Device(at::kCPU));
    EXPECT_THROW(choose_device("cuda", 1), Error);
    EXPECT_THROW(choose_device("cuda:1", 0), Error);
  }
}

// Sets environment variables for one scope and restores the previous values.
class ScopedEnvironment {
 public:
  explicit ScopedEnvironment(const std::map<std::string, std::optional<std::string>>& values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
      set(name, value);
    }
  }
  ~ScopedEnvironment() {
    for (const auto& [name, value] : saved_) set(name, value);
  }

 private:
  static void set(const std::string& name, const std::optional<std::string>& value) {
    if (value)
      setenv(name.c_str(), value->c_str(), 1);
    else
      unsetenv(name.c_str());
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

// The model layer reads the local rank itself (it may not include dist headers); it must
// agree with the dist layer's reading, which picks the device of the ranks' tensors.
TEST(DeviceRank, LocalRankAgreesWithTheDistEnvironment) {
  const std::vector<std::string> names = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "OMPI_COMM_WORLD_RANK",
                                          "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"};
  using Env = std::map<std::string, std::optional<std::string>>;
  const std::vector<Env> cases = {
      {},                                                                          // one process
      {{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}},                   // torchrun
      {{"RANK", "2"}, {"WORLD_SIZE", "4"}},                                        // no LOCAL_RANK: 0
      {{"OMPI_COMM_WORLD_RANK", "5"}, {"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "2"}},
      // torchrun's variables win over OpenMPI's
      {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_RANK", "0"},
       {"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}},
      {{"LOCAL_RANK", "3"}},  // LOCAL_RANK alone is no job
  };
  const std::vector<int> expected = {0, 1, 0, 2, 1, 0};
  for (size_t i = 0; i < cases.size(); ++i) {
    Env env;
    for (const std::string& name : names) env[name] = std::nullopt;
    for (const auto& [name, value] : cases[i]) env[name] = value;
    ScopedEnvironment scope(env);
    EXPECT_EQ(local_rank_from_environment(), expected[i]) << "case " << i;
    EXPECT_EQ(local_rank_from_environment(), dist_env_from_environment().local_rank) << "case " << i;
    EXPECT_EQ(device_name_for_rank("auto", true, local_rank_from_environment()),
              "cuda:" + std::to_string(expected[i]));
  }
  Env bad;
  for (const std::string& name : names) bad[name] = std::nullopt;
  bad["RANK"] = "0";
  bad["WORLD_SIZE"] = "2";
  bad["LOCAL_RANK"] = "one";
  ScopedEnvironment scope(bad);
  try {
    local_rank_from_environment();
    ADD_FAILURE() << "LOCAL_RANK=one was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("LOCAL_RANK"), std::string::npos) << error.what();
  }
}

// ---------------------------------------------------------------- commands

// A tiny byte-vocabulary model and arithmetic conversations.
struct Fixture {
  std::string dir, model, rows, ids;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture f;
    f.dir = testkit::make_temp_dir("device-run");
    f.model = f.dir + "/model";
    const auto init = testkit::run_spinlm("init-model --arch llama --vocab byte --hidden-size 32 --intermediate-size 64 "
                                          "--layers 2 --heads 2 --seed 7 --out " + shell_quote(f.model));
    EXPECT_EQ(init.exit_code, 0) << init.output;
    const ArithSplits splits = make_arith_splits(13, {4, 4, 4});
    f.rows = f.dir + "/rows.jsonl";
    write_arith_jsonl(f.rows, splits.train);
    f.ids = f.dir + "/ids.jsonl";
    write_file_atomic(f.ids, "{\"ids\": [1, 72, 101, 108, 108, 111, 44, 32, 119]}\n{\"ids\": [1, 50, 43, 51, 61, 53]}\n");
    return f;
  }();
  return f;
}

std::string model_args() { return " --threads 1 --model " + shell_quote(fixture().model); }

std::vector<double> score_sums(const std::string& extra) {
  const std::string out = testkit::make_temp_dir("device-score") + "/scores.jsonl";
  const auto r = testkit::run_spinlm("score" + model_args() + " --input " + shell_quote(fixture().ids) + " --output " +
                                     shell_quote(out) + extra);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<double> sums;
  if (r.exit_code != 0) return sums;
  for (const JsonlRow& row : read_jsonl(out)) sums.push_back(row.value.at("sum").get<double>());
  return sums;
}

TEST(DeviceCommands, ScoreDefaultsToCpuFp32Here) {
  if (at::hasCUDA()) GTEST_SKIP() << "the default is a GPU on this build";
  const std::vector<double> by_default = score_sums("");
  const std::vector<double> explicit_cpu = score_sums(" --device cpu --dtype fp32");
  const std::vector<double> bf16 = score_sums(" --dtype bf16");
  ASSERT_EQ(by_default.size(), 2u);
  EXPECT_EQ(by_default, explicit_cpu);
  ASSERT_EQ(bf16.size(), 2u);
  EXPECT_NE(bf16, by_default);  // the dtype option reaches the model
  for (size_t i = 0; i < bf16.size(); ++i) EXPECT_NEAR(bf16[i], by_default[i], 0.02 * std::abs(by_default[i]));
}

std::string generate(const std::string& extra) {
  const std::string out = testkit::make_temp_dir("device-generate") + "/out.jsonl";
  const auto r = testkit::run_spinlm("generate" + model_args() + " --input " + shell_quote(fixture().rows) +
                                     " --output " + shell_quote(out) + " --max-new-tokens 8 --no-progress" + extra);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.exit_code == 0 ? read_file(out) : "";
}

TEST(DeviceCommands, GenerateDefaultsToCpuFp32Here) {
  if (at::hasCUDA()) GTEST_SKIP() << "the default is a GPU on this build";
  const std::string by_default = generate("");
  EXPECT_FALSE(by_default.empty());
  EXPECT_EQ(by_default, generate(" --device cpu --dtype fp32"));
}

json eval_config(const std::string& extra) {
  const std::string out = testkit::make_temp_dir("device-eval") + "/results.json";
  const auto r = testkit::run_spinlm("eval" + model_args() + " --heldout-sft " + shell_quote(fixture().rows) +
                                     " --heldout-max-length 96 --no-progress --output " + shell_quote(out) + extra);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.exit_code == 0 ? json::parse(read_file(out)) : json();
}

TEST(DeviceCommands, EvalRecordsTheResolvedDeviceAndDtype) {
  if (at::hasCUDA()) GTEST_SKIP() << "the default is a GPU on this build";
  const json by_default = eval_config("");
  ASSERT_TRUE(by_default.contains("config")) << by_default.dump();
  EXPECT_EQ(by_default["config"]["device"], "cpu");
  EXPECT_EQ(by_default["config"]["dtype"], "fp32");
  const json bf16 = eval_config(" --dtype bfloat16");
  ASSERT_TRUE(bf16.contains("config"));
  EXPECT_EQ(bf16["config"]["device"], "cpu");
  EXPECT_EQ(bf16["config"]["dtype"], "bf16");
  // Same measurement, the bf16 model's NLL near the fp32 one but not equal to it.
  const double nll = by_default["heldout"]["sft"]["nll_per_token"].get<double>();
  const double nll_bf16 = bf16["heldout"]["sft"]["nll_per_token"].get<double>();
  EXPECT_NE(nll, nll_bf16);
  EXPECT_NEAR(nll_bf16, nll, 0.02 * nll);
}

TEST(DeviceCommands, CudaOnACpuBuildIsAClearErrorForInference) {
  if (at::hasCUDA()) GTEST_SKIP() << "this build has CUDA";
  const std::string out = testkit::make_temp_dir("device-inference-cuda");
  const std::vector<std::string> commands = {
      "score" + model_args() + " --input " + shell_quote(fixture().ids),
      "generate" + model_args() + " --input " + shell_quote(fixture().rows) + " --output " + shell_quote(out + "/g.jsonl"),
      "eval" + model_args() + " --heldout-sft " + shell_quote(fixture().rows) + " --output " + shell_quote(out + "/e.json")};
  for (const std::string& command : commands) {
    const auto r = testkit::run_spinlm(command + " --device cuda");
    EXPECT_NE(r.exit_code, 0) << command;
    EXPECT_NE(r.output.find("error: --device cuda: this spinlm was built against a libtorch without CUDA"),
              std::string::npos)
        << r.output;
    const auto bad = testkit::run_spinlm(command + " --dtype fp8");
    EXPECT_NE(bad.exit_code, 0) << command;
    EXPECT_NE(bad.output.find("error: --dtype fp8"), std::string::npos) << bad.output;
  }
  EXPECT_FALSE(fs::exists(out + "/g.jsonl"));
  EXPECT_FALSE(fs::exists(out + "/e.json"));
}

// ---------------------------------------------------------------- spinlm run

// The dtype of every tensor in a safetensors file, from its JSON header (8-byte little-endian
// length, then the header), read here without spinlm's reader.
std::map<std::string, std::string> safetensors_dtypes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char size_bytes[8] = {};
  in.read(reinterpret_cast<char*>(size_bytes), 8);
  uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = (size << 8) | size_bytes[i];
  std::string header(size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(size));
  EXPECT_TRUE(in.good()) << path;
  std::map<std::string, std::string> dtypes;
  const json parsed = json::parse(header);
  for (const auto& [name, entry] : parsed.items())
    if (name != "__metadata__") dtypes[name] = entry.at("dtype").get<std::string>();
  return dtypes;
}

// One iteration on 4 rows, a greedy evaluation on 4 held-out rows.
std::string recipe() {
  static const std::string path = [] {
    const std::string path = fixture().dir + "/recipe.yaml";
    testkit::write_arith_split_files(fixture().dir, 17, {4, 4, 4});
    write_file_atomic(path, "model_name_or_path: model\n"
                            "seed: 3\nlearning_rate: 1.0e-3\nnum_train_epochs: 1\n"
                            "per_device_train_batch_size: 2\nmax_length: 96\nmax_prompt_length: 64\n"
                            "data: {train: train.jsonl, heldout: heldout.jsonl, test: test.jsonl}\n"
                            "generation: {max_new_tokens: 8, batch_size: 4}\n"
                            "evaluation: {max_new_tokens: 8}\n");
    return path;
  }();
  return path;
}

testkit::CommandResult run(const std::string& out, const std::string& extra) {
  return testkit::run_spinlm("run --threads 1 --config " + shell_quote(recipe()) + " --output " + shell_quote(out) +
                             extra);
}

TEST(DeviceRun, BadDeviceOrDtypeFailsBeforeTheRunFolderIsWritten) {
  const std::string dir = testkit::make_temp_dir("device-run-bad");
  struct Case {
    std::string args, message;
  };
  std::vector<Case> cases = {{" --dtype fp16", "error: --dtype fp16: training supports fp32 and bf16"},
                             {" --device tpu", "error: --device tpu: expected cpu, cuda or cuda:N"},
                             {" --dtype fp8", "error: --dtype fp8: expected fp32, bf16 or fp16"}};
  if (!at::hasCUDA())
    cases.push_back({" --device cuda", "error: --device cuda: this spinlm was built against a libtorch without CUDA"});
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string out = dir + "/run" + std::to_string(i);
    const auto r = run(out, cases[i].args);
    EXPECT_NE(r.exit_code, 0) << cases[i].args;
    EXPECT_NE(r.output.find(cases[i].message), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out)) << cases[i].args;
    // `run --check` resolves them the same way.
    const auto checked = run(out, cases[i].args + " --check");
    EXPECT_NE(checked.exit_code, 0) << cases[i].args;
    EXPECT_NE(checked.output.find(cases[i].message), std::string::npos) << checked.output;
  }
  if (!at::hasCUDA()) {
    const auto valid = run(dir + "/checked", " --check --dtype bf16");
    EXPECT_EQ(valid.exit_code, 0) << valid.output;
    EXPECT_NE(valid.output.find("models on cpu in bf16"), std::string::npos) << valid.output;
    EXPECT_FALSE(fs::exists(dir + "/checked"));
  }
}

void expect_run_dtype(const std::string& out, const std::string& safetensors_dtype, const std::string& log_line) {
  ASSERT_TRUE(file_exists(out + "/iter_0/model/model.safetensors"));
  const auto dtypes = safetensors_dtypes(out + "/iter_0/model/model.safetensors");
  ASSERT_FALSE(dtypes.empty());
  for (const auto& [name, dtype] : dtypes) EXPECT_EQ(dtype, safetensors_dtype) << name;
  EXPECT_NE(read_file(out + "/run.log").find(log_line), std::string::npos) << read_file(out + "/run.log");
  const json eval = json::parse(read_file(out + "/iter_0/eval.json"));
  for (const char* key : {"exact_match", "heldout_nll"}) {
    ASSERT_TRUE(eval.contains(key)) << key;
    EXPECT_TRUE(std::isfinite(eval[key].get<double>())) << key;
  }
}

TEST(DeviceRun, AutoIsCpuFp32AndBf16TrainsBf16Weights) {
  if (at::hasCUDA()) GTEST_SKIP() << "the default is a GPU on this build";
  const std::string dir = testkit::make_temp_dir("device-run-dtypes");
  // The model the run starts from is fp32.
  for (const auto& [name, dtype] : safetensors_dtypes(fixture().model + "/model.safetensors")) EXPECT_EQ(dtype, "F32");

  const auto fp32 = run(dir + "/auto", "");
  ASSERT_EQ(fp32.exit_code, 0) << fp32.output;
  expect_run_dtype(dir + "/auto", "F32", "models on cpu in fp32");

  const auto bf16 = run(dir + "/bf16", " --device cpu --dtype bf16");
  ASSERT_EQ(bf16.exit_code, 0) << bf16.output;
  expect_run_dtype(dir + "/bf16", "BF16", "models on cpu in bf16");

  // Device and dtype are not part of the recipe: the finished fp32 run resumes under bf16.
  const auto resumed = run(dir + "/auto", " --resume --dtype bf16");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(resumed.output.find("recipe differs"), std::string::npos) << resumed.output;
}

}  // namespace
}  // namespace spinlm
