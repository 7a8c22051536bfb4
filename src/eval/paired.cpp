#include "eval/paired.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "eval/metrics.h"

namespace spinlm {

PairedDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b) {
  check(a.size() == b.size() && !a.empty(), "paired difference: the two models were measured on different problems (",
        a.size(), " and ", b.size(), " values)");
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return {mean(d), mean_stderr(d), static_cast<int64_t>(d.size())};
}

McNemar mcnemar(const std::vector<bool>& a_correct, const std::vector<bool>& b_correct) {
  check(a_correct.size() == b_correct.size() && !a_correct.empty(),
        "McNemar's test: the two models were measured on different problems");
  McNemar m;
  m.n = static_cast<int64_t>(a_correct.size());
  for (size_t i = 0; i < a_correct.size(); ++i) {
    m.only_a += a_correct[i] && !b_correct[i];
    m.only_b += !a_correct[i] && b_correct[i];
  }
  const int64_t discordant = m.only_a + m.only_b;
  if (discordant == 0) return m;
  // P[X <= k] for X ~ Binomial(discordant, 1/2), summed in log space.
  const int64_t k = std::min(m.only_a, m.only_b);
  double tail = 0;
  for (int64_t j = 0; j <= k; ++j) {
    const double log_term = std::lgamma(double(discordant) + 1) - std::lgamma(double(j) + 1) -
                            std::lgamma(double(discordant - j) + 1) - double(discordant) * std::log(2.0);
    tail += std::exp(log_term);
  }
  m.p_value = std::min(1.0, 2.0 * tail);
  return m;
}

nlohmann::json to_json(const PairedDifference& d) {
  nlohmann::json out = {{"mean", d.mean}, {"n", d.n}};
  out["stderr"] = std::isfinite(d.stderr_value) ? nlohmann::json(d.stderr_value) : nlohmann::json("N/A");
  return out;
}

nlohmann::json to_json(const McNemar& m) {
  return {{"only_first", m.only_a}, {"only_second", m.only_b}, {"n", m.n}, {"p_value", m.p_value}};
}

}  // namespace spinlm
