// lm-evaluation-harness tasks inside `spinlm run`: a recipe lists built-in tasks and their data
// folder (the tiny fixtures of tests/data/eval); the run evaluates the SFT model, every SPIN
// iteration and the control on them, stores the numbers in the eval files, and shows them in
// the terminal table and the report. The numbers are checked against direct forwards of the
// prompt + answer tokens (acc: argmax of the summed log-probs), independently of the
// evaluator's batching, and the harness-shaped results against `spinlm eval` on the same model.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "data/arith_task.h"
#include "eval/builtin_tasks.h"
#include "eval/evaluator.h"
#include "eval/loglikelihood.h"
#include "eval/metrics.h"
#include "model/hf_model.h"
#include "testkit.h"
#include "testkit_data.h"
#include "text/byte_vocab.h"
#include "text/text_codec.h"

namespace spinlm {
namespace {

using json = nlohmann::json;
using testkit::shell_quote;

std::string eval_data() { return testkit::source_path("tests/data/eval"); }

struct TaskRun {
  std::string dir, run;
  testkit::CommandResult result;
};

// A random tiny model, 8 arithmetic prompts, one SPIN iteration with the control, and three
// tasks (two multiple choice, one generation) at one few-shot example.
const TaskRun& task_run() {
  static const TaskRun r = [] {
    TaskRun r;
    r.dir = testkit::make_temp_dir("pipeline-tasks");
    const auto init = testkit::run_spinlm("init-model --arch llama --vocab byte --hidden-size 32 --intermediate-size 64 "
                                          "--layers 2 --heads 2 --seed 4 --out " + shell_quote(r.dir + "/model"));
    EXPECT_EQ(init.exit_code, 0) << init.output;
    testkit::write_arith_split_files(r.dir, 11, {8, 4, 4});
    write_file_atomic(r.dir + "/recipe.yaml", "model_name_or_path: model\n"
                                              "learning_rate: 1.0e-3\nnum_train_epochs: 1\n"
                                              "per_device_train_batch_size: 4\nmax_length: 160\nmax_prompt_length: 120\n"
                                              "data: {train: train.jsonl, heldout: heldout.jsonl, test: test.jsonl}\n"
                                              "generation: {max_new_tokens: 16, batch_size: 4}\n"
                                              "evaluation:\n"
                                              "  max_new_tokens: 16\n"
                                              "  heldout_exact_match: true\n"
                                              "  tasks: [arc_challenge, mmlu, gsm8k]\n"
                                              "  data_dir: " + eval_data() + "\n"
                                              "  num_fewshot: 1\n"
                                              "  batch_size: 4\n"
                                              "control: {enabled: true}\n"
                                              "keep_checkpoints: true\n");
    r.run = r.dir + "/run";
    r.result = testkit::run_spinlm("run --threads 1 --config " + shell_quote(r.dir + "/recipe.yaml") + " --output " +
                                   shell_quote(r.run));
    EXPECT_EQ(r.result.exit_code, 0) << r.result.output;
    return r;
  }();
  return r;
}

json read_json(const std::string& path) { return json::parse(read_file(path)); }

// Sum of the continuation's log-probs from one unbatched forward of context + continuation.
double direct_loglikelihood(const Transformer& model, const LoglikelihoodRequest& request) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> whole = request.context;
  whole.insert(whole.end(), request.continuation.begin(), request.continuation.end());
  const int64_t T = int64_t(whole.size()) - 1, n = int64_t(request.continuation.size());
  const at::Tensor input = at::tensor(std::vector<int64_t>(whole.begin(), whole.end() - 1), at::kLong).unsqueeze(0);
  const at::Tensor targets = at::tensor(std::vector<int64_t>(whole.begin() + 1, whole.end()), at::kLong).unsqueeze(0);
  const at::Tensor logprobs = at::log_softmax(model.logits(model.forward_hidden(input, at::ones_like(input))), -1)
                                  .gather(2, targets.unsqueeze(2))
                                  .squeeze(2);  // [1, T]
  return logprobs.narrow(1, T - n, n).sum().item<double>();
}

// acc of a multiple-choice task on a model folder, from direct forwards.
double direct_acc(const std::string& model_dir, const std::string& task) {
  EvalOptions options;
  options.data_dir = eval_data();
  options.num_fewshot = 1;
  const TaskPrompts prompts = build_task_prompts(builtin_task(task), options);
  const Transformer model = load_model(model_dir);
  const TextCodec codec = TextCodec::load(model_dir);
  double correct = 0;
  for (size_t d = 0; d < prompts.docs.size(); ++d) {
    std::vector<double> lls;
    for (const auto& [context, continuation] : prompts.loglikelihood[d])
      lls.push_back(direct_loglikelihood(model, encode_loglikelihood_request(codec.tokenizer(), context, continuation,
                                                                              kByteEosId)));
    correct += metric_acc(lls, prompts.docs[d].gold);
  }
  return correct / double(prompts.docs.size());
}

TEST(RunTasks, EveryModelIsEvaluatedOnTheRecipesTasks) {
  const TaskRun& r = task_run();
  ASSERT_EQ(r.result.exit_code, 0);
  const std::vector<std::pair<std::string, std::string>> models = {
      {r.run + "/sft_eval.json", r.dir + "/model"},
      {r.run + "/iter_0/eval.json", r.run + "/iter_0/model"},
      {r.run + "/control/iter_0/eval.json", r.run + "/control/iter_0/model"}};
  for (const auto& [eval_path, model_dir] : models) {
    const json eval = read_json(eval_path);
    for (const char* key : {"arc_challenge/acc", "arc_challenge/acc_norm", "mmlu/acc", "gsm8k/exact_match",
                            "exact_match", "heldout_exact_match", "heldout_nll"})
      EXPECT_TRUE(eval.contains(key) && eval[key].is_number()) << eval_path << " " << key;
    // Two ARC documents, three MMLU questions, two GSM8K problems.
    const double arc = eval["arc_challenge/acc"], mmlu = eval["mmlu/acc"], gsm8k = eval["gsm8k/exact_match"];
    EXPECT_DOUBLE_EQ(arc, direct_acc(model_dir, "arc_challenge")) << eval_path;
    EXPECT_DOUBLE_EQ(mmlu, direct_acc(model_dir, "mmlu")) << eval_path;
    EXPECT_TRUE(gsm8k == 0.0 || gsm8k == 0.5 || gsm8k == 1.0) << gsm8k;
    // The harness-shaped results keep the MMLU subjects.
    EXPECT_TRUE(eval["lm_eval"]["results"].contains("mmlu_anatomy")) << eval.dump(2);
    EXPECT_EQ(eval["lm_eval"]["n-shot"]["arc_challenge"], 1);
  }
  // The same numbers as `spinlm eval` on the trained model.
  const std::string out = r.dir + "/eval_iter0.json";
  const auto eval = testkit::run_spinlm("eval --threads 1 --model " + shell_quote(r.run + "/iter_0/model") +
                                        " --tasks arc_challenge,mmlu,gsm8k --num-fewshot 1 --batch-size 4 --data-dir " +
                                        shell_quote(eval_data()) + " --no-progress --output " + shell_quote(out));
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const json cli = read_json(out)["results"];
  const json run = read_json(r.run + "/iter_0/eval.json");
  EXPECT_EQ(run["arc_challenge/acc_norm"], cli["arc_challenge"]["acc_norm"]);
  EXPECT_EQ(run["gsm8k/exact_match"], cli["gsm8k"]["exact_match"]);
  EXPECT_EQ(run["lm_eval"]["results"]["mmlu_anatomy"], cli["mmlu_anatomy"]);
  // One evaluation path: the same run_config (model, batch size, shots, limit, data, device, dtype).
  EXPECT_EQ(run["lm_eval"]["config"], read_json(out)["config"]);
}

// keep_checkpoints: the epoch checkpoints stay whole (weights and optimizer state), for SPIN
// and the control, so training can be inspected or continued from them.
TEST(RunTasks, KeepCheckpointsKeepsTheOptimizerState) {
  const TaskRun& r = task_run();
  ASSERT_EQ(r.result.exit_code, 0);
  for (const char* folder : {"/iter_0/model/epoch-1", "/control/iter_0/model/epoch-1"})
    for (const char* file : {"/model.safetensors", "/optimizer.safetensors", "/trainer_state.json"})
      EXPECT_TRUE(file_exists(r.run + folder + file)) << folder << file;
}

TEST(RunTasks, TerminalTableAndReportShowTheTasks) {
  const TaskRun& r = task_run();
  ASSERT_EQ(r.result.exit_code, 0);
  for (const char* needle : {"arc_challenge/acc_norm", "mmlu/acc", "gsm8k/exact_match", "control 0", "valid EM",
                             "selected on the validation split"})
    EXPECT_NE(r.result.output.find(needle), std::string::npos) << needle << "\n" << r.result.output;
  // The table's iter 0 row holds the eval file's arc_challenge/acc_norm (4 decimals).
  const double acc_norm = read_json(r.run + "/iter_0/eval.json")["arc_challenge/acc_norm"];
  char expected[32];
  std::snprintf(expected, sizeof expected, "%.4f", acc_norm);
  const size_t row = r.result.output.find("\niter 0");
  ASSERT_NE(row, std::string::npos) << r.result.output;
  const std::string line = r.result.output.substr(row + 1, r.result.output.find('\n', row + 1) - row - 1);
  EXPECT_NE(line.find(expected), std::string::npos) << line;

  const std::string html = read_file(r.run + "/report.html");
  for (const char* needle : {"<th title=\"lm-evaluation-harness task\">arc_challenge/acc_norm</th>",
                             "control (SFT) 0", "aria-label=\"gsm8k/exact_match\"", "aria-label=\"control: SFT loss\""})
    EXPECT_NE(html.find(needle), std::string::npos) << needle;
}

}  // namespace
}  // namespace spinlm
