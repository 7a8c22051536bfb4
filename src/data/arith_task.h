// The demo's synthetic SFT task: short GSM8K-like arithmetic word problems whose worked
// solution ends in "#### N". Deterministic from a seed, so every machine builds the same
// train/validation/test splits.
//
// Several templates admit more than one valid worked solution (the order of additions, or
// of the two factors of a product). The data picks one uniformly, so p_data(y|x) is known
// exactly: 1/k over the k valid solutions of the problem. That lets an evaluation measure how
// far a model's samples are from the data distribution (SPIN's fixed point), next to the
// exact-match accuracy of the final answer.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace spinlm {

struct ArithProblem {
  int template_id = 0;                 // 0..kArithTemplates-1
  std::string question;                // the user turn
  std::vector<std::string> solutions;  // every valid worked solution, each ends "#### answer"
  int64_t answer = 0;
};

// One SFT example: a problem and the solution the data chose for it.
struct ArithExample {
  ArithProblem problem;
  std::string solution;
};

constexpr int kArithTemplates = 6;

struct ArithSplitSizes {
  int64_t train = 4000;
  int64_t validation = 500;
  int64_t test = 1000;
};

struct ArithSplits {
  std::vector<ArithExample> train, validation, test;
};

// A small deterministic generator (splitmix64): the standard library's distributions are not
// the same on every platform, this is.
class ArithRng {
 public:
  explicit ArithRng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform integer in [low, high].
  int64_t uniform(int64_t low, int64_t high);

 private:
  uint64_t state_;
};

// Draws one problem of a random template.
ArithProblem make_arith_problem(ArithRng& rng);

// Train, validation and test examples with pairwise distinct questions (no question occurs in
// two splits, nor twice in one). The same seed and sizes give the same splits.
ArithSplits make_arith_splits(uint64_t seed, const ArithSplitSizes& sizes);

// The conversation row of an example:
// {"messages":[{"role":"user",..},{"role":"assistant",..}], "answer": N, "solutions":[...]}.
nlohmann::json arith_example_json(const ArithExample& example);

// Writes examples as conversation JSONL, atomically.
void write_arith_jsonl(const std::string& path, const std::vector<ArithExample>& examples);

// The number after the last "#### " in text (digits with an optional '-', commas dropped,
// as GSM8K's answer extraction); nullopt when there is none.
std::optional<int64_t> extract_final_answer(const std::string& text);

// Exact match of the final answer.
bool arith_answer_correct(const std::string& response, int64_t answer);

}  // namespace spinlm
