// Preemption (core/stop_signal.h), as SLURM and Kubernetes do it: SIGTERM (or SIGUSR1, or
// Ctrl-C's SIGINT) to a running `spinlm train`, `generate`, `eval` or `run` makes it save at its next
// safe point, say what it saved and how to resume, and exit with status 75; resuming then gives
// exactly what an uninterrupted run gives. A second signal ends the process at once, and
// what it leaves still resumes.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <random>

#include "core/atomic_file.h"
#include "core/stop_signal.h"
#include "data/arith_task.h"
#include "io/jsonl.h"
#include "model/hf_model.h"
#include "testkit.h"
#include "testkit_data.h"
#include "testkit_process.h"

namespace spinlm {
namespace {

using json = nlohmann::json;
using testkit::shell_quote;
namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class Preemption : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testkit::make_temp_dir("preemption");
    const auto made = testkit::run_spinlm("init-model --arch llama --hidden-size 32 --intermediate-size 64 --layers 2 "
                                          "--heads 4 --kv-heads 2 --vocab byte --seed 5 --out " +
                                          shell_quote(dir_ + "/model"));
    ASSERT_EQ(made.exit_code, 0) << made.output;
    std::mt19937_64 rng(3);
    std::vector<json> pairs, prompts;
    for (int i = 0; i < 16; ++i) {
      const std::string q = "q" + std::to_string(i) + std::string(rng() % 6, 'x');
      json user = {{"role", "user"}, {"content", q}};
      pairs.push_back({{"real", {user, {{"role", "assistant"}, {"content", "real " + std::to_string(i)}}}},
                       {"generated", {user, {{"role", "assistant"}, {"content", "gen " + std::string(rng() % 5, 'y')}}}}});
    }
    for (int i = 0; i < 1500; ++i)
      prompts.push_back({{"prompt", "Say " + std::to_string(i * 7)}, {"response", std::to_string(i)}});
    write_jsonl_atomic(dir_ + "/pairs.jsonl", pairs);
    write_jsonl_atomic(dir_ + "/prompts.jsonl", prompts);
  }

  static std::string train_args(const std::string& out) {
    // 16 pairs, batch 2: 8 steps an epoch, 160 steps in all.
    return "train --threads 1 --model " + shell_quote(dir_ + "/model") + " --data " + shell_quote(dir_ + "/pairs.jsonl") +
           " --output " + shell_quote(out) + " --batch-size 2 --epochs 20 --learning-rate 1e-3 --optimizer adamw";
  }
  static std::string generate_args(const std::string& out) {
    return "generate --threads 1 --model " + shell_quote(dir_ + "/model") + " --input " +
           shell_quote(dir_ + "/prompts.jsonl") + " --output " + shell_quote(out) +
           " --max-new-tokens 48 --temperature 1 --seed 9 --batch-size 8";
  }

  // Starts args, sends signal once the log shows marker, and returns the exit status.
  static int interrupt(const std::string& args, const std::string& log, const std::string& marker, int signal,
                       int count = 1) {
    const pid_t pid = testkit::start_spinlm("", args, log);
    EXPECT_TRUE(testkit::wait_for_text(log, marker, 120)) << read_file(log);
    for (int i = 0; i < count; ++i) ::kill(pid, signal);
    double seconds = 0;
    const int status = testkit::wait_for_exit(pid, 60, &seconds);
    if (status == -1) ::kill(pid, SIGKILL);
    EXPECT_LT(seconds, 30) << "the job took too long to stop";
    return status;
  }

  static double largest_weight_difference(const std::string& a, const std::string& b) {
    Transformer ma = load_model(a), mb = load_model(b);
    const auto pa = ma.named_parameters(), pb = mb.named_parameters();
    double diff = 0;
    for (size_t i = 0; i < pa.size(); ++i) diff = std::max(diff, (pa[i].second - pb[i].second).abs().max().item<double>());
    return diff;
  }

  static const std::string& uninterrupted_training() {
    static const std::string out = [] {
      const std::string out = dir_ + "/train-whole";
      const auto r = testkit::run_spinlm(train_args(out));
      EXPECT_EQ(r.exit_code, 0) << r.output;
      return out;
    }();
    return out;
  }

  static std::string dir_;
};
std::string Preemption::dir_;

TEST_F(Preemption, SigtermDuringTrainingSavesAStepCheckpointAndResumeMatches) {
  const std::string out = dir_ + "/train-term";
  // Once training runs (a signal during the reference scoring before it: the test below).
  const int status = interrupt(train_args(out), out + ".log", "reference log-probs: 16/16 pairs", SIGTERM);
  const std::string log = read_file(out + ".log");
  EXPECT_EQ(status, kPreemptedExit) << log;
  EXPECT_TRUE(contains(log, "stopped: training stopped by SIGTERM after step ")) << log;
  EXPECT_TRUE(contains(log, "rerun the same command with --resume")) << log;
  EXPECT_FALSE(file_exists(out + "/model.safetensors")) << "stopped before the end: no final model yet";
  bool step_checkpoint = false;
  for (const auto& entry : fs::directory_iterator(out))
    step_checkpoint = step_checkpoint || entry.path().filename().string().rfind("checkpoint-", 0) == 0;
  EXPECT_TRUE(step_checkpoint) << log;
  const auto resumed = testkit::run_spinlm(train_args(out) + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "resuming from")) << resumed.output;
  EXPECT_LT(largest_weight_difference(uninterrupted_training(), out), 1e-6);
}

TEST_F(Preemption, SigusrOneAndSigintStopTrainingTheSameWay) {
  for (const int signal : {SIGUSR1, SIGINT}) {
    const std::string out = dir_ + "/train-" + signal_name(signal);
    const int status = interrupt(train_args(out), out + ".log", "reference log-probs: 16/16 pairs", signal);
    EXPECT_EQ(status, kPreemptedExit) << read_file(out + ".log");
    EXPECT_TRUE(contains(read_file(out + ".log"), "training stopped by " + signal_name(signal))) << read_file(out + ".log");
  }
}

TEST_F(Preemption, SigtermDuringGenerationKeepsTheRowsAndTheRerunIsByteIdentical) {
  const std::string whole = dir_ + "/gen-whole.jsonl", cut = dir_ + "/gen-term.jsonl";
  const auto r = testkit::run_spinlm(generate_args(whole));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const int status = interrupt(generate_args(cut), cut + ".log", "generate: ", SIGTERM);
  const std::string log = read_file(cut + ".log");
  EXPECT_EQ(status, kPreemptedExit) << log;
  EXPECT_TRUE(contains(log, "stopped: generation stopped by SIGTERM after ")) << log;
  EXPECT_TRUE(file_exists(cut + ".partial")) << log;
  EXPECT_FALSE(file_exists(cut));
  const auto rerun = testkit::run_spinlm(generate_args(cut));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_EQ(read_file(cut), read_file(whole));
}

TEST_F(Preemption, SecondSignalStopsAtOnceAndWhatIsLeftResumes) {
  const std::string out = dir_ + "/train-twice";
  const int status = interrupt(train_args(out), out + ".log", "train: 16 pairs", SIGTERM, 2);
  // Either the second signal arrived before the first safe point (killed by it) or after the
  // job had already stopped cleanly; both leave files a resume accepts.
  EXPECT_TRUE(status == 128 + SIGTERM || status == kPreemptedExit) << status << "\n" << read_file(out + ".log");
  const auto resumed = testkit::run_spinlm(train_args(out) + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_LT(largest_weight_difference(uninterrupted_training(), out), 1e-6);
}

TEST_F(Preemption, SigtermDuringARunsEvaluationStopsAndResumeMatches) {
  testkit::write_arith_split_files(dir_, 4, {12, 40, 40});
  write_file_atomic(dir_ + "/recipe.yaml", R"(model_name_or_path: model
seed: 5
learning_rate: 1.0e-3
num_train_epochs: 1
per_device_train_batch_size: 4
max_length: 160
max_prompt_length: 120
data: {train: train.jsonl, heldout: heldout.jsonl, test: test.jsonl}
generation: {max_new_tokens: 16, batch_size: 4}
evaluation: {max_new_tokens: 24, heldout_exact_match: true, distribution: true}
iterations:
  - {}
)");
  const auto args = [&](const std::string& out) {
    return "run --threads 1 --config " + shell_quote(dir_ + "/recipe.yaml") + " --output " + shell_quote(out);
  };
  const auto whole = testkit::run_spinlm(args(dir_ + "/run-whole"));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  const std::string out = dir_ + "/run-term";
  const int status = interrupt(args(out), out + ".log", "step iter_0/eval", SIGTERM);
  const std::string log = read_file(out + ".log");
  EXPECT_EQ(status, kPreemptedExit) << log;
  EXPECT_TRUE(contains(log, "stopped: ")) << log;
  EXPECT_TRUE(contains(log, "--resume")) << log;
  const auto resumed = testkit::run_spinlm(args(out) + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  for (const char* file : {"iter_0/pairs.jsonl", "iter_0/test_generations.jsonl", "iter_0/heldout_generations.jsonl",
                           "iter_0/test_distribution.jsonl"})
    EXPECT_EQ(read_file(out + "/" + file), read_file(dir_ + "/run-whole/" + file)) << file;
  const json a = json::parse(read_file(out + "/iter_0/eval.json")), b = json::parse(read_file(dir_ + "/run-whole/iter_0/eval.json"));
  EXPECT_EQ(a, b);
}

// SIGTERM while `spinlm train` scores the reference log-probs: the scored micro-batches stay in
// the cache's journal (OUT/reference_logprobs-KEY.json.journal.partial), the rerun scores only
// the rest, and training ends at the weights of an uninterrupted run.
TEST_F(Preemption, SigtermDuringReferenceScoringKeepsTheScoredBatchesAndResumeMatches) {
  std::mt19937_64 rng(13);
  std::vector<json> pairs;
  for (int i = 0; i < 3000; ++i) {
    json user = {{"role", "user"}, {"content", "question " + std::to_string(i) + std::string(20 + rng() % 20, 'q')}};
    pairs.push_back({{"real", {user, {{"role", "assistant"}, {"content", std::string(30 + rng() % 30, 'r')}}}},
                     {"generated", {user, {{"role", "assistant"}, {"content", std::string(10 + rng() % 40, 'g')}}}}});
  }
  const std::string data = dir_ + "/many-pairs.jsonl";
  write_jsonl_atomic(data, pairs);
  const auto args = [&](const std::string& out) {
    return "train --threads 1 --model " + shell_quote(dir_ + "/model") + " --data " + shell_quote(data) + " --output " +
           shell_quote(out) + " --batch-size 1000 --micro-batch-size 4 --epochs 1 --learning-rate 1e-3 " +
           "--optimizer adamw";
  };
  const auto whole = testkit::run_spinlm(args(dir_ + "/reference-whole"));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;

  const std::string out = dir_ + "/reference-term";
  const int status = interrupt(args(out), out + ".log", "train: 3000 pairs", SIGTERM);
  const std::string log = read_file(out + ".log");
  ASSERT_EQ(status, kPreemptedExit) << log;
  EXPECT_TRUE(contains(log, "stopped: reference scoring stopped by SIGTERM; ")) << log;
  EXPECT_TRUE(contains(log, ".journal.partial: rerun the same command")) << log;
  int journals = 0, caches = 0;
  for (const auto& entry : fs::directory_iterator(out)) {
    const std::string name = entry.path().filename().string();
    journals += name.rfind("reference_logprobs-", 0) == 0 && contains(name, ".json.journal.partial");
    caches += name.rfind("reference_logprobs-", 0) == 0 && name.size() > 5 && name.substr(name.size() - 5) == ".json";
  }
  EXPECT_EQ(journals, 1);
  EXPECT_EQ(caches, 0) << "the scoring was not finished";

  const auto resumed = testkit::run_spinlm(args(out) + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "resuming with")) << resumed.output;
  EXPECT_LT(largest_weight_difference(dir_ + "/reference-whole", out), 1e-6);
  for (const auto& entry : fs::directory_iterator(out))
    EXPECT_FALSE(contains(entry.path().filename().string(), "journal")) << entry.path();
}

// `spinlm eval --output R.json` keeps each finished unit of work (a batch of log-likelihoods,
// a generation, a held-out batch) in R.json.journal.partial; SIGTERM stops it at the next unit
// with status 75, and the same command then finishes from the journal with the numbers of an
// uninterrupted evaluation. A journal of another evaluation is refused, naming it.
TEST_F(Preemption, SigtermDuringEvalKeepsFinishedWorkAndTheRerunMatches) {
  const std::string data = dir_ + "/eval-data";
  fs::create_directories(data);
  std::mt19937_64 rng(11);
  std::vector<json> gsm, arc;
  for (int i = 0; i < 300; ++i) {
    const int a = int(rng() % 50), b = int(rng() % 50);
    gsm.push_back({{"question", "What is " + std::to_string(a) + " plus " + std::to_string(b) + "?"},
                   {"answer", std::to_string(a) + "+" + std::to_string(b) + "\n#### " + std::to_string(a + b)}});
  }
  for (int i = 0; i < 120; ++i)
    arc.push_back({{"question", "Which is " + std::to_string(i) + "?"},
                   {"choices", {{"text", {"one", "two", "three " + std::to_string(i), "four"}}, {"label", {"A", "B", "C", "D"}}}},
                   {"answerKey", std::string(1, char('A' + rng() % 4))}});
  write_jsonl_atomic(data + "/gsm8k.jsonl", gsm);
  write_jsonl_atomic(data + "/arc_challenge.jsonl", arc);
  const auto args = [&](const std::string& out, const std::string& extra) {
    return "eval --threads 1 --model " + shell_quote(dir_ + "/model") + " --tasks gsm8k,arc_challenge --num-fewshot 0 " +
           "--data-dir " + shell_quote(data) + " --batch-size 4 --heldout-sft " + shell_quote(dir_ + "/prompts.jsonl") +
           " --heldout-pairs " + shell_quote(dir_ + "/pairs.jsonl") + " --opponent " + shell_quote(dir_ + "/model") +
           " --output " + shell_quote(out) + extra;
  };
  const auto whole = testkit::run_spinlm(args(dir_ + "/eval-whole.json", ""));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;

  const std::string out = dir_ + "/eval-term.json";
  const int status = interrupt(args(out, ""), out + ".log", "gsm8k: 300 documents", SIGTERM);
  const std::string log = read_file(out + ".log");
  ASSERT_EQ(status, kPreemptedExit) << log;
  EXPECT_TRUE(contains(log, "finished units of work are kept in " + out + ".journal.partial")) << log;
  EXPECT_TRUE(contains(log, "rerun the same command")) << log;
  EXPECT_FALSE(file_exists(out));
  const std::string journal = read_file(out + ".journal.partial");
  EXPECT_TRUE(contains(journal, "\"part\":\"gsm8k\"")) << journal.substr(0, 2000);
  EXPECT_FALSE(contains(journal, "\"part\":\"arc_challenge\"")) << "the stop came after gsm8k";

  const auto other = testkit::run_spinlm(args(out, " --limit 50"));
  EXPECT_NE(other.exit_code, 0);
  EXPECT_TRUE(contains(other.output, out + ".journal.partial: made by another evaluation")) << other.output;

  const auto resumed = testkit::run_spinlm(args(out, ""));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "resuming with")) << resumed.output;
  EXPECT_FALSE(file_exists(out + ".journal.partial"));
  EXPECT_EQ(json::parse(read_file(out)), json::parse(read_file(dir_ + "/eval-whole.json")));
}

}  // namespace
}  // namespace spinlm
