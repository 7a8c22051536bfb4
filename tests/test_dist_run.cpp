// `spinlm run` over two processes (Gloo over loopback): the whole loop, every phase split
// across the ranks, rank 0 alone writing the run folder.
// - a 2-iteration run with its control, verifier-filtered negatives and every measurement
//   (lm-eval tasks with MMLU's subsets included) equals the one-process run of the same
//   recipe: pairs and generations byte-identical, weights within fp32 tolerance, eval.json
//   equal; `spinlm eval` (tasks, held-out NLL and reward accuracy) on two processes equals
//   one process;
// - killing one rank during generation, and during training, stops the other with the
//   distributed error within the timeout; `--resume` on two processes then completes the run,
//   and it equals the uninterrupted one.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <unistd.h>

#include "core/atomic_file.h"
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

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

int free_port(int offset) { return 21000 + static_cast<int>(::getpid() % 19000) + offset * 11; }

class DistRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testkit::make_temp_dir("dist_run");
    const auto init = testkit::run_spinlm("init-model --arch llama --vocab byte --hidden-size 32 --intermediate-size 64 "
                                          "--layers 2 --heads 2 --seed 3 --out " + shell_quote(dir_ + "/model"));
    ASSERT_EQ(init.exit_code, 0) << init.output;
    testkit::write_arith_split_files(dir_, 9, {30, 9, 9});
    // Global batch 4 = micro-batches of 2 x 2 accumulation steps: one micro-batch per rank
    // per step on two ranks, both on one. 30 prompts: an uneven last batch. Odd split sizes,
    // so the ranks' shares differ.
    write_file_atomic(dir_ + "/recipe.yaml", std::string(R"(model_name_or_path: model
seed: 5
learning_rate: 1.0e-3
beta: 0.1
num_train_epochs: 1
per_device_train_batch_size: 2
gradient_accumulation_steps: 2
max_length: 160
max_prompt_length: 120
logging_steps: 1
data: {train: train.jsonl, heldout: heldout.jsonl, test: test.jsonl}
generation:
  max_new_tokens: 24
  batch_size: 4
  negatives: {reject: verified, verifier: final_answer, max_resamples: 1}
evaluation: {max_new_tokens: 16, distribution: true, sample_accuracy: true, heldout_exact_match: true,
             tasks: [arc_challenge, gsm8k, mmlu], num_fewshot: 1, limit: 5, batch_size: 4, data_dir: )" +
                                          testkit::source_path("tests/data/eval") + R"(}
iterations:
  - {}
  - {mix_previous: true}
control: {enabled: true}
)"));
    const auto one = testkit::run_spinlm("run --threads 1 --config " + shell_quote(dir_ + "/recipe.yaml") +
                                         " --output " + shell_quote(dir_ + "/one"));
    ASSERT_EQ(one.exit_code, 0) << one.output;
  }

  static std::string run_args(const std::string& out, bool resume = false) {
    return "run --threads 1 --config " + shell_quote(dir_ + "/recipe.yaml") + " --output " + shell_quote(out) +
           (resume ? " --resume" : "");
  }

  static std::string launch(int port, const std::string& command) {
    return "launch --nproc 2 --master-port " + std::to_string(port) + " --dist-timeout 60 -- " +
           testkit::spinlm_binary() + " " + command;
  }

  // The same keys; integers and strings equal, numbers within 1e-4 (relative above 1).
  static void expect_same_eval(const std::string& a, const std::string& b) {
    SCOPED_TRACE(b);
    const json ea = json::parse(read_file(a)), eb = json::parse(read_file(b));
    const json fa = ea.flatten(), fb = eb.flatten();
    ASSERT_EQ(fa.size(), fb.size()) << ea.dump() << "\n" << eb.dump();
    for (const auto& [key, value] : fa.items()) {
      ASSERT_TRUE(fb.contains(key)) << key;
      if (key == "/lm_eval/config/model_args")  // names each run's own folder
        continue;
      if (value.is_number_float())
        EXPECT_NEAR(value.get<double>(), fb[key].get<double>(), 1e-4 * std::max(1.0, std::abs(value.get<double>())))
            << key;
      else
        EXPECT_EQ(value, fb[key]) << key;
    }
  }

  // Every file both runs wrote that must hold the same bytes, and the models and evaluations.
  static void expect_same_run(const std::string& a, const std::string& b) {
    for (const std::string& iteration : {"iter_0", "iter_1", "control/iter_0", "control/iter_1"}) {
      SCOPED_TRACE(iteration);
      for (const char* file : {"pairs.jsonl", "heldout_pairs.jsonl", "negatives.json", "test_generations.jsonl",
                               "heldout_generations.jsonl", "test_samples.jsonl", "train.jsonl"}) {
        const std::string x = a + "/" + iteration + "/" + file, y = b + "/" + iteration + "/" + file;
        if (!file_exists(x)) continue;
        ASSERT_TRUE(file_exists(y)) << y;
        EXPECT_EQ(read_file(x), read_file(y)) << file;
      }
      for (const char* file : {"test_distribution.jsonl", "heldout_distribution.jsonl"}) {
        const std::vector<JsonlRow> ra = read_jsonl(a + "/" + iteration + "/" + file),
                                    rb = read_jsonl(b + "/" + iteration + "/" + file);
        ASSERT_EQ(ra.size(), rb.size()) << file;
        for (size_t i = 0; i < ra.size(); ++i) {
          EXPECT_EQ(ra[i].value["index"], rb[i].value["index"]) << file;
          for (const char* key : {"forward_kl", "valid_mass", "tv", "shape_entropy"})
            EXPECT_NEAR(ra[i].value[key].get<double>(), rb[i].value[key].get<double>(),
                        1e-4 * std::max(1.0, std::abs(ra[i].value[key].get<double>())))
                << file << " row " << i << " " << key;
        }
      }
      Transformer ma = load_model(a + "/" + iteration + "/model"), mb = load_model(b + "/" + iteration + "/model");
      const auto pa = ma.named_parameters(), pb = mb.named_parameters();
      ASSERT_EQ(pa.size(), pb.size());
      double diff = 0;
      for (size_t i = 0; i < pa.size(); ++i) diff = std::max(diff, (pa[i].second - pb[i].second).abs().max().item<double>());
      EXPECT_LT(diff, 1e-5) << "largest weight difference";
      expect_same_eval(a + "/" + iteration + "/eval.json", b + "/" + iteration + "/eval.json");
    }
    expect_same_eval(a + "/sft_eval.json", b + "/sft_eval.json");
    for (const char* paired : {"iter_0/vs_control.json", "iter_1/vs_control.json"})
      expect_same_eval(a + "/" + paired, b + "/" + paired);
    EXPECT_EQ(json::parse(read_file(a + "/state.json"))["steps"], json::parse(read_file(b + "/state.json"))["steps"]);
    // Rank 0 alone wrote: no shard files or second logs are left in the folder.
    for (const auto& entry : std::filesystem::recursive_directory_iterator(b))
      EXPECT_FALSE(contains(entry.path().filename().string(), ".rank-")) << entry.path();
  }

  // Starts both ranks of `spinlm run` into out by hand, kills rank 1 once rank 0's log shows
  // `marker`, and checks that rank 0 stops with the distributed error; then resumes.
  static void kill_and_resume(const std::string& out, const std::string& marker, int port) {
    const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
                            " SPINLM_DIST_TIMEOUT=20";
    const pid_t survivor = testkit::start_spinlm("RANK=0 " + env, run_args(out), out + "-0.log");
    const pid_t victim = testkit::start_spinlm("RANK=1 " + env, run_args(out), out + "-1.log");
    ASSERT_TRUE(testkit::wait_for_text(out + "-0.log", marker, 120)) << read_file(out + "-0.log");
    ::kill(victim, SIGKILL);
    double seconds = 0;
    EXPECT_EQ(testkit::wait_for_exit(victim, 10, &seconds), 128 + SIGKILL);
    const int status = testkit::wait_for_exit(survivor, 40, &seconds);
    if (status == -1) ::kill(survivor, SIGKILL);
    ASSERT_NE(status, -1) << "the survivor hangs";
    const std::string log = read_file(out + "-0.log");
    EXPECT_NE(status, 0) << log;
    EXPECT_TRUE(contains(log, "error: rank 0 of 2: distributed")) << log;
    EXPECT_TRUE(contains(log, "Another rank probably exited or hangs")) << log;
    const auto resumed = testkit::run_spinlm(launch(port + 1, run_args(out, true)));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    expect_same_run(dir_ + "/one", out);
  }

  static std::string dir_;
};
std::string DistRun::dir_;

TEST_F(DistRun, TwoProcessRunEqualsOneProcess) {
  const auto two = testkit::run_spinlm(launch(free_port(1), run_args(dir_ + "/two")));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_TRUE(contains(two.output, "dist: rank 1 of 2")) << two.output;
  expect_same_run(dir_ + "/one", dir_ + "/two");
  // The table and the report come from rank 0 once.
  EXPECT_TRUE(file_exists(dir_ + "/two/report.html"));
  EXPECT_EQ(two.output.find("final model:"), two.output.rfind("final model:")) << two.output;
}

// `spinlm eval` takes the same split path: tasks, held-out NLL and held-out reward accuracy
// on two processes give one process's results.json.
TEST_F(DistRun, EvalOnTwoProcessesEqualsOneProcess) {
  const std::string one = dir_ + "/one";
  const std::string args = "eval --threads 1 --model " + shell_quote(one + "/iter_0/model") +
                           " --tasks arc_challenge,gsm8k,mmlu --num-fewshot 1 --limit 5 --batch-size 4 --data-dir " +
                           shell_quote(testkit::source_path("tests/data/eval")) + " --heldout-sft " +
                           shell_quote(dir_ + "/heldout.jsonl") + " --heldout-pairs " +
                           shell_quote(one + "/iter_0/heldout_pairs.jsonl") + " --opponent " + shell_quote(dir_ + "/model") +
                           " --heldout-max-length 160 --heldout-max-prompt-length 120 --no-progress --output ";
  const auto single = testkit::run_spinlm(args + shell_quote(dir_ + "/eval-one.json"));
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const auto two = testkit::run_spinlm(launch(free_port(6), args + shell_quote(dir_ + "/eval-two.json")));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const json a = json::parse(read_file(dir_ + "/eval-one.json"));
  EXPECT_TRUE(a["heldout"].contains("sft") && a["heldout"].contains("pairs")) << a.dump();
  EXPECT_TRUE(a["results"].contains("mmlu_anatomy")) << a.dump();
  expect_same_eval(dir_ + "/eval-one.json", dir_ + "/eval-two.json");
}

TEST_F(DistRun, KilledRankDuringGenerationStopsTheOtherAndResumeCompletes) {
  kill_and_resume(dir_ + "/killed-generate", "step iter_0/generate", free_port(2));
}

TEST_F(DistRun, KilledRankDuringTrainingStopsTheOtherAndResumeCompletes) {
  kill_and_resume(dir_ + "/killed-train", "step iter_1/train", free_port(4));
}

}  // namespace
}  // namespace spinlm
