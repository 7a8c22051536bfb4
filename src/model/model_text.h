// The text side of a model folder: its tokenizer and chat template (null when the folder has
// no tokenizer.json, e.g. a model trained on pre-tokenised rows), its stop tokens and the
// vocabulary size of its config.json.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "model/stop_tokens.h"
#include "text/text_codec.h"

namespace spinlm {

struct ModelText {
  std::unique_ptr<TextCodec> codec;
  StopTokens stop;
  int64_t vocab_size = 0;
};

// Error naming the folder when config.json is missing or no file names an EOS token.
ModelText load_model_text(const std::string& model_dir);

}  // namespace spinlm
