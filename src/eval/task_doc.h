// One task document after the task's doc_to_text / doc_to_choice / doc_to_target have been
// applied: everything prompt construction and scoring need, independent of the task.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace spinlm {

struct EvalDoc {
  nlohmann::json row;  // the raw row (the harness compares docs by value: x != doc)
  int64_t line = 0;    // 1-based line in its file
  std::string text;    // doc_to_text (unused when multiple_input)
  std::vector<std::string> choices;  // doc_to_choice
  int64_t gold = 0;    // index of the correct choice (doc_to_target, or doc_to_text when multiple_input)
  std::string target;  // doc_to_target as text: generation reference, or multiple_input continuation
  // Winogrande's "partial evaluation": choices are alternative contexts, all scored on the
  // same continuation (target).
  bool multiple_input = false;
  std::vector<int> mc2_labels;  // TruthfulQA mc2: 1 for true answers (first), 0 for false
  std::string subset;           // MMLU subject (selects few-shot pool and description)
  std::string description;      // per-document description; empty: the task's
};

}  // namespace spinlm
