#include "eval/answer_distribution.h"

#include <cmath>
#include <map>

#include "core/error.h"
#include "data/conversation.h"
#include "data/pairs.h"
#include "eval/loglikelihood.h"
#include "eval/metrics.h"
#include "io/jsonl.h"

namespace spinlm {
namespace {

// The row's valid answers and their normalised weights.
void valid_answers(const nlohmann::json& row, const std::string& where, std::vector<std::string>& answers,
                   std::vector<double>& weights) {
  check(row.contains("solutions") && row["solutions"].is_array() && !row["solutions"].empty(), where,
        ": field \"solutions\" must be a non-empty list of the problem's valid answers");
  answers.clear();
  weights.clear();
  for (const nlohmann::json& s : row["solutions"]) {
    check(s.is_string(), where, ": field \"solutions\" must hold strings, got ", s.dump());
    answers.push_back(s.get<std::string>());
  }
  if (row.contains("solution_weights")) {
    const nlohmann::json& w = row["solution_weights"];
    check(w.is_array() && w.size() == answers.size(), where,
          ": field \"solution_weights\" must be a list with one weight per solution");
    for (const nlohmann::json& v : w) {
      check(v.is_number() && v.get<double>() >= 0, where, ": field \"solution_weights\" must hold weights >= 0");
      weights.push_back(v.get<double>());
    }
  } else {
    weights.assign(answers.size(), 1.0);
  }
  double total = 0;
  for (double v : weights) total += v;
  check(total > 0, where, ": field \"solution_weights\" sums to 0");
  for (double& v : weights) v /= total;
  // The same text listed twice is one answer with the summed weight.
  std::map<std::string, size_t> first;
  std::vector<std::string> unique_answers;
  std::vector<double> unique_weights;
  for (size_t i = 0; i < answers.size(); ++i) {
    auto [it, inserted] = first.emplace(answers[i], unique_answers.size());
    if (inserted) {
      unique_answers.push_back(answers[i]);
      unique_weights.push_back(weights[i]);
    } else {
      unique_weights[it->second] += weights[i];
    }
  }
  answers = std::move(unique_answers);
  weights = std::move(unique_weights);
}

}  // namespace

ProblemDistribution problem_distribution(std::vector<double> logprobs, std::vector<double> p_data) {
  check(logprobs.size() == p_data.size() && !logprobs.empty(), "answer distribution: one log-prob per valid answer");
  ProblemDistribution d;
  d.logprobs = std::move(logprobs);
  d.p_data = std::move(p_data);
  const size_t k = d.logprobs.size();
  double abs_sum = 0;
  for (size_t i = 0; i < k; ++i) {
    const double p = std::exp(d.logprobs[i]);
    d.valid_mass += p;
    abs_sum += std::abs(p - d.p_data[i]);
    if (d.p_data[i] > 0) d.forward_kl += d.p_data[i] * (std::log(d.p_data[i]) - d.logprobs[i]);
  }
  d.tv = 0.5 * (abs_sum + std::max(0.0, 1.0 - d.valid_mass));
  // The shape among valid answers, from log-probs so that a tiny valid mass keeps its shape.
  double max_logprob = -INFINITY;
  for (double v : d.logprobs) max_logprob = std::max(max_logprob, v);
  double normaliser = 0;
  for (double v : d.logprobs) normaliser += std::exp(v - max_logprob);
  double shape_abs = 0;
  for (size_t i = 0; i < k; ++i) {
    const double q = std::exp(d.logprobs[i] - max_logprob) / normaliser;
    shape_abs += std::abs(q - d.p_data[i]);
    if (q > 0) d.shape_entropy -= q * std::log(q);
  }
  d.shape_tv = 0.5 * shape_abs;
  return d;
}

bool rows_list_valid_answers(const std::string& file) {
  JsonlReader reader(file);
  nlohmann::json row;
  return reader.next(row) && row.contains("solutions");
}

std::vector<ProblemDistribution> score_answer_distribution(const Transformer& model, const TextCodec& codec,
                                                           const StopTokens& stop,
                                                           const AnswerDistributionOptions& options) {
  struct Problem {
    int64_t index;
    size_t first_request;
    std::vector<double> weights;
  };
  std::vector<Problem> problems;
  std::vector<LoglikelihoodRequest> requests;
  JsonlReader reader(options.file);
  int64_t index = 0;
  for (nlohmann::json row; reader.next(row); ++index) {
    if (has_limit(options.limit) && index >= options.limit) break;
    if (index % options.shard_count != options.shard_index) continue;
    const std::string where = reader.where();
    std::vector<std::string> answers;
    Problem problem{index, requests.size(), {}};
    valid_answers(row, where, answers, problem.weights);
    const Exchange exchange = first_exchange(parse_conversation(row, where), where);
    for (const std::string& answer : answers) {
      const PromptResponseIds ids = encode_prompt_response(codec, {exchange.prompt, {"assistant", answer}}, stop, where);
      check(!ids.prompt.empty(), where, ": the prompt encodes to no tokens");
      requests.push_back({ids.prompt, ids.response});
    }
    problems.push_back(std::move(problem));
  }
  check(index > 0, options.file, ": no rows to score");
  if (problems.empty()) return {};  // a shard of more ranks than rows
  LoglikelihoodOptions scoring;
  scoring.batch_size = options.batch_size;
  scoring.show_progress = options.show_progress;
  const std::vector<LoglikelihoodResult> scores = score_loglikelihood(model, requests, scoring);
  std::vector<ProblemDistribution> out;
  for (const Problem& problem : problems) {
    std::vector<double> logprobs;
    for (size_t i = 0; i < problem.weights.size(); ++i) logprobs.push_back(scores[problem.first_request + i].logprob);
    out.push_back(problem_distribution(std::move(logprobs), problem.weights));
    out.back().index = problem.index;
  }
  return out;
}

nlohmann::json summarize_distribution(const std::vector<ProblemDistribution>& problems, const std::string& prefix) {
  nlohmann::json out = nlohmann::json::object();
  const auto add = [&](const std::string& name, double ProblemDistribution::*field) {
    std::vector<double> values;
    for (const ProblemDistribution& p : problems) values.push_back(p.*field);
    out[prefix + name] = mean(values);
    const double se = mean_stderr(values);
    if (std::isfinite(se)) out[prefix + name + "_stderr"] = se;
  };
  add("valid_mass", &ProblemDistribution::valid_mass);
  add("tv", &ProblemDistribution::tv);
  add("forward_kl", &ProblemDistribution::forward_kl);
  add("shape_tv", &ProblemDistribution::shape_tv);
  add("shape_entropy", &ProblemDistribution::shape_entropy);
  out[prefix + "distribution_n"] = static_cast<int64_t>(problems.size());
  return out;
}

nlohmann::json to_json(const ProblemDistribution& p) {
  return {{"index", p.index},       {"valid_mass", p.valid_mass}, {"tv", p.tv},
          {"forward_kl", p.forward_kl}, {"shape_tv", p.shape_tv},   {"shape_entropy", p.shape_entropy},
          {"logprobs", p.logprobs}, {"p_data", p.p_data}};
}

ProblemDistribution problem_from_json(const nlohmann::json& row, const std::string& where) {
  check(row.is_object() && row.contains("logprobs") && row.contains("p_data") && row.contains("index"), where,
        ": not a per-problem distribution row (fields index, logprobs, p_data)");
  ProblemDistribution p = problem_distribution(row["logprobs"].get<std::vector<double>>(),
                                               row["p_data"].get<std::vector<double>>());
  p.index = row["index"].get<int64_t>();
  return p;
}

}  // namespace spinlm
