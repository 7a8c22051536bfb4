// config.json NUL generation_config.json: the model configuration, then the stop tokens
// (from generation_config.json where the second part is not empty, else from config.json).
#include "fuzz/fuzz_support.h"
#include "model/config.h"
#include "model/stop_tokens.h"

namespace spinlm::fuzz {

void fuzz_config(const std::string& input) {
  auto [config_json, generation_config] = split_at_nul(input);
  ModelConfig config = load_config(write_scratch("config.json", config_json));
  if (generation_config.empty()) {
    remove_scratch("generation_config.json");
  } else {
    write_scratch("generation_config.json", generation_config);
  }
  load_stop_tokens(scratch_dir(), config, nullptr);
}

}  // namespace spinlm::fuzz

SPINLM_FUZZ_TARGET(config)
