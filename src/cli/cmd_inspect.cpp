// `spinlm inspect DIR`: what a model folder holds (architecture, sizes, parameter count,
// weight dtype, vocabulary, chat template), without loading the weights.
#include <cstdio>
#include <set>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "text/tokenizer.h"

namespace spinlm {
namespace {

// tokenizer_config.json's chat_template, or chat_template.jinja beside it.
std::string chat_template_source(const std::string& dir) {
  if (file_exists(dir + "/chat_template.jinja")) return "chat_template.jinja";
  if (!file_exists(dir + "/tokenizer_config.json")) return "";
  const auto config = read_json_file(dir + "/tokenizer_config.json");
  if (config.contains("chat_template") && !config["chat_template"].is_null()) return "tokenizer_config.json";
  return "";
}

std::string join_ids(const std::vector<int64_t>& ids) {
  std::string text;
  for (int64_t id : ids) text += (text.empty() ? "" : ", ") + std::to_string(id);
  return text.empty() ? "none" : text;
}

void run_inspect(const std::string& dir) {
  ModelConfig config = load_config(dir + "/config.json");
  SafetensorsFolder weights(dir);
  std::set<std::string> dtypes;
  int64_t stored = 0;
  for (const std::string& name : weights.names()) {
    const SafetensorsEntry& entry = weights.entry(name);
    dtypes.insert(entry.dtype);
    int64_t count = 1;
    for (int64_t d : entry.shape) count *= d;
    stored += count;
  }
  std::string dtype_text;
  for (const std::string& dtype : dtypes) dtype_text += (dtype_text.empty() ? "" : ", ") + dtype;

  const std::string architecture = config.raw.contains("architectures") && config.raw["architectures"].is_array() &&
                                           !config.raw["architectures"].empty()
                                       ? config.raw["architectures"][0].get<std::string>()
                                       : config.model_type;
  std::printf("model: %s\n", dir.c_str());
  std::printf("architecture: %s (model_type %s)\n", architecture.c_str(), config.model_type.c_str());
  std::printf("layers: %lld\nhidden_size: %lld\nintermediate_size: %lld\n", (long long)config.num_hidden_layers,
              (long long)config.hidden_size, (long long)config.intermediate_size);
  std::printf("heads: %lld\nkv_heads: %lld\nhead_dim: %lld\n", (long long)config.num_attention_heads,
              (long long)config.num_key_value_heads, (long long)config.head_dim);
  std::printf("parameters: %lld (%.2fM)%s\n", (long long)config.num_parameters(), config.num_parameters() / 1e6,
              config.tie_word_embeddings ? ", tied embeddings" : "");
  if (stored != config.num_parameters()) {
    std::printf("parameters in the weight files: %lld\n", (long long)stored);
  }
  std::printf("dtype: %s (config torch_dtype %s)\n", dtype_text.c_str(), config.torch_dtype.c_str());
  std::printf("vocab_size: %lld\n", (long long)config.vocab_size);
  if (file_exists(dir + "/tokenizer.json")) {
    std::printf("tokenizer: tokenizer.json, %lld tokens\n", (long long)Tokenizer::load(dir).vocab_size());
  } else {
    std::printf("tokenizer: none\n");
  }
  std::printf("bos_token_id: %s\neos_token_id: %s\n", join_ids(config.bos_token_ids).c_str(),
              join_ids(config.eos_token_ids).c_str());
  std::printf("rope_theta: %g%s\nmax_position_embeddings: %lld\n", config.rope_theta,
              config.rope_scaling.kind.empty() ? "" : (", rope scaling " + config.rope_scaling.kind).c_str(),
              (long long)config.max_position_embeddings);
  std::string chat = chat_template_source(dir);
  std::printf("chat_template: %s\n", chat.empty() ? "no" : ("yes (" + chat + ")").c_str());
}

CommandAction setup_inspect(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  app.add_option("dir", *dir, "model folder (config.json, model.safetensors, tokenizer files)")->required();
  return [dir] { run_inspect(*dir); };
}

const bool registered = register_command("inspect", "show a model folder's architecture, size, dtype and vocabulary",
                                         setup_inspect);

}  // namespace
}  // namespace spinlm
