#include "train/train_device.h"

#include "core/error.h"
#include "core/logging.h"
#include "model/device_choice.h"
#include "model/hf_model.h"
#include "model/lora.h"

namespace spinlm {

TrainDevice resolve_train_device(const TrainLoopOptions& options) {
  TrainDevice d;
  d.device = choose_device(options.device);
  d.dtype = choose_dtype(options.dtype, d.device);
  check(d.dtype == at::kFloat || d.dtype == at::kBFloat16 || d.dtype == at::kDouble, "--dtype ",
        options.dtype, ": training supports fp32 and bf16 (fp16 needs loss scaling, which spinlm does not do)");
  const std::string& state = options.optimizer.state_dtype;
  check(state == "fp32" || state == "bf16", "--optimizer-state-dtype ", state, ": expected fp32 or bf16");
  return d;
}

void attach_training_lora(Transformer& model, const TrainLoopOptions& options) {
  if (!options.lora.enabled()) return;
  auto adapters = std::make_shared<LoraAdapters>(model.config(), options.lora, model.device());
  adapters->init(options.seed);
  model.set_lora(adapters);
  int64_t count = 0;
  for (const at::Tensor& p : adapters->parameters()) count += p.numel();
  log_info("LoRA r=", options.lora.r, " alpha=", options.lora.alpha, options.lora.use_rslora ? " (rsLoRA)" : "",
           " on ", adapters->modules().size(), " modules: ", count, " trainable parameters");
}

Transformer load_training_model(const std::string& dir, const TrainLoopOptions& options) {
  const TrainDevice d = resolve_train_device(options);
  Transformer model = load_model_source({dir, options.adapters}, d.device, d.dtype);
  attach_training_lora(model, options);
  model.set_gradient_checkpointing(options.gradient_checkpointing);
  log_info("model on ", d.device.str(), " in ", dtype_option_name(d.dtype),
           options.gradient_checkpointing ? " with gradient checkpointing" : "");
  return model;
}

}  // namespace spinlm
