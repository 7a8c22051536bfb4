// What SPIN claims, measured: the exact distance to p_data (eval/answer_distribution.h), paired
// comparisons with the control (eval/paired.h), verifiers and verifier-filtered negatives
// (data/verifier.h), the fixed-point stop rule, all checked against closed forms written here,
// the Python torch twin (tests/reference/llama_reference.py) and properties of the run folder.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/arith_task.h"
#include "data/pairs.h"
#include "data/verifier.h"
#include "eval/answer_distribution.h"
#include "eval/paired.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/model_text.h"
#include "pipeline/recipe.h"
#include "testkit.h"

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
  return "";
}

TEST(AnswerDistribution, MetricsFollowTheirDefinitions) {
  // Two valid answers, p_data 1/2 each; the model gives them 1/2 and 1/4 (mass 1/4 elsewhere).
  const ProblemDistribution d = problem_distribution({std::log(0.5), std::log(0.25)}, {0.5, 0.5});
  EXPECT_NEAR(d.valid_mass, 0.75, 1e-12);
  EXPECT_NEAR(d.tv, 0.5 * (0.0 + 0.25 + 0.25), 1e-12);
  EXPECT_NEAR(d.forward_kl, 0.5 * std::log(0.5 / 0.25), 1e-12);
  EXPECT_NEAR(d.shape_tv, 0.5 * (std::abs(2.0 / 3 - 0.5) + std::abs(1.0 / 3 - 0.5)), 1e-12);
  EXPECT_NEAR(d.shape_entropy, -(2.0 / 3 * std::log(2.0 / 3) + 1.0 / 3 * std::log(1.0 / 3)), 1e-12);
  // At p_data every distance is zero and the shape keeps the data's entropy (log k).
  const ProblemDistribution at_data = problem_distribution({std::log(0.2), std::log(0.8)}, {0.2, 0.8});
  EXPECT_NEAR(at_data.tv, 0, 1e-12);
  EXPECT_NEAR(at_data.forward_kl, 0, 1e-12);
  EXPECT_NEAR(at_data.valid_mass, 1, 1e-12);
  // Collapse onto one of three uniform solutions: entropy 0, KL infinite in the limit.
  const ProblemDistribution collapsed = problem_distribution({0.0, -60.0, -60.0}, {1.0 / 3, 1.0 / 3, 1.0 / 3});
  EXPECT_NEAR(collapsed.shape_entropy, 0, 1e-20);
  EXPECT_NEAR(collapsed.forward_kl, (2.0 / 3) * 60 - std::log(3.0), 1e-9);
}

TEST(Paired, DifferenceAndMcNemarAgainstClosedForms) {
  const PairedDifference d = paired_difference({1, 2, 4, 7}, {0, 2, 1, 3});  // differences 1, 0, 3, 4
  EXPECT_DOUBLE_EQ(d.mean, 2.0);
  const double sd = std::sqrt(((1 - 2.0) * (1 - 2.0) + 4 + 1 + 4) / 3);
  EXPECT_NEAR(d.stderr_value, sd / 2, 1e-12);
  // 1 problem only A gets right, 9 only B: p = 2 * P[Bin(10, 1/2) <= 1] = 2 * 11 / 1024.
  std::vector<bool> a, b;
  for (int i = 0; i < 9; ++i) a.push_back(false), b.push_back(true);
  a.push_back(true), b.push_back(false);
  for (int i = 0; i < 5; ++i) a.push_back(true), b.push_back(true);
  const McNemar m = mcnemar(a, b);
  EXPECT_EQ(m.only_a, 1);
  EXPECT_EQ(m.only_b, 9);
  EXPECT_NEAR(m.p_value, 22.0 / 1024.0, 1e-12);
  EXPECT_DOUBLE_EQ(mcnemar({true, false}, {true, false}).p_value, 1.0);
  EXPECT_NE(error_of([] { paired_difference({1}, {1, 2}); }).find("different problems"), std::string::npos);
}

TEST(Verifier, FinalAnswerAndListedSolutions) {
  const json row = {{"messages", json::array({{{"role", "user"}, {"content", "2+2?"}},
                                              {{"role", "assistant"}, {"content", "2+2=4.\n#### 4"}}})},
                    {"solutions", {"2+2=4.\n#### 4", "4.\n#### 4"}}};
  EXPECT_TRUE(verify_response(Verifier::kFinalAnswer, row, "Two and two: 4\n#### 4", "r:1"));
  EXPECT_FALSE(verify_response(Verifier::kFinalAnswer, row, "#### 5", "r:1"));
  EXPECT_FALSE(verify_response(Verifier::kFinalAnswer, row, "4", "r:1"));  // no "#### N"
  EXPECT_TRUE(verify_response(Verifier::kSolution, row, "4.\n#### 4", "r:1"));
  EXPECT_FALSE(verify_response(Verifier::kSolution, row, "Two and two: 4\n#### 4", "r:1"));
  json with_answer = {{"prompt", "q"}, {"response", "#### 7"}, {"answer", 9}};
  EXPECT_TRUE(verify_response(Verifier::kFinalAnswer, with_answer, "#### 9", "r:2"));  // the field wins
  EXPECT_NE(error_of([] { verify_response(Verifier::kFinalAnswer, json{{"prompt", "q"}}, "#### 1", "r.jsonl:3"); })
                .find("r.jsonl:3: the row has no final answer"),
            std::string::npos);
  EXPECT_EQ(parse_verifier("solution"), Verifier::kSolution);
  EXPECT_NE(error_of([] { parse_verifier("regex"); }).find("unknown verifier 'regex'"), std::string::npos);
}

const char* const kMinimal = "model_name_or_path: m\ndata:\n  train: t.jsonl\n";

TEST(Recipe, MeasuresNegativesAndStopRuleKeys) {
  const std::string dir = testkit::make_temp_dir("measure-recipe");
  const ArithSplits splits = make_arith_splits(4, {4, 4, 4});
  write_arith_jsonl(dir + "/v.jsonl", splits.validation);
  write_jsonl_atomic(dir + "/plain.jsonl", {json{{"prompt", "q"}, {"response", "a"}}});
  const std::string base = "model_name_or_path: m\ndata: {train: t.jsonl, heldout: " + dir + "/v.jsonl}\n";
  const Recipe r = parse_recipe(base +
                                    "evaluation: {distribution: true, sample_accuracy: true, heldout_exact_match: true}\n"
                                    "generation:\n  negatives: {reject: verified, verifier: solution, max_resamples: 2}\n"
                                    "stop: {reward_accuracy_stderrs: 2, min_train_margin: 0.5, patience: 1, "
                                    "metric: heldout_forward_kl}\n",
                                "r.yaml");
  EXPECT_TRUE(r.evaluation.distribution);
  EXPECT_TRUE(r.evaluation.sample_accuracy);
  EXPECT_TRUE(r.generation.negatives.reject_verified);
  EXPECT_EQ(r.generation.negatives.verifier, "solution");
  EXPECT_EQ(r.generation.negatives.max_resamples, 2);
  EXPECT_EQ(*r.stop.reward_accuracy_stderrs, 2.0);
  EXPECT_EQ(r.stop.min_train_margin, 0.5);
  EXPECT_EQ(r.stop.metric, "heldout_forward_kl");
  const json recorded = json::parse(recipe_to_json(r));
  EXPECT_EQ(recorded["generation"]["negatives"]["verifier"], "solution");
  EXPECT_EQ(recorded["stop"]["reward_accuracy_stderrs"], 2.0);
  // Without the extension the recorded recipe says it is off.
  EXPECT_EQ(json::parse(recipe_to_json(parse_recipe(kMinimal, "r.yaml")))["generation"]["negatives"]["reject"], "none");
  const std::vector<std::pair<std::string, std::string>> mistakes = {
      {"model_name_or_path: m\ndata: {train: t.jsonl, heldout: " + dir + "/plain.jsonl}\nevaluation: {distribution: true}\n",
       "r.yaml:3: key 'evaluation.distribution' needs rows that list their valid answers"},
      {std::string(kMinimal) + "evaluation: {distribution: true}\n", "needs data.test or data.heldout"},
      {std::string(kMinimal) + "generation:\n  negatives: {reject: sometimes}\n",
       "key 'generation.negatives.reject' must be one of none, verified"},
      {std::string(kMinimal) + "generation:\n  negatives: {verifier: solution}\n", "needs reject: verified"},
      {std::string(kMinimal) + "stop: {reward_accuracy_stderrs: 2}\n", "needs data.heldout"},
      {base + "stop: {min_train_margin: 1}\n", "belongs to the rule of 'stop.reward_accuracy_stderrs'"},
      {base + "stop: {patience: 1, metric: heldout_forward_kl}\n", "which needs data.heldout and evaluation.distribution"},
      {std::string(kMinimal) + "stop: {reward_accuracy_tolerance: 0.05}\n", "unknown key 'stop.reward_accuracy_tolerance'"},
  };
  for (const auto& [text, expected] : mistakes)
    EXPECT_NE(error_of([&] { parse_recipe(text, "r.yaml"); }).find(expected), std::string::npos)
        << text << "\n-> " << error_of([&] { parse_recipe(text, "r.yaml"); });
}

// ---------------------------------------------------------------- a run that measures

struct MeasuredRun {
  std::string dir, out;
  std::vector<json> train_rows;
  std::vector<std::string> first_draws;  // row 0..: the iteration's first generated answer
};

std::vector<json> rows_of(const std::string& path) {
  std::vector<json> rows;
  for (const JsonlRow& row : read_jsonl(path)) rows.push_back(row.value);
  return rows;
}

// A tiny random model on the arithmetic task, one SPIN iteration and its control, every
// measurement on, verifier-filtered negatives with the "solution" verifier. The model is
// random, so its answers are never valid solutions by chance; the test makes some of them
// valid on purpose: the answers the iteration will draw (generation depends only on seed,
// model and prompt) are listed as solutions of rows 0 and 1 (row 0: every draw, so it is
// dropped; row 1: the first draw only, so it is drawn again).
const MeasuredRun& measured_run() {
  static const MeasuredRun run = [] {
    MeasuredRun r;
    r.dir = testkit::make_temp_dir("measured");
    const auto init = testkit::run_spinlm("init-model --arch llama --vocab byte --hidden-size 32 --intermediate-size 64 "
                                          "--layers 2 --heads 2 --seed 3 --out " + shell_quote(r.dir + "/model"));
    EXPECT_EQ(init.exit_code, 0) << init.output;
    const ArithSplits splits = make_arith_splits(9, {12, 8, 8});
    write_arith_jsonl(r.dir + "/heldout.jsonl", splits.validation);
    write_arith_jsonl(r.dir + "/test.jsonl", splits.test);
    write_arith_jsonl(r.dir + "/train.jsonl", splits.train);
    std::vector<std::vector<std::string>> draws(2);
    for (int round = 0; round <= 2; ++round) {
      const std::string out = r.dir + "/predraw_" + std::to_string(round) + ".jsonl";
      const auto g = testkit::run_spinlm("generate --threads 1 --model " + shell_quote(r.dir + "/model") + " --input " +
                                         shell_quote(r.dir + "/train.jsonl") + " --output " + shell_quote(out) +
                                         " --max-new-tokens 24 --temperature 1 --seed " + std::to_string(5 + round * 7919) +
                                         " --limit 2");
      EXPECT_EQ(g.exit_code, 0) << g.output;
      for (const json& row : rows_of(out))
        draws[row["index"].get<size_t>()].push_back(row["generated"].back()["content"].get<std::string>());
    }
    r.first_draws = {draws[0][0], draws[1][0]};
    r.train_rows = rows_of(r.dir + "/train.jsonl");
    r.train_rows[0]["solutions"] = draws[0];                                  // every draw accepted
    r.train_rows[1]["solutions"].push_back(draws[1][0]);                      // the first only
    write_jsonl_atomic(r.dir + "/train.jsonl", r.train_rows);
    write_file_atomic(r.dir + "/recipe.yaml", R"(model_name_or_path: model
seed: 5
learning_rate: 1.0e-3
beta: 0.1
num_train_epochs: 2
per_device_train_batch_size: 4
max_length: 160
max_prompt_length: 120
logging_steps: 1
data: {train: train.jsonl, heldout: heldout.jsonl, test: test.jsonl}
generation:
  max_new_tokens: 24
  batch_size: 4
  negatives: {reject: verified, verifier: solution, max_resamples: 2}
evaluation: {max_new_tokens: 16, distribution: true, sample_accuracy: true, heldout_exact_match: true}
iterations:
  - {}
control: {enabled: true}
)");
    r.out = r.dir + "/run";
    const auto run = testkit::run_spinlm("run --threads 1 --config " + shell_quote(r.dir + "/recipe.yaml") + " --output " +
                                         shell_quote(r.out));
    EXPECT_EQ(run.exit_code, 0) << run.output;
    return r;
  }();
  return run;
}

TEST(MeasuredRun, VerifierFilteredNegativesRedrawAndDrop) {
  const MeasuredRun& r = measured_run();
  const json counts = json::parse(read_file(r.out + "/iter_0/negatives.json"));
  EXPECT_EQ(counts["prompts"], 12);
  EXPECT_EQ(counts["accepted_first_draw"], 2);
  EXPECT_EQ(counts["dropped"], 1);
  EXPECT_EQ(counts["pairs"], 11);
  const std::vector<json> pairs = rows_of(r.out + "/iter_0/pairs.jsonl");
  ASSERT_EQ(pairs.size(), 11u);
  std::set<int64_t> indices;
  for (const json& pair : pairs) {
    const int64_t index = pair["index"].get<int64_t>();
    indices.insert(index);
    const std::string generated = pair["generated"].back()["content"].get<std::string>();
    // No pair trains against an answer the verifier accepts.
    EXPECT_FALSE(verify_response(Verifier::kSolution, r.train_rows[size_t(index)], generated, "row"));
    if (index == 1) {
      EXPECT_EQ(pair["draws"], 2);
      EXPECT_NE(generated, r.first_draws[1]);
    }
  }
  EXPECT_EQ(indices.count(0), 0u);  // every draw of row 0 was a valid answer
  EXPECT_EQ(*indices.begin(), 1);
  EXPECT_EQ(counts["draws"].get<int64_t>(), 12 + 2 + 1);  // 12 prompts, then rows 0 and 1, then row 0
}

TEST(MeasuredRun, DistributionMatchesThePythonTwinAndItsFormulas) {
  const MeasuredRun& r = measured_run();
  const json eval = json::parse(read_file(r.out + "/iter_0/eval.json"));
  for (const char* key : {"forward_kl", "forward_kl_stderr", "valid_mass", "tv", "shape_tv", "shape_entropy",
                          "heldout_forward_kl", "heldout_valid_mass", "sample_accuracy", "heldout_sample_accuracy",
                          "exact_match", "train_logps_real_first", "train_margins_last"})
    EXPECT_TRUE(eval.contains(key)) << key;
  const std::vector<json> problems = rows_of(r.out + "/iter_0/test_distribution.jsonl");
  const std::vector<json> test = rows_of(r.dir + "/test.jsonl");
  ASSERT_EQ(problems.size(), test.size());
  // The formulas, recomputed from the per-problem log-probs.
  double kl_sum = 0, mass_sum = 0;
  for (const json& p : problems) {
    const auto lp = p["logprobs"].get<std::vector<double>>();
    const auto q = p["p_data"].get<std::vector<double>>();
    double kl = 0, mass = 0;
    for (size_t i = 0; i < lp.size(); ++i) {
      kl += q[i] * (std::log(q[i]) - lp[i]);
      mass += std::exp(lp[i]);
      EXPECT_NEAR(q[i], 1.0 / double(lp.size()), 1e-12);  // the arith task's data is uniform
    }
    EXPECT_NEAR(p["forward_kl"].get<double>(), kl, 1e-9);
    kl_sum += kl;
    mass_sum += mass;
  }
  EXPECT_NEAR(eval["forward_kl"].get<double>(), kl_sum / double(problems.size()), 1e-9);
  EXPECT_NEAR(eval["valid_mass"].get<double>(), mass_sum / double(problems.size()), 1e-9);
  // log p(s|x) against the Python torch twin: prompt (the byte template's generation prompt)
  // and answer as generation emits it (its bytes, then <|eos|>).
  const ModelText text = load_model_text(r.out + "/iter_0/model");
  std::vector<std::vector<int64_t>> rows;
  std::vector<size_t> prompt_lengths;
  std::vector<double> expected;
  for (size_t k = 0; k < 3; ++k) {
    const json& row = test[k];
    const auto solutions = row["solutions"].get<std::vector<std::string>>();
    const auto lp = problems[k]["logprobs"].get<std::vector<double>>();
    for (size_t i = 0; i < solutions.size(); ++i) {
      const std::vector<ChatMessage> messages = {{"user", row["messages"][0]["content"].get<std::string>()},
                                                 {"assistant", solutions[i]}};
      const PromptResponseIds ids = encode_prompt_response(*text.codec, messages, text.stop, "test");
      EXPECT_EQ(ids.response.back(), text.stop.eos);
      EXPECT_EQ(ids.response.size(), solutions[i].size() + 1);  // bytes + <|eos|>, nothing after it
      std::vector<int64_t> all = ids.prompt;
      all.insert(all.end(), ids.response.begin(), ids.response.end());
      rows.push_back(all);
      prompt_lengths.push_back(ids.prompt.size());
      expected.push_back(lp[i]);
    }
  }
  const std::string input = r.dir + "/twin_rows.json", output = r.dir + "/twin.safetensors";
  write_file_atomic(input, json{{"rows", rows}}.dump());
  const auto twin = testkit::run_python_reference(
      "llama_reference.py", "--model " + shell_quote(r.out + "/iter_0/model") + " --input " + shell_quote(input) +
                                " --output " + shell_quote(output) + " --dtype float64");
  ASSERT_EQ(twin.exit_code, 0) << twin.output;
  SafetensorsFile file(output);
  for (size_t i = 0; i < rows.size(); ++i) {
    const at::Tensor lp = file.tensor("logprobs." + std::to_string(i), at::kDouble);  // [len - 1]
    const double answer = lp.slice(0, int64_t(prompt_lengths[i]) - 1).sum().item<double>();
    EXPECT_NEAR(expected[i], answer, 1e-4) << "answer " << i;
  }
}

TEST(MeasuredRun, PairedComparisonWithTheControlUsesTheSameProblems) {
  const MeasuredRun& r = measured_run();
  const json paired = json::parse(read_file(r.out + "/iter_0/vs_control.json"));
  const auto spin = rows_of(r.out + "/iter_0/test_distribution.jsonl");
  const auto control = rows_of(r.out + "/control/iter_0/test_distribution.jsonl");
  ASSERT_EQ(spin.size(), control.size());
  std::vector<double> d;
  for (size_t i = 0; i < spin.size(); ++i) {
    ASSERT_EQ(spin[i]["index"], control[i]["index"]);
    d.push_back(spin[i]["forward_kl"].get<double>() - control[i]["forward_kl"].get<double>());
  }
  double mean = 0, var = 0;
  for (double x : d) mean += x / double(d.size());
  for (double x : d) var += (x - mean) * (x - mean) / double(d.size() - 1);
  EXPECT_NEAR(paired["forward_kl"]["mean"].get<double>(), mean, 1e-9);
  EXPECT_NEAR(paired["forward_kl"]["stderr"].get<double>(), std::sqrt(var / double(d.size())), 1e-9);
  // McNemar's counts from the greedy answers' correct flags.
  const auto a = rows_of(r.out + "/iter_0/test_generations.jsonl");
  const auto b = rows_of(r.out + "/control/iter_0/test_generations.jsonl");
  int64_t only_a = 0, only_b = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    only_a += a[i]["correct"].get<bool>() && !b[i]["correct"].get<bool>();
    only_b += !a[i]["correct"].get<bool>() && b[i]["correct"].get<bool>();
  }
  EXPECT_EQ(paired["exact_match"]["mcnemar"]["only_first"], only_a);
  EXPECT_EQ(paired["exact_match"]["mcnemar"]["only_second"], only_b);
  EXPECT_TRUE(paired.contains("heldout_forward_kl"));
  // The report: the paired table, error bars on the curves, and a further arm beside the run.
  const auto report = testkit::run_spinlm("report " + shell_quote(r.out) + " --arm " + shell_quote("again=" + r.out));
  ASSERT_EQ(report.exit_code, 0) << report.output;
  const std::string html = read_file(r.out + "/report.html");
  EXPECT_NE(html.find("paired over the same problems"), std::string::npos);
  EXPECT_NE(html.find("class=\"error-bar\""), std::string::npos);
  EXPECT_NE(html.find("aria-label=\"forward_kl\""), std::string::npos);
  EXPECT_NE(html.find(">again 0<"), std::string::npos);
  EXPECT_NE(testkit::run_spinlm("report " + shell_quote(r.out) + " --arm nolabel").exit_code, 0);
}

}  // namespace
}  // namespace spinlm
