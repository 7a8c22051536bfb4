// `spinlm merge`: a full HuggingFace model folder from a base and a PEFT LoRA adapter,
// W + s B A computed in fp32 and saved in the base's dtype (config.json's torch_dtype),
// tokenizer files copied from the base (model/lora.h merge_lora).
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "core/logging.h"
#include "model/config.h"
#include "model/device_options.h"
#include "model/hf_model.h"
#include "model/lora.h"

namespace spinlm {
namespace {

struct MergeOptions {
  std::string model;
  std::string adapter;
  std::string output;
};

void run_merge(const MergeOptions& o) {
  const ModelConfig config = load_config(o.model + "/config.json");
  const at::ScalarType dtype = parse_dtype(config.torch_dtype);
  Transformer model = load_model(o.model, at::kCPU, dtype);
  const auto adapters = load_lora_adapter(o.adapter, config);
  merge_lora(model, *adapters);
  save_model(model, o.output, o.model);
  log_info("merged ", adapters->modules().size(), " adapted modules of ", o.adapter, " into ", o.model, " (",
           config.torch_dtype, ")");
  std::printf("merged model in %s\n", o.output.c_str());
}

CommandAction setup_merge(CLI::App& app) {
  auto options = std::make_shared<MergeOptions>();
  app.add_option("--model", options->model, "base HF model folder")->required();
  app.add_option("--adapter", options->adapter, "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors)")
      ->required();
  app.add_option("--output", options->output, "folder of the merged HF model")->required();
  return [options] {
    check(options->output != options->model, "--output must differ from --model (the base is read while writing)");
    run_merge(*options);
  };
}

const bool registered = register_command("merge", "merge a LoRA adapter into its base model (W + s B A)", setup_merge);

}  // namespace
}  // namespace spinlm
