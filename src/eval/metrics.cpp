#include "eval/metrics.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "eval/py_regex.h"
#include "eval/py_string.h"

namespace spinlm {

int64_t argmax_first(const std::vector<double>& values) {
  check(!values.empty(), "argmax of an empty list");
  int64_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[best]) best = static_cast<int64_t>(i);
  }
  return best;
}

double metric_acc(const std::vector<double>& loglikelihoods, int64_t gold) {
  return argmax_first(loglikelihoods) == gold ? 1.0 : 0.0;
}

double metric_acc_norm(const std::vector<double>& loglikelihoods, const std::vector<std::string>& choices,
                       int64_t gold) {
  check(loglikelihoods.size() == choices.size(), "acc_norm: ", loglikelihoods.size(), " scores for ", choices.size(),
        " choices");
  std::vector<double> normalized(loglikelihoods.size());
  for (size_t i = 0; i < choices.size(); ++i) {
    // An empty choice divides by zero in the harness too (numpy gives -inf or nan).
    normalized[i] = loglikelihoods[i] / static_cast<double>(py::length(choices[i]));
  }
  return argmax_first(normalized) == gold ? 1.0 : 0.0;
}

double metric_mc2(const std::vector<double>& loglikelihoods, const std::vector<int>& labels) {
  check(loglikelihoods.size() == labels.size(), "mc2: ", loglikelihoods.size(), " scores for ", labels.size(),
        " labels");
  size_t split = 0;
  while (split < labels.size() && labels[split] != 0) ++split;
  // p_true / (sum p_true + sum p_false); the common factor exp(max) cancels, and factoring
  // it out keeps long answers (log-likelihoods of -1000) from underflowing to 0/0.
  double top = -std::numeric_limits<double>::infinity();
  for (double ll : loglikelihoods) top = std::max(top, ll);
  double p_true = 0, p_all = 0;
  for (size_t i = 0; i < loglikelihoods.size(); ++i) {
    const double p = std::exp(loglikelihoods[i] - top);
    p_all += p;
    if (i < split) p_true += p;
  }
  return p_true / p_all;
}

std::string apply_answer_filter(const AnswerFilter& filter, const std::string& response) {
  if (filter.regex_pattern.empty()) return response;
  const py::Regex regex(filter.regex_pattern);
  const auto matches = regex.findall(response);
  if (matches.empty() || filter.group_select >= static_cast<int>(matches.size())) return filter.fallback;
  // With several groups re.findall gives a tuple; the harness takes its first non-empty one.
  const auto& groups = matches[filter.group_select];
  std::string chosen;
  for (const auto& group : groups) {
    if (!group.empty()) {
      chosen = group;
      break;
    }
  }
  return py::strip(chosen);
}

double metric_exact_match(const std::string& prediction, const std::string& reference,
                          const ExactMatchOptions& options) {
  std::string pred = prediction, ref = reference;
  for (const auto& pattern : options.regexes_to_ignore) {
    const py::Regex regex(pattern);
    pred = regex.sub("", pred);
    ref = regex.sub("", ref);
  }
  if (options.ignore_case) {
    pred = py::lower(pred);
    ref = py::lower(ref);
  }
  if (options.ignore_punctuation) {
    // string.punctuation, as evaluate's exact_match removes it.
    static const std::string punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    auto drop = [](std::string text) {
      std::string out;
      for (char c : text) {
        if (punctuation.find(c) == std::string::npos) out.push_back(c);
      }
      return out;
    };
    pred = drop(pred);
    ref = drop(ref);
  }
  return pred == ref ? 1.0 : 0.0;
}

std::string metric_key(const std::string& metric) { return metric == "mc2" ? "acc" : metric; }

std::map<std::string, double> score_multiple_choice(const TaskConfig& config, const EvalDoc& doc,
                                                    const std::vector<double>& loglikelihoods) {
  std::map<std::string, double> values;
  for (const auto& metric : config.metrics) {
    if (metric == "acc") {
      values["acc"] = metric_acc(loglikelihoods, doc.gold);
    } else if (metric == "acc_norm") {
      values["acc_norm"] = metric_acc_norm(loglikelihoods, doc.choices, doc.gold);
    } else if (metric == "mc2") {
      values[metric_key(metric)] = metric_mc2(loglikelihoods, doc.mc2_labels);
    } else {
      fail("task ", config.name, ": metric '", metric, "' does not apply to multiple-choice tasks");
    }
  }
  return values;
}

std::map<std::string, double> score_generation(const TaskConfig& config, const EvalDoc& doc,
                                               const std::string& response) {
  std::map<std::string, double> values;
  for (const auto& metric : config.metrics) {
    check(metric == "exact_match", "task ", config.name, ": metric '", metric,
          "' does not apply to generation tasks (use exact_match)");
    values["exact_match"] =
        metric_exact_match(apply_answer_filter(config.filter, response), doc.target, config.exact_match);
  }
  return values;
}

double mean(const std::vector<double>& values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double mean_stderr(const std::vector<double>& values) {
  if (values.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  const double mu = mean(values);
  double squares = 0;
  for (double v : values) squares += (v - mu) * (v - mu);
  const double n = static_cast<double>(values.size());
  return std::sqrt(squares / (n - 1)) / std::sqrt(n);
}

}  // namespace spinlm
