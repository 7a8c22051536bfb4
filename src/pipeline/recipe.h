// A SPIN recipe: the YAML file `spinlm run --config` reads. Keys use the names of uclaml/SPIN
// and alignment-handbook recipes where those exist. The whole file is validated before any
// work starts: an unknown key, a wrong type or an out-of-range value is an Error naming the
// key and FILE:LINE.
//
//   model_name_or_path: sft-model/      # p_0, a HuggingFace folder
//   output_dir: run/                   # optional; --output overrides
//   seed: 42
//   learning_rate: 5.0e-7              # training defaults for every iteration
//   beta: 0.1
//   loss_type: sigmoid                 # sigmoid (= logistic) | hinge | exponential | ipo
//   num_train_epochs: 2
//   per_device_train_batch_size: 8
//   gradient_accumulation_steps: 1
//   max_length: 1024
//   max_prompt_length: 512
//   warmup_ratio: 0.1
//   lr_scheduler_type: linear          # linear | cosine | constant
//   optim: rmsprop                     # rmsprop | adamw (adamw_torch accepted)
//   weight_decay: 0.0
//   max_grad_norm: 1.0
//   logging_steps: 10
//   sft_weight: 0.0
//   data:
//     train: sft.jsonl                 # conversations: prompts to answer, real answers
//     heldout: validation.jsonl        # optional: held-out reward accuracy and SFT NLL
//     test: test.jsonl                 # optional: greedy exact match of "#### N"
//     max_train_samples: 0             # 0 = all
//     max_heldout_samples: 0
//     max_test_samples: 0
//   generation:
//     max_new_tokens: 256
//     temperature: 1.0
//     top_p: 1.0
//     top_k: 0
//     min_p: 0.0
//     batch_size: 64
//     prompt_format: chat              # chat | spin-legacy
//   evaluation:
//     heldout_reward_accuracy: true
//     heldout_nll: true
//     exact_match: true
//     max_new_tokens: 64
//   iterations:                        # one entry per iteration, overriding the defaults
//     - {learning_rate: 5.0e-7, beta: 0.1}
//     - {learning_rate: 5.0e-7, beta: 0.1, mix_previous: true}
//   stop:                              # optional early end
//     reward_accuracy_tolerance: 0.05  # held-out reward accuracy within 0.5 +- this
//     patience: 0                      # iterations without a better exact match (0 = off)
//   control:                           # optional: continued SFT with the same steps
//     enabled: false
#pragma once
#include <optional>
#include <string>
#include <vector>

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

  // The global batch: per-device batch times accumulation steps.
  int64_t batch_size() const { return per_device_train_batch_size * gradient_accumulation_steps; }
};

struct DataSettings {
  std::string train;
  std::string heldout;  // empty: none
  std::string test;     // empty: none
  int64_t max_train_samples = 0;
  int64_t max_heldout_samples = 0;
  int64_t max_test_samples = 0;
};

struct GenerationSettings {
  int64_t max_new_tokens = 256;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  double min_p = 0.0;
  int64_t batch_size = 64;
  std::string prompt_format = "chat";  // chat | spin-legacy
};

struct EvaluationSettings {
  bool heldout_reward_accuracy = true;
  bool heldout_nll = true;
  bool exact_match = true;
  int64_t max_new_tokens = 64;
};

struct StopSettings {
  std::optional<double> reward_accuracy_tolerance;  // unset: never stop on it
  int64_t patience = 0;                             // 0: off
};

struct ControlSettings {
  bool enabled = false;
};

struct Recipe {
  std::string source;  // the file it came from ("" for an embedded recipe)
  std::string model_name_or_path;
  std::string output_dir;
  uint64_t seed = 42;
  DataSettings data;
  GenerationSettings generation;
  EvaluationSettings evaluation;
  std::vector<TrainSettings> iterations;  // defaults merged: one entry per iteration
  StopSettings stop;
  ControlSettings control;
};

// Parses and validates YAML text; source names it in errors. Relative paths in the recipe
// are resolved against base_dir (the recipe file's folder) when base_dir is not empty.
Recipe parse_recipe(const std::string& yaml_text, const std::string& source,
                    const std::string& base_dir = "");

// Reads and validates a recipe file.
Recipe load_recipe(const std::string& path);

// The recipe as JSON (every setting, defaults filled in): recorded in the run folder so a
// resumed run can tell whether the recipe changed.
std::string recipe_to_json(const Recipe& recipe);

}  // namespace spinlm
