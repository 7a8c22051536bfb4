// HuggingFace model folders: config.json + model.safetensors (or shards with
// model.safetensors.index.json) + tokenizer files + generation_config.json.
// What save_model writes, transformers loads unchanged.
#pragma once
#include <string>

#include "model/transformer.h"

namespace spinlm {

// Loads config and weights from dir (F32/F16/BF16 converted to dtype). A missing or
// unexpected tensor, or a shape mismatch, is an Error naming the file and tensor.
Transformer load_model(const std::string& dir, at::Device device = at::kCPU,
                       at::ScalarType dtype = at::kFloat);

// Writes config.json, weights (sharded above max_shard_bytes) and, when tokenizer_source_dir
// is given, copies its tokenizer.json, tokenizer_config.json, chat_template.jinja,
// special_tokens_map.json and generation_config.json. Each file is written atomically.
void save_model(const Transformer& model, const std::string& dir,
                const std::string& tokenizer_source_dir = "",
                int64_t max_shard_bytes = int64_t(5) << 30);

}  // namespace spinlm
