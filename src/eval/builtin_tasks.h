// The Open LLM Leaderboard tasks as lm-evaluation-harness v0.4.0 defines them, with the
// leaderboard's few-shot counts: arc_challenge (25, acc_norm), hellaswag (10, acc_norm),
// mmlu (5, acc), truthfulqa_mc2 (0, mc2), winogrande (5, acc), gsm8k (5, exact_match); and
// arc_easy, truthfulqa_mc1 beside them. Rows carry the HuggingFace datasets' fields.
#pragma once
#include <string>
#include <vector>

#include "eval/task_config.h"

namespace spinlm {

std::vector<std::string> builtin_task_names();
bool is_builtin_task(const std::string& name);
// Error listing the known names when there is no such task.
TaskDefinition builtin_task(const std::string& name);

// Task-specific text processing, exposed for tests.
// HellaSwag's utils.preprocess: strip, " [title]" -> ". ", drop "[...]" artefacts, "  " -> " ".
std::string hellaswag_preprocess(const std::string& text);
// TruthfulQA's fixed six-question QA prompt (part of every prompt, not few-shot examples).
const std::string& truthfulqa_qa_prompt();

}  // namespace spinlm
