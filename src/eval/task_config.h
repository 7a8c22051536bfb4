// What one evaluation task is, in lm-evaluation-harness v0.4.0 terms: how a prompt is laid
// out (description, target_delimiter, fewshot_delimiter), how few-shot examples are drawn,
// what is asked of the model (log-likelihoods of choices, or greedy generation) and how
// answers are scored. Built-in tasks (builtin_tasks.h) and task YAML files (task_yaml.h)
// both produce a TaskDefinition.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/task_doc.h"

namespace spinlm {

enum class OutputType { kMultipleChoice, kGenerateUntil };
enum class FewshotSamplerKind {
  kRandom,  // the harness's default sampler: random.Random(1234).sample per document
  kFirstN,  // "first_n": the first k few-shot documents (MMLU)
};

// The harness's exact_match options (HF evaluate's exact_match): each regex is removed from
// prediction and reference, then case and punctuation are optionally ignored.
struct ExactMatchOptions {
  bool ignore_case = false;
  bool ignore_punctuation = false;
  std::vector<std::string> regexes_to_ignore;
};

// A "regex" filter followed by "take_first": the first match's group (or the fallback).
struct AnswerFilter {
  std::string name = "none";
  std::string regex_pattern;  // empty: the response is used unchanged
  int group_select = 0;
  std::string fallback = "[invalid]";
};

struct GenerationSettings {
  std::vector<std::string> until;  // the model's EOS text is added, as the harness does
  int64_t max_gen_toks = 256;
};

// Metric names as they appear in results.json. "mc2" is computed as TruthfulQA's
// process_results_mc2 and reported under the key "acc", as the harness reports it.
struct TaskConfig {
  std::string name;
  OutputType output_type = OutputType::kMultipleChoice;
  std::string description;  // prepended to every prompt (a doc's own description wins)
  std::string target_delimiter = " ";
  std::string fewshot_delimiter = "\n\n";
  int num_fewshot = 0;
  FewshotSamplerKind sampler = FewshotSamplerKind::kRandom;
  // The harness draws k + 1 documents and drops the evaluated one when the task's
  // fewshot_split equals its test_split (both unset counts as equal). It changes which
  // random numbers are drawn, so it is part of the task's definition.
  bool fewshot_draws_extra = false;
  // Few-shot examples come from the pool rows with the same subset as the document (MMLU:
  // the dev questions of the same subject); per-subset results are reported as
  // "<task>_<subset>" besides the pooled "<task>".
  bool fewshot_by_subset = false;
  std::vector<std::string> metrics;  // acc, acc_norm, mc2, exact_match
  ExactMatchOptions exact_match;
  AnswerFilter filter;
  GenerationSettings generation;
  bool add_bos = false;  // prepend the tokenizer's BOS to every context
  double version = 1.0;  // the harness task's metadata version
  // The task's default data files, relative to --data-dir.
  std::string data_file;     // default "<name>.jsonl"
  std::string fewshot_file;  // default "<name>.fewshot.jsonl"

  nlohmann::json to_json() const;  // for results.json "configs"
};

// Turns one raw JSONL row into an EvalDoc; errors name `where` ("FILE:LINE") and the field.
using DocProcessor = std::function<EvalDoc(const nlohmann::json& row, const std::string& where)>;

struct TaskDefinition {
  TaskConfig config;
  DocProcessor process;
};

}  // namespace spinlm
