// results.json in the shape lm-evaluation-harness writes it, and the terminal table:
//   {"results": {"<task>": {"acc": .., "acc_stderr": .., "acc_norm": .., "acc_norm_stderr": ..,
//                           "alias": "<task>"}, ...},
//    "configs": {"<task>": {task config}}, "versions": {"<task>": 1.0}, "n-shot": {"<task>": k},
//    "n-samples": {"<task>": {"effective": n}}, "config": {run settings}}
// A standard error over fewer than two documents is "N/A", as the harness writes it.
// Subsets (mmlu_<subject>) appear under results as tasks of their own.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "eval/evaluator.h"

namespace spinlm {

nlohmann::json results_to_json(const std::vector<TaskResult>& results, const nlohmann::json& run_config);

// A markdown table: Tasks | Version | Filter | n-shot | Metric | Value | ± | Stderr.
std::string format_results_table(const std::vector<TaskResult>& results);

}  // namespace spinlm
