// config.json parsing with transformers' per-architecture defaults.
#include "model/config.h"

#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"

namespace spinlm {
namespace {

using json = nlohmann::json;

// Defaults that differ between the four architectures (transformers' *Config classes).
struct ArchDefaults {
  const char* architecture;  // the class name written to "architectures"
  int64_t max_position_embeddings;
  bool q_k_v_bias_always;    // qwen2: q/k/v biases regardless of attention_bias
  bool attention_bias_flag;  // llama/qwen3: attention_bias adds q/k/v/o biases
  bool qk_norm;              // qwen3
  int64_t default_head_dim;  // 0: hidden / heads
  bool sliding_window;       // mistral applies config.sliding_window
};

ArchDefaults arch_defaults(const std::string& model_type, const std::string& source) {
  if (model_type == "llama") return {"LlamaForCausalLM", 2048, false, true, false, 0, false};
  if (model_type == "mistral") return {"MistralForCausalLM", 4096 * 32, false, false, false, 0, true};
  if (model_type == "qwen2") return {"Qwen2ForCausalLM", 32768, true, false, false, 0, false};
  if (model_type == "qwen3") return {"Qwen3ForCausalLM", 32768, false, true, true, 128, false};
  fail(source, ": unknown model_type \"", model_type,
       "\" (spinlm supports llama, mistral, qwen2, qwen3)");
}

bool present(const json& config, const char* key) {
  return config.contains(key) && !config[key].is_null();
}

int64_t int_field(const json& config, const char* key, const std::string& source,
                  std::optional<int64_t> fallback = std::nullopt) {
  if (!present(config, key)) {
    if (fallback) return *fallback;
    fail(source, ": missing field \"", key, "\"");
  }
  const json& value = config[key];
  if (!value.is_number_integer() || value.get<int64_t>() <= 0) {
    fail(source, ": field \"", key, "\" must be a positive integer (got ", value.dump(), ")");
  }
  return value.get<int64_t>();
}

double number_field(const json& config, const char* key, const std::string& source,
                    double fallback) {
  if (!present(config, key)) return fallback;
  const json& value = config[key];
  if (!value.is_number()) fail(source, ": field \"", key, "\" must be a number (got ", value.dump(), ")");
  return value.get<double>();
}

bool bool_field(const json& config, const char* key, const std::string& source, bool fallback) {
  if (!present(config, key)) return fallback;
  const json& value = config[key];
  if (!value.is_boolean()) fail(source, ": field \"", key, "\" must be true or false (got ", value.dump(), ")");
  return value.get<bool>();
}

// bos_token_id / eos_token_id: an int, a list of ints, or null.
std::vector<int64_t> token_ids_field(const json& config, const char* key, const std::string& source) {
  std::vector<int64_t> ids;
  if (!present(config, key)) return ids;
  const json& value = config[key];
  auto add = [&](const json& item) {
    if (!item.is_number_integer() || item.get<int64_t>() < 0) {
      fail(source, ": field \"", key, "\" must be a token id or a list of token ids (got ", value.dump(), ")");
    }
    ids.push_back(item.get<int64_t>());
  };
  if (value.is_array()) {
    for (const json& item : value) add(item);
  } else {
    add(value);
  }
  return ids;
}

// rope_scaling (or rope_parameters in newer transformers): only llama3 changes anything.
RopeScaling parse_rope_scaling(const json& scaling, const char* key, const std::string& source) {
  RopeScaling result;
  if (scaling.is_null()) return result;
  if (!scaling.is_object()) fail(source, ": field \"", key, "\" must be an object");
  std::string kind;
  if (scaling.contains("rope_type") && scaling["rope_type"].is_string()) {
    kind = scaling["rope_type"].get<std::string>();
  } else if (scaling.contains("type") && scaling["type"].is_string()) {
    kind = scaling["type"].get<std::string>();
  }
  if (kind.empty() || kind == "default") return result;
  if (kind != "llama3") {
    fail(source, ": field \"", key, "\": rope type \"", kind, "\" is not supported (only llama3)");
  }
  std::string where = std::string(key);
  result.kind = kind;
  result.factor = number_field(scaling, "factor", source + " " + where, 8.0);
  result.low_freq_factor = number_field(scaling, "low_freq_factor", source + " " + where, 1.0);
  result.high_freq_factor = number_field(scaling, "high_freq_factor", source + " " + where, 4.0);
  result.original_max_position_embeddings =
      int_field(scaling, "original_max_position_embeddings", source + " " + where, int64_t(8192));
  check(result.high_freq_factor != result.low_freq_factor, source,
        ": field \"", key, "\": high_freq_factor must differ from low_freq_factor");
  return result;
}

json ids_to_json(const std::vector<int64_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& config, const std::string& source) {
  check(config.is_object(), source, ": expected a JSON object");
  ModelConfig c;
  c.raw = config;
  if (!present(config, "model_type")) fail(source, ": missing field \"model_type\"");
  check(config["model_type"].is_string(), source, ": field \"model_type\" must be a string");
  c.model_type = config["model_type"].get<std::string>();
  ArchDefaults arch = arch_defaults(c.model_type, source);

  c.vocab_size = int_field(config, "vocab_size", source);
  c.hidden_size = int_field(config, "hidden_size", source);
  c.intermediate_size = int_field(config, "intermediate_size", source);
  c.num_hidden_layers = int_field(config, "num_hidden_layers", source);
  c.num_attention_heads = int_field(config, "num_attention_heads", source);
  c.num_key_value_heads = int_field(config, "num_key_value_heads", source, c.num_attention_heads);
  int64_t default_head_dim =
      arch.default_head_dim > 0 ? arch.default_head_dim : c.hidden_size / c.num_attention_heads;
  c.head_dim = int_field(config, "head_dim", source, default_head_dim);
  check(c.num_attention_heads % c.num_key_value_heads == 0, source, ": field \"num_key_value_heads\" (",
        c.num_key_value_heads, ") must divide num_attention_heads (", c.num_attention_heads, ")");
  check(c.head_dim % 2 == 0, source, ": field \"head_dim\" must be even for rotary embeddings (got ",
        c.head_dim, ")");
  c.max_position_embeddings =
      int_field(config, "max_position_embeddings", source, arch.max_position_embeddings);
  c.rms_norm_eps = number_field(config, "rms_norm_eps", source, 1e-6);
  check(c.rms_norm_eps >= 0, source, ": field \"rms_norm_eps\" must not be negative");

  // rope_theta at the top level (transformers < 4.56) or inside rope_parameters (newer).
  c.rope_theta = number_field(config, "rope_theta", source, 10000.0);
  if (present(config, "rope_parameters")) {
    const json& params = config["rope_parameters"];
    check(params.is_object(), source, ": field \"rope_parameters\" must be an object");
    c.rope_theta = number_field(params, "rope_theta", source + " rope_parameters", c.rope_theta);
    c.rope_scaling = parse_rope_scaling(params, "rope_parameters", source);
  }
  if (present(config, "rope_scaling")) {
    c.rope_scaling = parse_rope_scaling(config["rope_scaling"], "rope_scaling", source);
  }
  check(c.rope_theta > 0, source, ": field \"rope_theta\" must be positive");

  c.tie_word_embeddings = bool_field(config, "tie_word_embeddings", source, false);
  bool attention_bias = bool_field(config, "attention_bias", source, false);
  c.attention_bias = arch.q_k_v_bias_always || (arch.attention_bias_flag && attention_bias);
  c.o_proj_bias = arch.attention_bias_flag && attention_bias;
  c.qk_norm = arch.qk_norm;
  if (bool_field(config, "mlp_bias", source, false)) {
    fail(source, ": field \"mlp_bias\": MLP biases are not supported");
  }
  if (present(config, "hidden_act")) {
    check(config["hidden_act"] == "silu", source, ": field \"hidden_act\" must be \"silu\" (got ",
          config["hidden_act"].dump(), ")");
  }
  if (arch.sliding_window && present(config, "sliding_window")) {
    c.sliding_window = int_field(config, "sliding_window", source);
  }
  if (c.model_type == "qwen2" && bool_field(config, "use_sliding_window", source, false)) {
    fail(source, ": field \"use_sliding_window\": Qwen2 sliding-window attention is not supported");
  }

  c.bos_token_ids = token_ids_field(config, "bos_token_id", source);
  c.eos_token_ids = token_ids_field(config, "eos_token_id", source);
  if (present(config, "torch_dtype") && config["torch_dtype"].is_string()) {
    c.torch_dtype = config["torch_dtype"].get<std::string>();
  } else if (present(config, "dtype") && config["dtype"].is_string()) {
    c.torch_dtype = config["dtype"].get<std::string>();
  }
  return c;
}

json ModelConfig::to_json() const {
  json out = raw.is_object() ? raw : json::object();
  ArchDefaults arch = arch_defaults(model_type, "config");
  if (!out.contains("architectures")) out["architectures"] = json::array({arch.architecture});
  out["model_type"] = model_type;
  out["vocab_size"] = vocab_size;
  out["hidden_size"] = hidden_size;
  out["intermediate_size"] = intermediate_size;
  out["num_hidden_layers"] = num_hidden_layers;
  out["num_attention_heads"] = num_attention_heads;
  out["num_key_value_heads"] = num_key_value_heads;
  out["head_dim"] = head_dim;
  out["max_position_embeddings"] = max_position_embeddings;
  out["rms_norm_eps"] = rms_norm_eps;
  out["hidden_act"] = "silu";
  if (out.contains("rope_parameters") && out["rope_parameters"].is_object()) {
    out["rope_parameters"]["rope_theta"] = rope_theta;
  } else {
    out["rope_theta"] = rope_theta;
  }
  if (!rope_scaling.kind.empty() && !out.contains("rope_parameters")) {
    out["rope_scaling"] = {{"rope_type", rope_scaling.kind},
                           {"factor", rope_scaling.factor},
                           {"low_freq_factor", rope_scaling.low_freq_factor},
                           {"high_freq_factor", rope_scaling.high_freq_factor},
                           {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  }
  out["tie_word_embeddings"] = tie_word_embeddings;
  if (arch.attention_bias_flag) out["attention_bias"] = o_proj_bias;
  if (model_type == "mistral") out["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
  out["bos_token_id"] = ids_to_json(bos_token_ids);
  out["eos_token_id"] = ids_to_json(eos_token_ids);
  out["torch_dtype"] = torch_dtype;
  return out;
}

int64_t ModelConfig::num_parameters() const {
  const int64_t C = hidden_size, D = head_dim, H = num_attention_heads, Hkv = num_key_value_heads;
  int64_t per_layer = C * H * D + 2 * C * Hkv * D + H * D * C  // q, k, v, o
                      + 3 * C * intermediate_size              // gate, up, down
                      + 2 * C;                                 // two RMSNorms
  if (attention_bias) per_layer += H * D + 2 * Hkv * D;
  if (o_proj_bias) per_layer += C;
  if (qk_norm) per_layer += 2 * D;
  int64_t total = vocab_size * C + num_hidden_layers * per_layer + C;
  if (!tie_word_embeddings) total += vocab_size * C;
  return total;
}

ModelConfig load_config(const std::string& config_json_path) {
  const json config = read_json_file(config_json_path);
  return ModelConfig::from_json(config, config_json_path);
}

}  // namespace spinlm
