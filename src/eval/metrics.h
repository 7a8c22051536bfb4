// Per-document metrics and their aggregation, as lm-evaluation-harness v0.4.0 computes them:
// acc = [argmax of the choices' log-likelihoods is the gold one] (first maximum wins, like
// np.argmax); acc_norm divides each log-likelihood by the choice's length in characters;
// TruthfulQA mc2 = sum of p(true) / sum of p(all answers); exact_match after the task's
// answer filter and regexes_to_ignore. Aggregation is the mean, its standard error the
// sample standard deviation over sqrt(n) (metrics.mean_stderr).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "eval/task_config.h"

namespace spinlm {

int64_t argmax_first(const std::vector<double>& values);
double metric_acc(const std::vector<double>& loglikelihoods, int64_t gold);
// choice_lengths: the choices' lengths in characters (Python len).
double metric_acc_norm(const std::vector<double>& loglikelihoods, const std::vector<std::string>& choices,
                       int64_t gold);
// labels: 1 for true answers, which come first; split at the first 0 as the harness does.
double metric_mc2(const std::vector<double>& loglikelihoods, const std::vector<int>& labels);

// The task's filter (regex + take_first) applied to a generated response.
std::string apply_answer_filter(const AnswerFilter& filter, const std::string& response);
// HF evaluate's exact_match for one pair, with the harness's options.
double metric_exact_match(const std::string& prediction, const std::string& reference,
                          const ExactMatchOptions& options);

// The metric values of one multiple-choice document, keyed as results.json names them.
std::map<std::string, double> score_multiple_choice(const TaskConfig& config, const EvalDoc& doc,
                                                    const std::vector<double>& loglikelihoods);
std::map<std::string, double> score_generation(const TaskConfig& config, const EvalDoc& doc,
                                               const std::string& response);
// The key a metric is reported under ("mc2" is reported as "acc").
std::string metric_key(const std::string& metric);

double mean(const std::vector<double>& values);
// sample_stddev / sqrt(n); NaN for fewer than two values (the harness writes "N/A").
double mean_stderr(const std::vector<double>& values);

}  // namespace spinlm
