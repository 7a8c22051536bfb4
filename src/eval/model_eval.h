// The evaluation of one model in memory: what `spinlm eval` reports (eval_run.h loads the
// model) and what `spinlm run` records for every model it makes. One code path, one
// run_config, split across the ranks of a job (core/collective.h): generations, scored rows
// and task documents are dealt round-robin, and every rank ends with every number.
//
// What it measures, each where the plan asks:
// - lm-evaluation-harness tasks (evaluator.h), the harness's semantics;
// - on conversation files whose rows carry a final answer (data/verifier.h): greedy exact
//   match of "#### N", one-sample accuracy at temperature 1, and the exact distance to p_data
//   where rows list their valid answers (answer_distribution.h), with the per-problem rows
//   kept (what the paired comparison with a control reads);
// - held-out SFT NLL and perplexity, and held-out reward accuracy against an opponent whose
//   scores of the same pairs the caller supplies (heldout.h).
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/collective.h"
#include "core/limits.h"
#include "eval/evaluator.h"
#include "eval/heldout.h"
#include "model/transformer.h"

namespace spinlm {

// A conversation file measured by its final answers.
struct AnswerSplit {
  std::string path;
  int64_t limit = kNoLimit;
  std::string key_prefix;    // metric names: "" -> exact_match, "heldout_" -> heldout_exact_match
  std::string files_prefix;  // FILES_PREFIX + generations.jsonl, samples.jsonl, distribution.jsonl
  bool exact_match = false;
  bool sample_accuracy = false;  // with exact_match
  bool distribution = false;
};

// How the answers of the splits are generated.
struct AnswerGeneration {
  int64_t max_new_tokens = 64;
  int64_t batch_size = 64;           // rows decoded together
  int64_t scoring_batch_size = 16;   // answers per forward for the distribution
  std::string prompt_format = "chat";
  uint64_t seed = 42;
};

struct ModelEvalPlan {
  std::string model_dir;  // tokenizer, stop tokens, and run_config's model_args
  std::vector<std::string> adapters;  // LoRA adapters on it (model/lora.h ModelSource), for model_args
  std::vector<TaskDefinition> tasks;
  EvalOptions task_options;  // eos_ids are the model's (filled in)
  std::vector<AnswerSplit> splits;
  AnswerGeneration answers;
  HeldoutSftOptions heldout_sft;      // files empty: not measured
  HeldoutPairsOptions heldout_pairs;  // files empty: not measured
  std::optional<ReferenceLogprobs> opponent;  // the opponent's scores of heldout_pairs (needed with them)
  bool show_progress = false;
  Ranks ranks;  // [dist] every part split over these ranks
  // Finished work kept for a rerun (io/work_journal.h), null: none. Its parts: each task's
  // name (a forward's log-likelihoods, a greedy generation), "heldout_sft" (a micro-batch),
  // "heldout_pairs" (a micro-batch of pair scores), "distribution" (a split's rows of this
  // rank), "exact_match"/"sample_accuracy" (a split's checked answers).
  WorkJournal* journal = nullptr;
};

struct ModelEvalResult {
  nlohmann::json run_config;        // the harness's "config": model, model_args, batch size, ..., device, dtype
  std::vector<TaskResult> tasks;
  nlohmann::json answers = nlohmann::json::object();  // exact_match, exact_match_stderr, _n, forward_kl, ...
  std::optional<HeldoutSftResult> heldout_sft;
  std::optional<HeldoutPairsResult> heldout_pairs;
};

ModelEvalResult evaluate_model(const Transformer& model, const ModelEvalPlan& plan);

// `spinlm eval`'s results.json: the harness's shape (results, config = run_config, n-shot,
// versions, ...), with "heldout": {"sft", "pairs"} and "answers" where measured.
nlohmann::json results_json(const ModelEvalResult& result, const ModelEvalPlan& plan);

// One flat map of numbers (a run's eval.json): the answers' metrics, heldout_nll and
// heldout_perplexity, heldout_reward_accuracy (+ _stderr), heldout_reward_margin,
// heldout_identical_pairs, heldout_rewards_real/generated, "<task>/<metric>" (+ _stderr), and
// the harness-shaped task results under "lm_eval" with the same "config".
nlohmann::json flat_metrics_json(const ModelEvalResult& result);

}  // namespace spinlm
