// `spinlm init-model`: a complete HuggingFace model folder with random weights (normal,
// std 0.02, as transformers initialises Llama-family models) and a tokenizer.
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "model/device_options.h"
#include "model/hf_model.h"
#include "text/byte_vocab.h"
#include "text/tokenizer.h"

namespace spinlm {
namespace {

struct InitOptions {
  std::string arch;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  bool tie_embeddings = false;
  int64_t max_position_embeddings = 2048;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  std::string vocab;
  uint64_t seed = 0;
  std::string out;
  std::string dtype = "fp32";
};

// A special token's id from tokenizer_config.json ("<s>" or {"content": "<s>"}).
std::optional<int64_t> special_id(const nlohmann::json& config, const char* key, const Tokenizer& tokenizer) {
  if (!config.contains(key)) return std::nullopt;
  const nlohmann::json& value = config[key];
  std::string text = value.is_string() ? value.get<std::string>()
                     : value.is_object() && value.contains("content") ? value["content"].get<std::string>()
                                                                       : "";
  if (text.empty()) return std::nullopt;
  return tokenizer.token_to_id(text);
}

void run_init_model(const InitOptions& o) {
  check(o.hidden_size > 0 && o.intermediate_size > 0 && o.layers > 0 && o.heads > 0,
        "--hidden-size, --intermediate-size, --layers and --heads must be positive");
  const int64_t kv_heads = o.kv_heads > 0 ? o.kv_heads : o.heads;
  check(o.head_dim > 0 || o.hidden_size % o.heads == 0, "--hidden-size (", o.hidden_size,
        ") is not a multiple of --heads (", o.heads, "); give --head-dim");
  check(!file_exists(o.out + "/config.json"), o.out, " already holds a model (config.json); choose another --out");

  nlohmann::json config = {
      {"model_type", o.arch}, {"hidden_size", o.hidden_size}, {"intermediate_size", o.intermediate_size},
      {"num_hidden_layers", o.layers}, {"num_attention_heads", o.heads}, {"num_key_value_heads", kv_heads},
      {"head_dim", o.head_dim > 0 ? o.head_dim : o.hidden_size / o.heads},
      {"max_position_embeddings", o.max_position_embeddings}, {"rope_theta", o.rope_theta},
      {"rms_norm_eps", o.rms_norm_eps}, {"tie_word_embeddings", o.tie_embeddings}, {"hidden_act", "silu"},
      {"initializer_range", 0.02}, {"attention_dropout", 0.0}, {"use_cache", true}};
  if (o.arch == "llama") {
    config["attention_bias"] = false;
    config["mlp_bias"] = false;
  } else if (o.arch == "qwen3") {
    config["attention_bias"] = false;
  } else if (o.arch == "qwen2") {
    config["use_sliding_window"] = false;
  } else if (o.arch == "mistral") {
    config["sliding_window"] = nullptr;
  }

  std::string tokenizer_source;  // folder whose tokenizer files save_model copies
  make_directories(o.out);
  if (o.vocab == "byte") {
    write_byte_tokenizer(o.out);
    config["vocab_size"] = byte_vocab_size();
    config["bos_token_id"] = kByteBosId;
    config["eos_token_id"] = kByteEosId;
    config["pad_token_id"] = kBytePadId;
  } else {
    check(file_exists(o.vocab), "--vocab ", o.vocab, ": no such file (give byte or a tokenizer.json)");
    Tokenizer tokenizer = Tokenizer::load(o.vocab);
    config["vocab_size"] = tokenizer.vocab_size();
    std::string folder = std::filesystem::path(o.vocab).parent_path().string();
    if (folder.empty()) folder = ".";
    if (file_exists(folder + "/tokenizer_config.json")) {
      const auto tokenizer_config = read_json_file(folder + "/tokenizer_config.json");
      if (auto id = special_id(tokenizer_config, "bos_token", tokenizer)) config["bos_token_id"] = *id;
      if (auto id = special_id(tokenizer_config, "eos_token", tokenizer)) config["eos_token_id"] = *id;
      if (auto id = special_id(tokenizer_config, "pad_token", tokenizer)) config["pad_token_id"] = *id;
    }
    tokenizer_source = folder;
    // The given file may have another name than tokenizer.json.
    write_file_atomic(o.out + "/tokenizer.json", read_file(o.vocab));
  }

  ModelConfig model_config = ModelConfig::from_json(config, "init-model options");
  Transformer model(model_config, at::kCPU, parse_dtype(o.dtype));
  model.init_random(o.seed, 0.02);
  save_model(model, o.out, tokenizer_source);
  std::printf("wrote %s: %s, %lld layers, hidden %lld, %lld parameters, vocabulary %lld\n", o.out.c_str(),
              o.arch.c_str(), (long long)o.layers, (long long)o.hidden_size,
              (long long)model_config.num_parameters(), (long long)model_config.vocab_size);
}

CommandAction setup_init_model(CLI::App& app) {
  auto o = std::make_shared<InitOptions>();
  app.add_option("--arch", o->arch, "llama, mistral, qwen2 (q/k/v biases) or qwen3 (q/k norms)")
      ->required()
      ->check(CLI::IsMember({"llama", "mistral", "qwen2", "qwen3"}));
  app.add_option("--hidden-size", o->hidden_size, "hidden size C")->required();
  app.add_option("--intermediate-size", o->intermediate_size, "MLP width F")->required();
  app.add_option("--layers", o->layers, "number of decoder layers")->required();
  app.add_option("--heads", o->heads, "attention heads")->required();
  app.add_option("--kv-heads", o->kv_heads, "key/value heads (grouped-query attention; default: --heads)");
  app.add_option("--head-dim", o->head_dim, "dimension per head (default: hidden size / heads)");
  app.add_flag("--tie-embeddings", o->tie_embeddings, "share the LM head with the token embedding");
  app.add_option("--max-position-embeddings", o->max_position_embeddings, "context length (default 2048)");
  app.add_option("--rope-theta", o->rope_theta, "RoPE base (default 10000)");
  app.add_option("--rms-norm-eps", o->rms_norm_eps, "RMSNorm epsilon (default 1e-6)");
  app.add_option("--vocab", o->vocab,
                 "byte (256 byte tokens + pad/eos/bos/role tokens, with a chat template) or a tokenizer.json "
                 "to copy (tokenizer_config.json etc. beside it are copied too)")
      ->required();
  app.add_option("--seed", o->seed, "random seed of the weights")->required();
  app.add_option("--out", o->out, "output folder")->required();
  app.add_option("--dtype", o->dtype, "dtype of the saved weights: fp32, bf16 or fp16 (default fp32)");
  return [o] { run_init_model(*o); };
}

const bool registered = register_command("init-model", "write a model folder with random weights", setup_init_model);

}  // namespace
}  // namespace spinlm
