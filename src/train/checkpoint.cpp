#include "train/checkpoint.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "io/json_text.h"
#include "io/safetensors.h"
#include "model/hf_model.h"
#include "model/lora.h"

namespace spinlm {
namespace fs = std::filesystem;

nlohmann::json TrainerState::to_json() const {
  return {{"global_step", global_step}, {"epoch", epoch},   {"batch_in_epoch", batch_in_epoch},
          {"metrics_rows", metrics_rows}, {"window", window}, {"fingerprint", fingerprint},
          {"seed", seed}};
}

TrainerState TrainerState::from_json(const nlohmann::json& j, const std::string& source) {
  TrainerState s;
  try {
    s.global_step = j.at("global_step").get<int64_t>();
    s.epoch = j.at("epoch").get<int64_t>();
    s.batch_in_epoch = j.at("batch_in_epoch").get<int64_t>();
    s.metrics_rows = j.at("metrics_rows").get<int64_t>();
    s.window = j.at("window");
    s.fingerprint = j.at("fingerprint");
    s.seed = j.at("seed").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": malformed trainer state (", e.what(), ")");
  }
  return s;
}

void save_trained_weights(const Transformer& model, const std::string& dir, const std::string& model_dir) {
  if (model.lora()) {
    save_lora_adapter(*model.lora(), model.config(), dir, model_dir);
  } else {
    save_model(model, dir, model_dir);
  }
}

void save_checkpoint(const Transformer& model, const Optimizer& optimizer, const TrainerState& state,
                     const std::string& out_dir, const std::string& folder,
                     const std::string& tokenizer_dir) {
  const fs::path final_dir = fs::path(out_dir) / folder;
  const fs::path temp_dir = fs::path(out_dir) / (".tmp-" + folder);
  fs::remove_all(temp_dir);
  make_directories(temp_dir.string());
  try {
    save_trained_weights(model, temp_dir.string(), tokenizer_dir);
    optimizer.save_state((temp_dir / "optimizer.safetensors").string());
    write_file_atomic((temp_dir / "trainer_state.json").string(), state.to_json().dump(2) + "\n");
  } catch (const Error&) {
    std::error_code ignored;
    fs::remove_all(temp_dir, ignored);  // a failed write (a full disk) leaves the earlier checkpoints only
    throw;
  }
  fs::remove_all(final_dir);
  fs::rename(temp_dir, final_dir);

  // Point at the new checkpoint, then drop the step checkpoint it supersedes.
  const std::string pointer = (fs::path(out_dir) / "trainer_state.json").string();
  std::string previous;
  if (file_exists(pointer)) {
    try {
      previous = read_json_file(pointer).value("latest", "");
    } catch (const std::exception&) {
      // A damaged pointer is rewritten below; the checkpoint it named stays on disk.
    }
  }
  write_file_atomic(pointer, nlohmann::json{{"latest", folder}, {"finished", false}}.dump(2) + "\n");
  if (!previous.empty() && previous != folder && previous.rfind("checkpoint-", 0) == 0) {
    fs::remove_all(fs::path(out_dir) / previous);
  }
}

namespace {

// A checkpoint folder's state, once everything a resume reads from it has been checked to be
// whole: trainer_state.json parses, and the safetensors headers of the weights (a model, or a
// LoRA adapter's) and of the optimizer state fit their files (a file cut short fails here).
// Error naming the file.
TrainerState read_whole_checkpoint(const std::string& folder) {
  const std::string state_path = (fs::path(folder) / "trainer_state.json").string();
  check(file_exists(state_path), folder, " has no trainer_state.json");
  TrainerState state = TrainerState::from_json(read_json_file(state_path), state_path);
  if (is_lora_adapter_folder(folder)) {
    check_lora_adapter_whole(folder);
  } else {
    SafetensorsFolder weights(folder);
  }
  SafetensorsFile optimizer_state((fs::path(folder) / "optimizer.safetensors").string());
  return state;
}

}  // namespace

std::optional<LatestCheckpoint> find_latest_checkpoint(const std::string& out_dir) {
  const std::string pointer = (fs::path(out_dir) / "trainer_state.json").string();
  if (!file_exists(pointer)) return std::nullopt;
  const nlohmann::json j = read_json_file(pointer);
  LatestCheckpoint latest;
  latest.finished = j.value("finished", false);
  latest.folder = (fs::path(out_dir) / j.value("latest", "")).string();
  if (latest.finished) {
    const std::string state_path = (fs::path(latest.folder) / "trainer_state.json").string();
    check(file_exists(state_path), pointer, ": names checkpoint ", latest.folder,
          " which has no trainer_state.json");
    latest.state = TrainerState::from_json(read_json_file(state_path), state_path);
    return latest;
  }
  try {
    latest.state = read_whole_checkpoint(latest.folder);
    return latest;
  } catch (const Error& damage) {
    // The newest other checkpoint (checkpoint-N or epoch-N) that is whole.
    std::optional<LatestCheckpoint> fallback;
    for (const auto& entry : fs::directory_iterator(out_dir)) {
      const std::string name = entry.path().filename().string();
      const bool checkpoint = name.rfind("checkpoint-", 0) == 0 || name.rfind("epoch-", 0) == 0;
      if (!entry.is_directory() || !checkpoint || entry.path() == fs::path(latest.folder)) continue;
      try {
        TrainerState state = read_whole_checkpoint(entry.path().string());
        if (!fallback || state.global_step > fallback->state.global_step)
          fallback = LatestCheckpoint{entry.path().string(), state, false};
      } catch (const Error&) {
        // damaged as well
      }
    }
    if (!fallback) {
      fail(damage.what(), ": the latest checkpoint ", latest.folder, " (named by ", pointer,
           ") is damaged and ", out_dir, " holds no other whole checkpoint; delete ", latest.folder, " and ",
           pointer, " to train from the beginning");
    }
    log_warning("the latest checkpoint ", latest.folder, " is damaged (", damage.what(), "); resuming from ",
                fallback->folder, " (step ", fallback->state.global_step, ") instead");
    return fallback;
  }
}

void restore_weights(Transformer& model, const std::string& folder) {
  if (model.lora()) {
    restore_lora_weights(*model.lora(), folder);
    return;
  }
  SafetensorsFolder weights(folder);
  at::NoGradGuard no_grad;
  for (const auto& [name, tensor] : model.named_parameters()) {
    if (!weights.contains(name) && name == "lm_head.weight" && model.config().tie_word_embeddings) continue;
    check(weights.contains(name), folder, ": checkpoint lacks tensor ", name);
    at::Tensor saved = weights.tensor(name, tensor.scalar_type(), tensor.device());
    check(saved.sizes() == tensor.sizes(), folder, ": tensor ", name, " has shape ", saved.sizes(),
          ", the model needs ", tensor.sizes());
    const_cast<at::Tensor&>(tensor).copy_(saved);
  }
}

void mark_finished(const std::string& out_dir, const std::string& latest_folder) {
  write_file_atomic((fs::path(out_dir) / "trainer_state.json").string(),
                    nlohmann::json{{"latest", latest_folder}, {"finished", true}}.dump(2) + "\n");
}

void check_fingerprint(const nlohmann::json& saved, const nlohmann::json& now, const std::string& source) {
  for (const auto& [key, value] : now.items()) {
    check(saved.contains(key) && saved.at(key) == value, source, ": cannot resume: option ", key,
          " was ", saved.contains(key) ? saved.at(key).dump() : std::string("unset"), " in the run, now ",
          value.dump(), " (use the same options, or start again without --resume)");
  }
}

}  // namespace spinlm
