// A SPIN recipe: the YAML file `spinlm run --config` reads. Keys use the names of uclaml/SPIN
// and alignment-handbook recipes where those exist. The whole file is validated before any
// work starts: an unknown key (with the nearest known one suggested), a wrong type or an
// out-of-range value is an Error naming the key and FILE:LINE.
//
// The keys, their defaults and their meaning are declared once, in recipe.cpp's tables;
// `spinlm run --list-keys` prints them (docs/recipe-keys.md is that output). The shape:
//
//   model_name_or_path: sft-model/      # top-level keys, then the training keys (the defaults
//   learning_rate: 5.0e-7               # of every iteration)
//   data: {train: sft.jsonl, heldout: validation.jsonl, test: test.jsonl}
//   generation: {max_new_tokens: 256, negatives: {reject: none}}
//   evaluation: {exact_match: true, tasks: [arc_challenge], data_dir: eval-data/}
//   iterations:                         # one map of training keys per iteration
//     - {learning_rate: 5.0e-7}
//     - {learning_rate: 5.0e-7, mix_previous: true}
//   stop: {reward_accuracy_stderrs: 2}
//   control: {enabled: true}
//
// A count limit (max_*_samples, evaluation.limit) is null or absent for "no limit"
// (core/limits.h). The task names and files, data_dir and every task's data files are checked
// (rows parsed, few-shot pools drawn) when the recipe is read. device, torch_dtype and bf16
// are top-level keys (every model of the run); the other training keys may also be set per
// iteration.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/limits.h"
#include "model/lora.h"

namespace spinlm {

// What the trainer needs for one iteration (defaults merged with the iteration's overrides).
struct TrainSettings {
  double learning_rate = 5e-7;
  double beta = 0.1;
  std::string loss = "logistic";  // logistic | hinge | exponential | ipo
  int64_t num_train_epochs = 2;
  int64_t per_device_train_batch_size = 8;
  int64_t gradient_accumulation_steps = 1;
  int64_t max_length = 1024;
  int64_t max_prompt_length = 512;
  double warmup_ratio = 0.1;
  std::string lr_scheduler_type = "linear";  // linear | cosine | constant
  std::string optim = "rmsprop";             // rmsprop | adamw
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;
  int64_t logging_steps = 10;
  double sft_weight = 0.0;
  // uclaml/SPIN trains iteration t on iter(t-1) + iter(t) pairs.
  bool mix_previous = false;
  // Recompute each decoder layer in the backward pass: activation memory of one layer input
  // per layer instead of everything a layer keeps, for one more forward.
  bool gradient_checkpointing = false;
  // Storage of the optimizer state, as `spinlm train --optimizer-state-dtype` names it:
  // fp32 (a bf16 model then also gets fp32 master weights) | bf16 (no master copy).
  std::string optimizer_state_dtype = "fp32";
  // > 0: a resumable checkpoint every save_steps optimizer steps inside the iteration's
  // training (checkpoint-<step>/, the latest kept); 0: at epoch ends only.
  int64_t save_steps = 0;
  // A limit: micro-batches hold pairs up to this many packed tokens (prompt + both answers,
  // data/packing.h) instead of per_device_train_batch_size pairs; the global batch stays
  // batch_size() pairs. kNoLimit: no token budget.
  int64_t max_tokens_per_micro_batch = kNoLimit;
  // LoRA: lora.r > 0 when use_peft is true (lora_r, default 16, as TRL's ModelConfig).
  LoraOptions lora;

  // The global batch: per-device batch times accumulation steps.
  int64_t batch_size() const { return per_device_train_batch_size * gradient_accumulation_steps; }
};

struct DataSettings {
  std::string train;
  std::string heldout;  // empty: none
  std::string test;     // empty: none
  int64_t max_train_samples = kNoLimit;
  int64_t max_heldout_samples = kNoLimit;
  int64_t max_test_samples = kNoLimit;
};

// Verifier-filtered negatives, an extension (ReST-EM's filter, not the paper's method): a
// generated answer that the verifier accepts (data/verifier.h) is drawn again, up to
// max_resamples times, and the prompt gives no pair when every draw was accepted.
struct NegativeSettings {
  bool reject_verified = false;          // reject: verified | none
  std::string verifier = "final_answer";  // final_answer | solution
  int64_t max_resamples = 4;
};

// (Not named GenerationSettings: eval/task_config.h has a type of that name.)
struct SamplingSettings {
  int64_t max_new_tokens = 256;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  double min_p = 0.0;
  int64_t batch_size = 64;
  std::string prompt_format = "chat";  // chat | spin-legacy
  NegativeSettings negatives;
};

struct EvaluationSettings {
  bool heldout_reward_accuracy = true;
  bool heldout_nll = true;
  bool exact_match = true;           // greedy "#### N" exact match on data.test (reported)
  bool heldout_exact_match = false;  // the same on data.heldout (validation: for choices)
  // One answer sampled at temperature 1 per problem, its "#### N" checked, on every split whose
  // exact match is evaluated ("sample_accuracy", "heldout_sample_accuracy").
  bool sample_accuracy = false;
  // The exact distance to p_data (eval/answer_distribution.h) on data.test and data.heldout,
  // whose rows must list their valid answers ("solutions").
  bool distribution = false;
  // A warning in run.log when an iteration's training lowers the real answers' summed
  // log-prob (logps/real) by more than this many nats while the margin grows (likelihood
  // displacement); 0 turns it off.
  double displacement_warning = 2.0;
  int64_t max_new_tokens = 64;
  // lm-evaluation-harness tasks (src/eval, docs/eval.md) run on every evaluated model.
  std::vector<std::string> tasks;       // built-in task names (arc_challenge, gsm8k, ...)
  std::vector<std::string> task_files;  // task YAML files
  std::string data_dir;                 // DATA_DIR/<task>.jsonl (+ .fewshot.jsonl)
  int64_t num_fewshot = -1;             // -1: each task's own count
  int64_t limit = kNoLimit;             // documents per task
  int64_t batch_size = 16;

  bool has_tasks() const { return !tasks.empty() || !task_files.empty(); }
};

// The stop rule reads only validation measurements (data.heldout), never data.test.
struct StopSettings {
  // The fixed point: held-out reward accuracy (a tie one half) within this many standard
  // errors of 0.5 ends the run, once the iteration's training moved the model (the mean
  // training margin of its last logged window is at least min_train_margin). Unset: off.
  std::optional<double> reward_accuracy_stderrs;
  double min_train_margin = 0.1;
  int64_t patience = 0;  // 0: off
  // What patience watches: heldout_exact_match (higher is better), heldout_nll or
  // heldout_forward_kl (lower is better).
  std::string metric;  // empty until parsed: the first of them that is evaluated
};

struct ControlSettings {
  bool enabled = false;
};

// What a run keeps on disk of the models it trains.
struct CheckpointSettings {
  // false (default): once an iteration's training step is done, the weights and optimizer
  // state of every epoch-*/checkpoint-* folder are deleted (about 3x the model size each);
  // the last checkpoint's trainer_state.json is kept, so `spinlm train --resume` on the
  // folder reports the training as finished.
  bool keep = false;
  // LoRA iterations: true (default) writes p_{t+1} merged to iter_T/model/; false keeps only
  // iter_T/adapter/, and p_{t+1} is p_t's source with the adapter appended (model/lora.h
  // ModelSource), rebuilt from p_0 and the adapters when it is not in memory.
  bool save_merged = true;
};

// Where every model of the run lives and the dtype it runs and trains in: the top-level
// keys device, torch_dtype and bf16. resolve_placement combines them with `spinlm run
// --device/--dtype`.
struct PlacementSettings {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  std::string dtype = "auto";   // auto | fp32 | bf16 (from torch_dtype and bf16)
  std::string device_key;       // "device: cuda at R.yaml:3"; empty when the recipe has no device
  std::string device_at;        // its FILE:LINE ("R.yaml:3")
  std::string dtype_key;        // "bf16: true at R.yaml:4"; empty when the recipe leaves the dtype open
};

struct Recipe {
  std::string source;  // the file it came from ("" for an embedded recipe)
  std::string model_name_or_path;
  std::string output_dir;
  uint64_t seed = 42;
  PlacementSettings placement;
  DataSettings data;
  SamplingSettings generation;
  EvaluationSettings evaluation;
  std::vector<TrainSettings> iterations;  // defaults merged: one entry per iteration
  StopSettings stop;
  ControlSettings control;
  CheckpointSettings checkpoints;
};

// Parses and validates YAML text; source names it in errors. Relative paths in the recipe
// are resolved against base_dir (the recipe file's folder) when base_dir is not empty.
Recipe parse_recipe(const std::string& yaml_text, const std::string& source,
                    const std::string& base_dir = "");

// Reads and validates a recipe file.
Recipe load_recipe(const std::string& path);

// The device and dtype option values of a run (resolve_train_device's input) and where each
// came from, for messages ("--device", "bf16: true at R.yaml:4", "default").
struct RunPlacement {
  std::string device, dtype;
  std::string device_from, dtype_from;
};

// How the recipe's placement and `spinlm run --device D --dtype T` combine ("" and "auto"
// leave a value open):
//   device: the command line wins (the device does not change what a run computes, so a run
//           may resume on another one); the recipe's device applies when --device is open.
//   dtype:  the recipe (torch_dtype / bf16) and --dtype must agree when both are given, since
//           the dtype changes the results; either one alone decides; neither: auto (bf16 on
//           a GPU, fp32 on the CPU). A contradiction is an Error naming the key, its
//           FILE:LINE and --dtype.
RunPlacement resolve_placement(const PlacementSettings& recipe, const std::string& device_option,
                               const std::string& dtype_option);

// resolve_train_device (train/train_device.h) for a placement; when the recipe chose the
// device and this machine or build lacks it, the Error names the key and its FILE:LINE.
struct TrainDevice;
TrainDevice resolve_run_device(const PlacementSettings& recipe, const RunPlacement& placement);

// The recipe as JSON (every setting, defaults filled in): recorded in the run folder so a
// resumed run can tell whether the recipe changed.
std::string recipe_to_json(const Recipe& recipe);

// Every recipe key with its default and one line of help, as YAML (`spinlm run --list-keys`;
// docs/recipe-keys.md is this text).
std::string recipe_key_list();

}  // namespace spinlm
