#include "model/model_text.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "model/config.h"

namespace spinlm {

ModelText load_model_text(const std::string& model_dir) {
  namespace fs = std::filesystem;
  ModelText text;
  const ModelConfig config = load_config((fs::path(model_dir) / "config.json").string());
  text.vocab_size = config.vocab_size;
  if (file_exists((fs::path(model_dir) / "tokenizer.json").string()))
    text.codec = std::make_unique<TextCodec>(TextCodec::load(model_dir));
  text.stop = load_stop_tokens(model_dir, config, text.codec.get());
  return text;
}

}  // namespace spinlm
