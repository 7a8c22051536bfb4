// Checkpoints of a training run under its output folder OUT:
//   OUT/epoch-<e>/          HF model folder (weights, config, the input model's tokenizer
//                           files) at the end of epoch e, plus the resume state
//                           (optimizer.safetensors, trainer_state.json)
//   OUT/checkpoint-<step>/  the same every --save-steps steps (only the latest is kept)
//   OUT/trainer_state.json  {"latest": folder of the newest checkpoint, "finished": bool}
//   OUT/config.json, model.safetensors, tokenizer files: the final model
// A checkpoint folder is written under a temporary name and renamed into place, and the
// pointer file is replaced atomically afterwards, so a kill at any moment leaves the last
// complete checkpoint intact and named.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "model/transformer.h"
#include "train/optimizer.h"

namespace spinlm {

// Where a run stands: everything besides weights and optimizer state that --resume needs.
// The data order needs no RNG state: epoch e's order is seeded_permutation(n, seed + e).
struct TrainerState {
  int64_t global_step = 0;      // optimizer steps taken
  int64_t epoch = 0;            // current epoch (0-based)
  int64_t batch_in_epoch = 0;   // batches of this epoch already done
  int64_t metrics_rows = 0;     // rows of metrics.jsonl written so far
  nlohmann::json window;        // the open logging window (MetricWindow::to_json)
  nlohmann::json fingerprint;   // options that must not change across a resume
  uint64_t seed = 0;

  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j, const std::string& source);
};

// What a training run saves of the model: an adapter folder (model/lora.h) when the model
// carries LoRA adapters, else the HF model folder with model_dir's tokenizer files.
void save_trained_weights(const Transformer& model, const std::string& dir, const std::string& model_dir);

// Writes OUT/<folder>/ (model, optimizer, state) atomically and points OUT/trainer_state.json
// at it; removes the previous checkpoint-<step> folder it supersedes (epoch folders stay).
void save_checkpoint(const Transformer& model, const Optimizer& optimizer, const TrainerState& state,
                     const std::string& out_dir, const std::string& folder,
                     const std::string& tokenizer_dir);

// The state of the latest checkpoint, with its folder; nullopt when OUT has none. In an
// unfinished run, a latest checkpoint that is not whole (its trainer_state.json does not
// parse, or its weights or optimizer state are cut short) is named in a warning and the newest
// whole checkpoint-N/ or epoch-N/ folder is used instead; without one, the Error says which
// folder and file to delete to start again.
struct LatestCheckpoint {
  std::string folder;  // full path
  TrainerState state;
  bool finished = false;
};
std::optional<LatestCheckpoint> find_latest_checkpoint(const std::string& out_dir);

// Copies a checkpoint's weights into the model's parameters (same names and shapes); with
// LoRA adapters, the adapter's tensors into the adapters.
void restore_weights(Transformer& model, const std::string& folder);

// Marks the run finished (after the final model is written to OUT).
void mark_finished(const std::string& out_dir, const std::string& latest_folder);

// Error naming the option when a resumed run's options differ from the checkpoint's.
void check_fingerprint(const nlohmann::json& saved, const nlohmann::json& now, const std::string& source);

}  // namespace spinlm
