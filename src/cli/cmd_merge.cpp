// `spinlm merge`: a full HuggingFace model folder from a base and PEFT LoRA adapters merged
// in order, each W + s B A computed in fp32 and stored in the base's dtype (config.json's
// torch_dtype), tokenizer files copied from the base (model/lora.h load_model_source).
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
  std::vector<std::string> adapters;
  std::string output;
};

void run_merge(const MergeOptions& o) {
  const ModelConfig config = load_config(o.model + "/config.json");
  const Transformer model = load_model_source({o.model, o.adapters}, at::kCPU, parse_dtype(config.torch_dtype));
  save_model(model, o.output, o.model);
  std::printf("merged model in %s (%s)\n", o.output.c_str(), config.torch_dtype.c_str());
}

CommandAction setup_merge(CLI::App& app) {
  auto options = std::make_shared<MergeOptions>();
  app.add_option("--model", options->model, "base HF model folder")->required();
  app.add_option("--adapter", options->adapters,
                 "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors); repeat to merge "
                 "several in order, each into the model the ones before it made (a LoRA run's iter_0/adapter, "
                 "iter_1/adapter, ...)")
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
