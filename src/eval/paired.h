// Paired comparisons of two models on the same problems (SPIN iteration t against the
// continued-SFT control at iteration t):
//   paired difference  d_i = a_i - b_i per problem; mean(d), its standard error
//                      sd(d) / sqrt(n) (sample standard deviation), n.
//   McNemar's test     for a yes/no outcome (exact match): b = problems only A gets right,
//                      c = only B; the exact two-sided p-value min(1, 2 * P[X <= min(b, c)])
//                      with X ~ Binomial(b + c, 1/2) (1 when b + c = 0).
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace spinlm {

struct PairedDifference {
  double mean = 0;    // mean of a - b
  double stderr_value = 0;  // NaN for fewer than two problems
  int64_t n = 0;
};
// a and b hold one value per problem, in the same order.
PairedDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b);

struct McNemar {
  int64_t only_a = 0;  // b: A right, B wrong
  int64_t only_b = 0;  // c: B right, A wrong
  int64_t n = 0;
  double p_value = 1;
};
McNemar mcnemar(const std::vector<bool>& a_correct, const std::vector<bool>& b_correct);

nlohmann::json to_json(const PairedDifference& d);
nlohmann::json to_json(const McNemar& m);

}  // namespace spinlm
