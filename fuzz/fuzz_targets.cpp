#include "fuzz/fuzz_support.h"

namespace spinlm::fuzz {

const std::vector<FuzzTarget>& fuzz_targets() {
  static const std::vector<FuzzTarget> targets = {
      {"safetensors", fuzz_safetensors}, {"tokenizer", fuzz_tokenizer}, {"chat_template", fuzz_chat_template},
      {"jsonl", fuzz_jsonl},             {"recipe", fuzz_recipe},       {"config", fuzz_config},
      {"parquet", fuzz_parquet},
  };
  return targets;
}

}  // namespace spinlm::fuzz
