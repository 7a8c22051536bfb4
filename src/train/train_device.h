// The trained model's device and dtype (--device, --dtype, --optimizer-state-dtype,
// --gradient-checkpointing of `spinlm train` and `spinlm sft`).
#pragma once
#include <string>

#include "model/transformer.h"
#include "train/train_loop.h"

namespace spinlm {

struct TrainDevice {
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
};

// Resolves options.device / options.dtype (defaults: model/device_choice.h) and checks the
// optimizer state dtype; an Error names the bad option. Call it before loading anything.
TrainDevice resolve_train_device(const TrainLoopOptions& options);

// Gives the model a fresh LoRA adapter when options.lora.r > 0 (A from options.seed).
void attach_training_lora(Transformer& model, const TrainLoopOptions& options);

// Loads the model folder dir for training: on the resolved device in the resolved dtype,
// options.adapter_dir merged in, a fresh LoRA adapter when options ask for one, with
// gradient checkpointing when options ask for it.
Transformer load_training_model(const std::string& dir, const TrainLoopOptions& options);

}  // namespace spinlm
