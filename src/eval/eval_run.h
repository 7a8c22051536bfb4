// The whole `spinlm eval` job as a library call: the opponent's scores of the held-out pairs
// (when asked for; the opponent alone in memory), then the model and its evaluation
// (model_eval.h, the path every model of `spinlm run` takes too), the table, results.json.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/collective.h"
#include "eval/evaluator.h"
#include "eval/heldout.h"

namespace spinlm {

struct EvalRunOptions {
  std::string model_dir;
  std::string adapter_dir;  // PEFT LoRA adapter run on top of the model unmerged (empty: none)
  std::vector<std::string> tasks;       // built-in task names
  std::vector<std::string> task_files;  // task YAML files
  EvalOptions eval;                     // data_dir, num_fewshot, limit, batch_size, ...
  std::string output_path;              // results.json (empty: not written)
  std::string heldout_sft;              // conversation JSONL (empty: skipped)
  std::string heldout_pairs;            // pairs JSONL (empty: skipped)
  std::string opponent_dir;             // needed with heldout_pairs
  double beta = 0.1;
  std::string loss = "logistic";        // the rewards' log-probs: per-token for ipo (train/losses.h)
  int64_t max_length = 1024;            // held-out sequences
  int64_t max_prompt_length = 512;
  std::string device = "auto";  // auto, cpu, cuda, cuda:N (model/device_choice.h)
  std::string dtype = "auto";   // auto (bf16 on a GPU, fp32 on the CPU), fp32, bf16, fp16
  bool print_table = true;
  Ranks ranks;  // [dist] the work split over the job's processes; rank 0 prints and writes
};

// Returns the results JSON (also written to output_path when set).
nlohmann::json run_evaluation(const EvalRunOptions& options);

}  // namespace spinlm
