// dist/: data parallelism over c10d (Gloo, two processes over loopback on this machine).
// - the environment (torchrun and OpenMPI variables) and its errors;
// - gradient buckets against a plain per-tensor sum; shard merging;
// - `spinlm launch --nproc 2 -- spinlm train` reaches the weights of a one-process run with
//   the same global batch (an uneven last batch leaves rank 1 without a micro-batch);
// - `spinlm launch --nproc 2 -- spinlm generate` writes the same bytes as one process;
// - a rank that dies, and a rank that hangs, make the survivor stop with a clear error within
//   the timeout; a failing rank makes `spinlm launch` exit non-zero.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>
#include <unistd.h>
#include <sys/wait.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "dist/dist_env.h"
#include "dist/dist_generate.h"
#include "dist/grad_buckets.h"
#include "io/jsonl.h"
#include "model/hf_model.h"
#include "testkit.h"
#include "testkit_process.h"

using namespace spinlm;
using json = nlohmann::json;
using testkit::shell_quote;

namespace {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

// A port per test run, so parallel ctest jobs and leftovers of killed runs do not collide.
int free_port(int offset) { return 20000 + static_cast<int>(::getpid() % 20000) + offset * 7; }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---------------------------------------------------------------- environment

TEST(DistEnv, ReadsTorchrunAndOpenMpiVariables) {
  DistEnv none = dist_env_from_map({});
  EXPECT_EQ(none.world_size, 1);
  EXPECT_EQ(none.rank, 0);
  EXPECT_EQ(none.source, "none");

  DistEnv torchrun = dist_env_from_map({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                                        {"MASTER_ADDR", "10.0.0.5"}, {"MASTER_PORT", "29600"},
                                        {"SPINLM_DIST_TIMEOUT", "12.5"}});
  EXPECT_EQ(torchrun.rank, 3);
  EXPECT_EQ(torchrun.world_size, 8);
  EXPECT_EQ(torchrun.local_rank, 1);
  EXPECT_EQ(torchrun.master_addr, "10.0.0.5");
  EXPECT_EQ(torchrun.master_port, 29600);
  EXPECT_DOUBLE_EQ(torchrun.timeout_seconds, 12.5);
  EXPECT_EQ(torchrun.source, "torchrun");

  DistEnv mpi = dist_env_from_map(
      {{"OMPI_COMM_WORLD_RANK", "5"}, {"OMPI_COMM_WORLD_SIZE", "6"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "2"}});
  EXPECT_EQ(mpi.rank, 5);
  EXPECT_EQ(mpi.world_size, 6);
  EXPECT_EQ(mpi.local_rank, 2);
  EXPECT_EQ(mpi.master_addr, "127.0.0.1");
  EXPECT_EQ(mpi.source, "openmpi");
}

TEST(DistEnv, ErrorsNameTheVariable) {
  EXPECT_TRUE(contains(error_of([] { dist_env_from_map({{"RANK", "2"}, {"WORLD_SIZE", "2"}}); }), "RANK=2"));
  EXPECT_TRUE(contains(error_of([] { dist_env_from_map({{"RANK", "x"}, {"WORLD_SIZE", "2"}}); }), "RANK"));
  EXPECT_TRUE(contains(error_of([] { dist_env_from_map({{"WORLD_SIZE", "2"}}); }), "RANK is not"));
  EXPECT_TRUE(contains(error_of([] { dist_env_from_map({{"MASTER_PORT", "70000"}}); }), "MASTER_PORT"));
  EXPECT_TRUE(contains(error_of([] { dist_env_from_map({{"SPINLM_DIST_TIMEOUT", "0"}}); }), "SPINLM_DIST_TIMEOUT"));
  EXPECT_TRUE(contains(error_of([] { dist_env_from_map({{"OMPI_COMM_WORLD_SIZE", "2"}}); }),
                       "OMPI_COMM_WORLD_RANK"));
}

// ---------------------------------------------------------------- buckets, merging

TEST(GradientBuckets, SumEqualsPerTensorSumAndUndefinedGradsCountAsZero) {
  at::manual_seed(1);
  std::vector<at::Tensor> params;
  for (int64_t n : {5, 300, 7, 64, 1000, 3}) params.push_back(at::randn({n, 2}).requires_grad_(true));
  for (size_t i = 0; i < params.size(); ++i) {
    if (i != 2) params[i].mutable_grad() = at::randn({params[i].size(0), 2});
  }
  std::vector<at::Tensor> before;
  for (const at::Tensor& p : params) before.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  // A stand-in "world" of three identical ranks: the sum is 3x each gradient.
  GradientBuckets buckets(params, /*bucket_bytes=*/4 * 800);
  EXPECT_GE(buckets.bucket_count(), 3u);
  int started = 0, waited = 0;
  buckets.all_reduce(params, [&](at::Tensor& flat) -> std::function<void()> {
    ++started;
    return [&, flat]() mutable {
      EXPECT_EQ(started, static_cast<int>(buckets.bucket_count()));  // every bucket started before any wait
      ++waited;
      flat.mul_(3.0);
    };
  });
  EXPECT_EQ(started, static_cast<int>(buckets.bucket_count()));
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_TRUE(params[i].grad().defined());
    EXPECT_TRUE(at::allclose(params[i].grad(), before[i] * 3.0)) << "parameter " << i;
  }
}

TEST(MergeShards, InputOrderUnchangedLinesAndDuplicateErrors) {
  std::string dir = testkit::make_temp_dir("dist-merge");
  write_file_atomic(dir + "/a", "{\"index\":2,\"x\":1.50}\n{\"index\":0,\"x\":\"a\"}\n");
  write_file_atomic(dir + "/b", "{\"index\":1,\"x\":[1, 2]}\n");
  merge_shards_by_index({dir + "/a", dir + "/b"}, dir + "/out");
  EXPECT_EQ(read_file(dir + "/out"), "{\"index\":0,\"x\":\"a\"}\n{\"index\":1,\"x\":[1, 2]}\n{\"index\":2,\"x\":1.50}\n");
  write_file_atomic(dir + "/c", "{\"index\":1}\n");
  EXPECT_TRUE(contains(error_of([&] { merge_shards_by_index({dir + "/b", dir + "/c"}, dir + "/o2"); }),
                       dir + "/c:1: row 1 appears in two shards"));
  write_file_atomic(dir + "/d", "{\"x\":1}\n");
  EXPECT_TRUE(contains(error_of([&] { merge_shards_by_index({dir + "/d"}, dir + "/o3"); }), dir + "/d:1"));
}

// ---------------------------------------------------------------- end to end

class DistCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testkit::make_temp_dir("dist");
    model_ = dir_ + "/model";
    auto made = testkit::run_spinlm("init-model --arch llama --hidden-size 32 --intermediate-size 64 --layers 2 "
                                    "--heads 4 --kv-heads 2 --vocab byte --seed 5 --max-position-embeddings 128 --out " +
                                    shell_quote(model_));
    ASSERT_EQ(made.exit_code, 0) << made.output;
    // Training pairs in the generation format (ids), of varied lengths.
    std::mt19937_64 rng(11);
    auto ids = [&](int64_t length) {
      std::vector<int64_t> v;
      for (int64_t i = 0; i < length; ++i) v.push_back(40 + static_cast<int64_t>(rng() % 80));
      return v;
    };
    std::vector<json> rows;
    for (int i = 0; i < 10; ++i) {
      json user = {{"role", "user"}, {"content", "q"}};
      rows.push_back({{"real", {user, {{"role", "assistant"}, {"content", "a"}}}},
                      {"generated", {user, {{"role", "assistant"}, {"content", "b"}}}},
                      {"prompt_ids", ids(3 + static_cast<int64_t>(rng() % 5))},
                      {"real_ids", ids(2 + static_cast<int64_t>(rng() % 6))},
                      {"generated_ids", ids(2 + static_cast<int64_t>(rng() % 6))}});
    }
    pairs_ = dir_ + "/pairs.jsonl";
    write_jsonl_atomic(pairs_, rows);
  }

  static std::string train_args(const std::string& out) {
    // 10 pairs, batch 4, micro-batch 2: steps of 4, 4 and 2 pairs; in the last one rank 1 has
    // no micro-batch at all. A large rate so that the weights move far from the start.
    return "train --threads 1 --model " + shell_quote(model_) + " --data " + shell_quote(pairs_) +
           " --output " + shell_quote(out) +
           " --batch-size 4 --micro-batch-size 2 --epochs 2 --learning-rate 1e-3 --optimizer adamw"
           " --logging-steps 1 --max-grad-norm 0.5";
  }

  static std::string launch(int nproc, int port, const std::string& command, double timeout = 60) {
    return "launch --nproc " + std::to_string(nproc) + " --master-port " + std::to_string(port) +
           " --dist-timeout " + std::to_string(timeout) + " -- " + testkit::spinlm_binary() + " " + command;
  }

  static std::string dir_, model_, pairs_;
};
std::string DistCommand::dir_, DistCommand::model_, DistCommand::pairs_;

TEST_F(DistCommand, TwoProcessTrainingEqualsOneProcessWithTheSameGlobalBatch) {
  auto single = testkit::run_spinlm(train_args(dir_ + "/train-1"));
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto two = testkit::run_spinlm(launch(2, free_port(1), train_args(dir_ + "/train-2")));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_TRUE(contains(two.output, "dist: rank 1 of 2")) << two.output;

  Transformer start = load_model(model_), one = load_model(dir_ + "/train-1"), dp = load_model(dir_ + "/train-2");
  auto start_params = start.named_parameters(), one_params = one.named_parameters(), dp_params = dp.named_parameters();
  ASSERT_EQ(one_params.size(), dp_params.size());
  double moved = 0, diff = 0;
  for (size_t i = 0; i < one_params.size(); ++i) {
    ASSERT_EQ(one_params[i].first, dp_params[i].first);
    moved = std::max(moved, (one_params[i].second - start_params[i].second).abs().max().item<double>());
    diff = std::max(diff, (one_params[i].second - dp_params[i].second).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3) << "training must change the weights for the comparison to mean anything";
  EXPECT_LT(diff, 1e-5) << "largest weight difference between 1 and 2 processes";

  // Metrics: summed across ranks, so the logged batch values agree; only rank 0 writes them.
  std::vector<JsonlRow> m1 = read_jsonl(dir_ + "/train-1/metrics.jsonl"), m2 = read_jsonl(dir_ + "/train-2/metrics.jsonl");
  ASSERT_EQ(m1.size(), m2.size());
  ASSERT_EQ(m1.size(), 6u);
  for (size_t i = 0; i < m1.size(); ++i) {
    for (const char* key : {"loss", "grad_norm", "rewards/accuracies", "logps/real"}) {
      EXPECT_NEAR(m1[i].value[key].get<double>(), m2[i].value[key].get<double>(), 1e-5) << key << " row " << i;
    }
  }
}

TEST_F(DistCommand, TwoProcessGenerationIsByteIdenticalToOneProcess) {
  std::vector<json> rows;
  for (int i = 0; i < 9; ++i) {
    rows.push_back({{"prompt", "What is " + std::to_string(i * 13) + " plus " + std::to_string(i) + "?"},
                    {"response", std::to_string(i * 14)}});
  }
  const std::string input = dir_ + "/prompts.jsonl";
  write_jsonl_atomic(input, rows);
  auto args = [&](const std::string& out) {
    return "generate --no-progress --threads 1 --model " + shell_quote(model_) + " --input " + shell_quote(input) +
           " --output " + shell_quote(out) + " --max-new-tokens 12 --temperature 1.0 --seed 7 --batch-size 3";
  };
  auto single = testkit::run_spinlm(args(dir_ + "/gen-1.jsonl"));
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto two = testkit::run_spinlm(launch(2, free_port(2), args(dir_ + "/gen-2.jsonl")));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const std::string a = read_file(dir_ + "/gen-1.jsonl"), b = read_file(dir_ + "/gen-2.jsonl");
  EXPECT_EQ(read_jsonl(dir_ + "/gen-1.jsonl").size(), 9u);
  EXPECT_EQ(a, b);
  EXPECT_FALSE(file_exists(rank_file_path(dir_ + "/gen-2.jsonl", 0, 2)));  // shard files removed
  EXPECT_FALSE(file_exists(rank_file_path(dir_ + "/gen-2.jsonl", 1, 2)));
}

// Starts `spinlm ARGS` as rank `rank` of 2 in the background, output to log.
pid_t start_rank(int rank, int port, double timeout, const std::string& args, const std::string& log) {
  return testkit::start_spinlm("RANK=" + std::to_string(rank) + " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                                   std::to_string(port) + " SPINLM_DIST_TIMEOUT=" + std::to_string(timeout),
                               args, log);
}

using testkit::wait_for_text;
int wait_for(pid_t pid, double limit, double* seconds) { return testkit::wait_for_exit(pid, limit, seconds); }

// A long run: the survivor is still training when its peer goes away.
std::string long_train_args(const std::string& dir, const std::string& pairs, const std::string& model,
                            const std::string& out) {
  return "train --threads 1 --model " + shell_quote(model) + " --data " + shell_quote(pairs) + " --output " +
         shell_quote(out) + " --batch-size 2 --micro-batch-size 1 --epochs 200 --learning-rate 1e-5";
}

TEST_F(DistCommand, KilledRankGivesTheSurvivorAClearErrorWithinTheTimeout) {
  const int port = free_port(3);
  const std::string out = dir_ + "/killed";
  const std::string args = long_train_args(dir_, pairs_, model_, out);
  pid_t survivor = start_rank(0, port, 5, args, dir_ + "/killed-0.log");
  pid_t victim = start_rank(1, port, 5, args, dir_ + "/killed-1.log");
  ASSERT_TRUE(wait_for_text(dir_ + "/killed-1.log", "dist: rank 1 of 2", 30)) << read_file(dir_ + "/killed-1.log");
  ::kill(victim, SIGKILL);
  double seconds = 0;
  int victim_status = wait_for(victim, 10, &seconds);
  EXPECT_EQ(victim_status, 128 + SIGKILL);
  const int status = wait_for(survivor, 20, &seconds);
  if (status == -1) ::kill(survivor, SIGKILL);
  ASSERT_NE(status, -1) << "the survivor hangs";
  const std::string log = read_file(dir_ + "/killed-0.log");
  EXPECT_NE(status, 0) << log;
  EXPECT_TRUE(contains(log, "error: rank 0 of 2: distributed")) << log;
  EXPECT_TRUE(contains(log, "Another rank probably exited or hangs")) << log;
  EXPECT_LT(seconds, 10.0);
}

TEST_F(DistCommand, HungRankMakesTheSurvivorStopAfterTheTimeout) {
  const int port = free_port(4);
  const std::string out = dir_ + "/hung";
  const std::string args = long_train_args(dir_, pairs_, model_, out);
  pid_t survivor = start_rank(0, port, 3, args, dir_ + "/hung-0.log");
  pid_t sleeper = start_rank(1, port, 3, args, dir_ + "/hung-1.log");
  ASSERT_TRUE(wait_for_text(dir_ + "/hung-1.log", "dist: rank 1 of 2", 30)) << read_file(dir_ + "/hung-1.log");
  ::kill(sleeper, SIGSTOP);
  double seconds = 0;
  const int status = wait_for(survivor, 30, &seconds);
  ::kill(sleeper, SIGKILL);
  ::kill(sleeper, SIGCONT);
  double ignored = 0;
  wait_for(sleeper, 10, &ignored);
  if (status == -1) ::kill(survivor, SIGKILL);
  ASSERT_NE(status, -1) << "the survivor hangs";
  const std::string log = read_file(dir_ + "/hung-0.log");
  EXPECT_NE(status, 0) << log;
  EXPECT_TRUE(contains(log, "error: rank 0 of 2: distributed")) << log;
  EXPECT_TRUE(contains(log, "at most 3 s")) << log;
}

TEST_F(DistCommand, LaunchExitsNonZeroAndStopsTheOthersWhenARankFails) {
  // Rank 0 and rank 1 both fail on the missing file here; with --dist-timeout 3 a rank still
  // waiting for a peer would stop anyway, so the test bounds the time.
  const auto start = std::chrono::steady_clock::now();
  auto result = testkit::run_spinlm(
      launch(2, free_port(5), "train --threads 1 --model " + shell_quote(model_) + " --data " +
                                  shell_quote(dir_ + "/missing.jsonl") + " --output " + shell_quote(dir_ + "/fail"),
             3));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "missing.jsonl")) << result.output;
  EXPECT_TRUE(contains(result.output, "error: launch: a rank failed")) << result.output;
  EXPECT_LT(seconds, 20.0);
}

}  // namespace
