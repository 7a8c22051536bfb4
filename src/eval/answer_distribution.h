// Exact distance between a model's answer distribution and the data's, on tasks whose rows
// list every valid answer: {"messages": [.., user, assistant], "solutions": [s_1..s_k],
// "solution_weights": [w_1..w_k]} (weights optional: uniform, as the arith task's data is;
// normalised to sum 1). p_data(.|x) is zero outside S(x) = {s_1..s_k}.
//
// Per problem x, each s in S(x) is teacher-forced exactly as generation would emit it
// (the prompt and response ids of data/pairs.h: the chat template's generation prompt, the
// answer cut after its first stop token) to give p(s|x) = exp(log p(s|x)). Then
//   valid_mass   M = sum_s p(s|x)
//   tv           1/2 [ sum_s |p(s|x) - p_data(s|x)| + (1 - M) ]         (exact)
//   forward_kl   KL(p_data || p) = sum_s p_data(s|x) log(p_data(s|x) / p(s|x))   nats per answer
//   shape_tv     TV between p(.|x, valid) = p(s|x) / M and p_data(.|x)
//   shape_entropy  entropy of p(.|x, valid), nats (log k for the uniform shape; 0 when the
//                model has collapsed onto one solution)
// The summary holds the mean over problems of each, with its standard error (sample standard
// deviation / sqrt(n)) as "<name>_stderr".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/limits.h"
#include "model/stop_tokens.h"
#include "model/transformer.h"
#include "text/text_codec.h"

namespace spinlm {

struct ProblemDistribution {
  int64_t index = 0;  // the row's position among the file's rows
  std::vector<double> logprobs;  // log p(s|x) per valid answer, in the row's order
  std::vector<double> p_data;    // p_data(s|x), same order
  double valid_mass = 0, tv = 0, forward_kl = 0, shape_tv = 0, shape_entropy = 0;
};

// The metrics of one problem from its answers' log-probs and data probabilities.
ProblemDistribution problem_distribution(std::vector<double> logprobs, std::vector<double> p_data);

struct AnswerDistributionOptions {
  std::string file;       // conversation rows with "solutions"
  int64_t limit = kNoLimit;  // only the first `limit` rows
  int64_t batch_size = 16;
  bool show_progress = false;
  // One rank's share: only the rows i with i % shard_count == shard_index (indices stay the
  // file's, so the shares merge by index).
  int64_t shard_index = 0, shard_count = 1;
};

// True when the file's first row lists its valid answers (the metrics are offered).
bool rows_list_valid_answers(const std::string& file);

// Every row of options.file; a row without "solutions", or with malformed weights, is an
// Error naming FILE:LINE and the field.
std::vector<ProblemDistribution> score_answer_distribution(const Transformer& model, const TextCodec& codec,
                                                           const StopTokens& stop,
                                                           const AnswerDistributionOptions& options);

// {"<prefix>valid_mass": mean, "<prefix>valid_mass_stderr": .., ... "<prefix>distribution_n": n}.
nlohmann::json summarize_distribution(const std::vector<ProblemDistribution>& problems, const std::string& prefix);

// One JSONL row per problem (index, the five metrics, logprobs): what paired comparisons read.
nlohmann::json to_json(const ProblemDistribution& problem);
ProblemDistribution problem_from_json(const nlohmann::json& row, const std::string& where);

}  // namespace spinlm
