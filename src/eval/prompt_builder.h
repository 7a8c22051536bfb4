// Prompts as the harness's fewshot_context and construct_requests build them:
//   description + (shot_1 + fd + ... + shot_k + fd) + query
// where each shot is doc_to_text + target_delimiter + answer text, fd the fewshot_delimiter;
// a multiple-choice request is (context, target_delimiter + choice) per choice; a
// multiple-input request (Winogrande) is (prefix + choice, target_delimiter + target).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "eval/task_config.h"

namespace spinlm {

// One few-shot example: question text, the target delimiter and the correct answer's text.
std::string fewshot_example(const TaskConfig& config, const EvalDoc& doc);

// Everything before the query: the description, then the examples each followed by the
// fewshot delimiter (just the description when there are none).
std::string fewshot_prefix(const TaskConfig& config, const EvalDoc& doc, const std::vector<const EvalDoc*>& shots);

// (context, continuation) pairs whose log-likelihoods a multiple-choice doc needs, in
// choice order.
std::vector<std::pair<std::string, std::string>> loglikelihood_requests(const TaskConfig& config, const EvalDoc& doc,
                                                                        const std::string& prefix);

// The context a generation task continues.
std::string generation_context(const EvalDoc& doc, const std::string& prefix);

}  // namespace spinlm
