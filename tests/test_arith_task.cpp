// The demo task: deterministic splits, correct answers (recomputed here from the question's
// numbers, independently of the generator), disjoint splits, the "#### N" checker.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "core/atomic_file.h"
#include "data/arith_task.h"
#include "io/jsonl.h"
#include "testkit.h"

namespace spinlm {
namespace {

std::vector<int64_t> numbers_in(const std::string& text) {
  std::vector<int64_t> out;
  static const std::regex number("[0-9]+");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), number); it != std::sregex_iterator(); ++it)
    out.push_back(std::stoll(it->str()));
  return out;
}

// The answer from the question's wording and numbers alone.
int64_t answer_from_question(const std::string& q) {
  const std::vector<int64_t> n = numbers_in(q);
  auto has = [&](const char* word) { return q.find(word) != std::string::npos; };
  if (has("gives away")) return n.at(0) + n.at(1) - n.at(2);
  if (has("boxes with")) return n.at(0) * n.at(1);
  if (has("dollars a day")) return n.at(0) * n.at(1) - n.at(2);
  if (has("equally among")) return n.at(0) / n.at(1);
  if (has("packs of")) return n.at(0) * n.at(1) + n.at(2);
  if (has("pages")) return n.at(0) + n.at(1) + n.at(2);
  ADD_FAILURE() << "unknown template: " << q;
  return -1;
}

// Every "x op y=z." step is right, and the solution ends with "#### answer".
void expect_valid_solution(const std::string& solution, int64_t answer) {
  static const std::regex step_re("([0-9]+)([-+*/])([0-9]+)=([0-9]+)\\.");
  int steps = 0;
  for (auto it = std::sregex_iterator(solution.begin(), solution.end(), step_re);
       it != std::sregex_iterator(); ++it, ++steps) {
    const int64_t x = std::stoll((*it)[1]), y = std::stoll((*it)[3]), z = std::stoll((*it)[4]);
    const char op = (*it)[2].str()[0];
    const int64_t expected = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
    EXPECT_EQ(z, expected) << solution;
    if (op == '/') EXPECT_EQ(x % y, 0) << solution;
  }
  EXPECT_GE(steps, 1) << solution;
  const std::string tail = "\n#### " + std::to_string(answer);
  ASSERT_GE(solution.size(), tail.size());
  EXPECT_EQ(solution.substr(solution.size() - tail.size()), tail) << solution;
}

TEST(ArithTask, SameSeedSameSplitsOtherSeedOther) {
  const ArithSplitSizes sizes{300, 50, 100};
  const ArithSplits a = make_arith_splits(7, sizes), b = make_arith_splits(7, sizes);
  const ArithSplits c = make_arith_splits(8, sizes);
  ASSERT_EQ(a.train.size(), 300u);
  ASSERT_EQ(a.validation.size(), 50u);
  ASSERT_EQ(a.test.size(), 100u);
  int differing = 0;
  for (size_t i = 0; i < a.train.size(); ++i) {
    EXPECT_EQ(arith_example_json(a.train[i]), arith_example_json(b.train[i]));
    differing += a.train[i].problem.question != c.train[i].problem.question;
  }
  EXPECT_GT(differing, 250);
}

TEST(ArithTask, AnswersAndEverySolutionAreCorrect) {
  const ArithSplits splits = make_arith_splits(1, {2000, 0, 0});
  std::set<int> templates;
  int several = 0;
  for (const ArithExample& e : splits.train) {
    const int64_t answer = answer_from_question(e.problem.question);
    EXPECT_EQ(e.problem.answer, answer) << e.problem.question;
    EXPECT_GE(answer, 0);
    for (const std::string& s : e.problem.solutions) expect_valid_solution(s, answer);
    const std::set<std::string> distinct(e.problem.solutions.begin(), e.problem.solutions.end());
    EXPECT_EQ(distinct.size(), e.problem.solutions.size());
    EXPECT_TRUE(distinct.count(e.solution));
    EXPECT_TRUE(arith_answer_correct(e.solution, answer));
    templates.insert(e.problem.template_id);
    several += e.problem.solutions.size() > 1;
    // ASCII only: the byte vocabulary has no trouble, and neither does a terminal.
    for (char ch : e.problem.question + e.solution) EXPECT_TRUE(ch > 0 && ch < 127);
  }
  EXPECT_EQ(templates.size(), size_t(kArithTemplates));
  EXPECT_GT(several, 1000);  // most problems have more than one valid solution
}

TEST(ArithTask, DataPicksSolutionsUniformly) {
  // Template "pages" with three distinct solutions: each chosen about a third of the time.
  const ArithSplits splits = make_arith_splits(3, {6000, 0, 0});
  int64_t counts[3] = {0, 0, 0}, total = 0;
  for (const ArithExample& e : splits.train) {
    if (e.problem.solutions.size() != 3) continue;
    for (int k = 0; k < 3; ++k) counts[k] += e.problem.solutions[k] == e.solution;
    ++total;
  }
  ASSERT_GT(total, 500);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(double(counts[k]) / total, 1.0 / 3, 0.06);
}

TEST(ArithTask, SplitsAreDisjointAndStableAsTrainGrows) {
  const ArithSplits small = make_arith_splits(11, {500, 100, 200});
  std::set<std::string> seen;
  for (const auto* split : {&small.train, &small.validation, &small.test})
    for (const ArithExample& e : *split) EXPECT_TRUE(seen.insert(e.problem.question).second);
  const ArithSplits big = make_arith_splits(11, {2000, 100, 200});
  for (size_t i = 0; i < small.test.size(); ++i)
    EXPECT_EQ(small.test[i].problem.question, big.test[i].problem.question);
}

TEST(ArithTask, JsonlRowsAreConversations) {
  const std::string dir = testkit::make_temp_dir("arith");
  const ArithSplits splits = make_arith_splits(5, {20, 0, 0});
  write_arith_jsonl(dir + "/train.jsonl", splits.train);
  const std::vector<JsonlRow> rows = read_jsonl(dir + "/train.jsonl");
  ASSERT_EQ(rows.size(), 20u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& m = rows[i].value.at("messages");
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].at("role"), "user");
    EXPECT_EQ(m[0].at("content"), splits.train[i].problem.question);
    EXPECT_EQ(m[1].at("role"), "assistant");
    EXPECT_EQ(m[1].at("content"), splits.train[i].solution);
    EXPECT_EQ(rows[i].value.at("answer").get<int64_t>(), splits.train[i].problem.answer);
  }
}

TEST(ArithTask, FinalAnswerExtraction) {
  EXPECT_EQ(extract_final_answer("3+4=7.\n#### 7"), 7);
  EXPECT_EQ(extract_final_answer("#### -12 apples"), -12);
  EXPECT_EQ(extract_final_answer("#### 1,234"), 1234);
  EXPECT_EQ(extract_final_answer("#### 5\n#### 6"), 6);  // the last marker counts
  EXPECT_FALSE(extract_final_answer("the answer is 7").has_value());
  EXPECT_FALSE(extract_final_answer("#### x").has_value());
  EXPECT_FALSE(extract_final_answer("####7").has_value());
  EXPECT_TRUE(arith_answer_correct("2*3=6.\n#### 6", 6));
  EXPECT_FALSE(arith_answer_correct("2*3=6.\n#### 60", 6));
  EXPECT_FALSE(arith_answer_correct("2*3=6.", 6));
}

}  // namespace
}  // namespace spinlm
