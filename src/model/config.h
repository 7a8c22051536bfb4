// config.json of a HuggingFace Llama-family model (model_type llama, mistral, qwen2, qwen3):
// the fields spinlm's transformer needs, with transformers' defaults.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace spinlm {

// rope_scaling {"rope_type"/"type": "llama3", factor, low_freq_factor, high_freq_factor,
// original_max_position_embeddings}; kind is empty when there is no scaling.
struct RopeScaling {
  std::string kind;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;           // llama | mistral | qwen2 | qwen3
  int64_t vocab_size = 0;           // V
  int64_t hidden_size = 0;          // C
  int64_t intermediate_size = 0;    // F (MLP width)
  int64_t num_hidden_layers = 0;    // L
  int64_t num_attention_heads = 0;  // H
  int64_t num_key_value_heads = 0;  // Hkv (grouped-query attention; default H)
  int64_t head_dim = 0;             // D (default C / H)
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (qwen2 always; llama/qwen3 when attention_bias)
  bool qk_norm = false;         // qwen3: RMSNorm over D on q and k before RoPE
  bool o_proj_bias = false;     // llama/qwen3 attention_bias: o_proj has a bias too (added)
  int64_t sliding_window = 0;   // mistral: a query sees the last sliding_window keys; 0 = all (added)
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;
  std::string torch_dtype = "float32";  // as written in config.json
  nlohmann::json raw;                   // the whole file, so unknown keys are written back unchanged

  // Parses a config.json object; source names the file in errors (a missing field or an
  // unknown model_type names the field).
  static ModelConfig from_json(const nlohmann::json& config, const std::string& source);
  // The config.json to write: raw with spinlm's fields updated.
  nlohmann::json to_json() const;
  // Number of parameters (embeddings counted once when tied).
  int64_t num_parameters() const;
};

ModelConfig load_config(const std::string& config_json_path);

}  // namespace spinlm
