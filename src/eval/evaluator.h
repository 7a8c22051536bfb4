// Runs tasks on a model: loads each task's documents and few-shot pool, builds every prompt
// (few-shot examples drawn in document order), asks the model (log-likelihoods or greedy
// generations), scores each document and aggregates mean and standard error per metric.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/collective.h"
#include "core/limits.h"
#include "eval/task_config.h"
#include "io/work_journal.h"
#include "model/transformer.h"
#include "text/text_codec.h"

namespace spinlm {

struct EvalOptions {
  std::string data_dir;
  int num_fewshot = -1;  // -1: each task's own; tasks defined 0-shot stay 0-shot (as the harness)
  int64_t limit = kNoLimit;  // only the first `limit` documents of each task
  int64_t batch_size = 16;
  int64_t max_length = 0;  // 0: the model's max_position_embeddings
  std::vector<int64_t> eos_ids;  // stop ids for generation (and the empty-context token: the first)
  bool show_progress = false;
  Ranks ranks;  // [dist] documents dealt round-robin to the ranks; every rank gets every result
  WorkJournal* journal = nullptr;  // finished work kept for a rerun, part = the task's name (io/work_journal.h)
};

// Mean and standard error of each metric over a set of documents.
struct MetricSummary {
  double value = 0.0;
  double stderr_value = 0.0;  // NaN for fewer than two documents ("N/A")
};

struct TaskResult {
  std::string name;
  TaskConfig config;  // with the few-shot count actually used
  int64_t num_docs = 0;
  std::map<std::string, MetricSummary> metrics;
  // Per-document metric values, in document order.
  std::vector<std::map<std::string, double>> doc_metrics;
  // Subsets ("mmlu_anatomy", ...) when the task reports them.
  std::vector<TaskResult> subsets;
};

// The prompt requests of one task, before the model is asked: exposed so that prompts can
// be checked without a model.
struct TaskPrompts {
  std::vector<EvalDoc> docs;
  std::vector<EvalDoc> fewshot_pool;
  // Multiple choice: (context, continuation) per choice per document.
  std::vector<std::vector<std::pair<std::string, std::string>>> loglikelihood;
  // Generation: the context per document.
  std::vector<std::string> generation;
  int num_fewshot = 0;
};
TaskPrompts build_task_prompts(const TaskDefinition& task, const EvalOptions& options);

TaskResult evaluate_task(const Transformer& model, const TextCodec& codec, const TaskDefinition& task,
                         const EvalOptions& options);

// The few-shot count a task runs with under options.
int effective_num_fewshot(const TaskConfig& config, int requested);

}  // namespace spinlm
