// `spinlm demo --quick` end to end, and its split discipline: every choice (the model it
// selects; the stop rule, when a recipe enables it) reads validation numbers only, the test
// split gives only the reported numbers, and the three splits share no problem.
#include <gtest/gtest.h>

#include <set>

#include "core/atomic_file.h"
#include "io/jsonl.h"
#include "pipeline/demo.h"
#include "testkit.h"

namespace spinlm {
namespace {

using json = nlohmann::json;
using testkit::shell_quote;

json read_json(const std::string& path) { return json::parse(read_file(path)); }

// The user prompts of a conversation or generation file, in row order.
std::vector<std::string> prompts_of(const std::string& path, const char* field) {
  std::vector<std::string> prompts;
  for (const JsonlRow& row : read_jsonl(path)) {
    const json& messages = field ? row.value.at(field) : row.value.at("messages");
    for (const json& m : messages)
      if (m.at("role") == "user") prompts.push_back(m.at("content").get<std::string>());
  }
  return prompts;
}

TEST(Demo, QuickCompletesAndChoosesOnValidationOnly) {
  const std::string out = testkit::make_temp_dir("demo") + "/demo";
  const auto result = testkit::run_spinlm("demo --threads 1 --quick --out " + shell_quote(out));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const char* needle : {"SFT", "iter 2", "control 2", "report:", "test EM", "valid EM"})
    EXPECT_NE(result.output.find(needle), std::string::npos) << needle << "\n" << result.output;
  EXPECT_TRUE(file_exists(out + "/run/report.html"));
  EXPECT_TRUE(file_exists(out + "/run/iter_2/model/model.safetensors"));

  // The experiment's arms: the verified-negatives run without a control of its own, paired
  // against the SPIN run's control; the primary measure is printed.
  const json verified = read_json(out + "/run-verified/recipe.json");
  EXPECT_EQ(verified["generation"]["negatives"]["reject"], "verified");
  EXPECT_EQ(verified["control"]["enabled"], false);
  EXPECT_TRUE(file_exists(out + "/run-verified/iter_2/negatives.json"));
  const json paired = read_json(out + "/run-verified/iter_2/vs_control.json");
  EXPECT_EQ(paired["forward_kl"]["n"], 100);
  EXPECT_NE(result.output.find("primary measure (fixed in advance), SPIN: iter 2 - control 2, test forward KL"),
            std::string::npos)
      << result.output;
  EXPECT_NE(read_file(out + "/run/report.html").find("SPIN verified"), std::string::npos);
  for (const char* key : {"forward_kl", "valid_mass", "sample_accuracy", "heldout_forward_kl"})
    EXPECT_TRUE(read_json(out + "/run/iter_2/eval.json").contains(key)) << key;

  // The recipe evaluates choices on the validation split and reports on the test split.
  const json recipe = read_json(out + "/run/recipe.json");
  EXPECT_EQ(recipe["data"]["heldout"], out + "/data/validation.jsonl");
  EXPECT_EQ(recipe["data"]["test"], out + "/data/test.jsonl");
  EXPECT_EQ(recipe["evaluation"]["heldout_exact_match"], true);
  // No stop rule that could read anything (the demo runs its three iterations).
  EXPECT_TRUE(recipe["stop"]["reward_accuracy_stderrs"].is_null());
  EXPECT_EQ(recipe["stop"]["patience"], 0);

  // The splits are disjoint.
  const auto train = prompts_of(out + "/data/train.jsonl", nullptr);
  const auto validation = prompts_of(out + "/data/validation.jsonl", nullptr);
  const auto test = prompts_of(out + "/data/test.jsonl", nullptr);
  const std::set<std::string> seen(train.begin(), train.end());
  std::set<std::string> held(validation.begin(), validation.end());
  for (const std::string& p : test) EXPECT_TRUE(!seen.count(p) && !held.count(p)) << "test problem in train/validation: " << p;
  for (const std::string& p : validation) EXPECT_FALSE(seen.count(p)) << "validation problem in train: " << p;
  // Validation exact match was measured on validation problems, test exact match on test ones.
  for (const std::string& p : prompts_of(out + "/run/iter_1/heldout_generations.jsonl", "generated"))
    EXPECT_TRUE(held.count(p)) << p;
  const std::set<std::string> tested(test.begin(), test.end());
  for (const std::string& p : prompts_of(out + "/run/iter_1/test_generations.jsonl", "generated"))
    EXPECT_TRUE(tested.count(p)) << p;

  // The selected model is the best validation exact match (the earliest on ties),
  // recomputed here from the eval files; the table marks it and says how it was chosen.
  std::string best_label;
  double best = -1;
  const std::vector<std::pair<std::string, std::string>> models = {{"SFT", "sft_eval.json"},
                                                                   {"iter 0", "iter_0/eval.json"},
                                                                   {"iter 1", "iter_1/eval.json"},
                                                                   {"iter 2", "iter_2/eval.json"}};
  for (const auto& [label, file] : models) {
    const json eval = read_json(out + "/run/" + file);
    EXPECT_EQ(eval["heldout_exact_match_n"], 32) << file;
    EXPECT_EQ(eval["exact_match_n"], 100) << file;
    if (eval["heldout_exact_match"].get<double>() > best) best = eval["heldout_exact_match"], best_label = label;
  }
  EXPECT_NE(result.output.find("\n" + best_label + " *"), std::string::npos) << best_label << "\n" << result.output;
  EXPECT_NE(result.output.find("* selected on the validation split by heldout_exact_match"), std::string::npos)
      << result.output;
}

// --full's arms, as recipes (running them takes about 20 minutes; `demo --quick --full`
// takes a few). The hyperparameters are the demo's except where the arm says otherwise.
TEST(Demo, FullAddsBetaOneAndThePlateauedSftArms) {
  DemoOptions o;
  o.out_dir = "out";
  EXPECT_EQ(demo_arms(o).size(), 1u);
  o.full = true;
  const std::vector<DemoArm> arms = demo_arms(o);
  ASSERT_EQ(arms.size(), 3u);
  const Recipe spin = demo_recipe(o);
  EXPECT_TRUE(arms[0].recipe.generation.negatives.reject_verified);
  EXPECT_EQ(arms[1].recipe.output_dir, "out/run-beta1");
  for (size_t t = 0; t < spin.iterations.size(); ++t) {
    EXPECT_EQ(arms[1].recipe.iterations[t].beta, 1.0);
    EXPECT_EQ(arms[1].recipe.iterations[t].learning_rate, spin.iterations[t].learning_rate);
    EXPECT_EQ(arms[2].recipe.iterations[t].beta, spin.iterations[t].beta);
  }
  for (size_t a = 0; a < 2; ++a) {
    EXPECT_TRUE(arms[a].paired_with_spin_control);
    EXPECT_FALSE(arms[a].recipe.control.enabled);
    EXPECT_EQ(arms[a].recipe.model_name_or_path, spin.model_name_or_path);
  }
  // The plateau arm starts elsewhere and so has its own control.
  EXPECT_FALSE(arms[2].paired_with_spin_control);
  EXPECT_TRUE(arms[2].recipe.control.enabled);
  EXPECT_EQ(arms[2].recipe.output_dir, "out/run-plateau");
}

}  // namespace
}  // namespace spinlm
