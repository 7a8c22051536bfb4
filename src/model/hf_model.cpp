// HuggingFace model folders in and out: config.json + safetensors weights + tokenizer files.
#include "model/hf_model.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"

namespace spinlm {
namespace {

// Files save_model copies from a tokenizer source folder when they exist there.
const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                                       "special_tokens_map.json", "generation_config.json"};

std::string dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kDouble: return "float64";
    default: fail("cannot save a model in dtype ", c10::toString(dtype));
  }
}

std::string shape_text(at::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Tensors transformers keeps out of the state dict or ignores on load.
bool ignorable(const std::string& name, const ModelConfig& config) {
  if (name.find("rotary_emb.inv_freq") != std::string::npos) return true;  // old checkpoints' buffer
  return config.tie_word_embeddings && name == "lm_head.weight";           // tied: the embedding wins
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code error;
  return std::filesystem::equivalent(a, b, error);
}

nlohmann::json generation_config_from(const ModelConfig& config) {
  nlohmann::json out = {{"_from_model_config", true}};
  auto ids = [](const std::vector<int64_t>& values) -> nlohmann::json {
    if (values.size() == 1) return values[0];
    return values;
  };
  if (!config.bos_token_ids.empty()) out["bos_token_id"] = ids(config.bos_token_ids);
  if (!config.eos_token_ids.empty()) out["eos_token_id"] = ids(config.eos_token_ids);
  return out;
}

}  // namespace

Transformer load_model(const std::string& dir, at::Device device, at::ScalarType dtype) {
  check(std::filesystem::is_directory(dir), dir, ": not a model folder (expected config.json and ",
        "model.safetensors inside)");
  ModelConfig config = load_config(dir + "/config.json");
  Transformer model(config, device, dtype);
  SafetensorsFolder weights(dir);
  at::NoGradGuard no_grad;
  for (const auto& [name, parameter] : model.named_parameters()) {
    check(weights.contains(name), dir, ": missing tensor \"", name, "\" (model_type ", config.model_type,
          ", ", config.num_hidden_layers, " layers)");
    const SafetensorsEntry& entry = weights.entry(name);
    check(at::IntArrayRef(entry.shape) == parameter.sizes(), weights.file_of(name), ": tensor \"", name,
          "\" has shape ", shape_text(entry.shape), " but config.json implies ", shape_text(parameter.sizes()));
    // at::Tensor is a handle: copy_ fills the model's own storage.
    const_cast<at::Tensor&>(parameter).copy_(weights.tensor(name, dtype, device));
  }
  for (const std::string& name : weights.names()) {
    bool known = false;
    for (const auto& named : model.named_parameters()) known = known || named.first == name;
    check(known || ignorable(name, config), weights.file_of(name), ": unexpected tensor \"", name,
          "\" for a ", config.model_type, " model with this config.json");
  }
  return model;
}

void save_model(const Transformer& model, const std::string& dir, const std::string& tokenizer_source_dir,
                int64_t max_shard_bytes) {
  make_directories(dir);
  nlohmann::json config = model.config().to_json();
  config["torch_dtype"] = dtype_name(model.dtype());  // the weights are written in this dtype
  write_file_atomic(dir + "/config.json", config.dump(2) + "\n");
  write_safetensors_folder(dir, model.named_parameters(), max_shard_bytes);

  if (!tokenizer_source_dir.empty()) {
    for (const char* file : kTokenizerFiles) {
      std::string source = tokenizer_source_dir + "/" + file, target = dir + "/" + file;
      if (file_exists(source) && !same_file(source, target)) write_file_atomic(target, read_file(source));
    }
  }
  // A source without generation_config.json gets transformers' default one (bos/eos from
  // config.json); without a source, an existing one in dir is kept (saving over itself).
  bool source_has_one = !tokenizer_source_dir.empty() && file_exists(tokenizer_source_dir + "/generation_config.json");
  bool keep_existing = tokenizer_source_dir.empty() && file_exists(dir + "/generation_config.json");
  if (!source_has_one && !keep_existing) {
    write_file_atomic(dir + "/generation_config.json", generation_config_from(model.config()).dump(2) + "\n");
  }
}

}  // namespace spinlm
