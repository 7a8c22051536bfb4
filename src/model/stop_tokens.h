// How a response ends: one policy for generation and for every response that is scored.
//
// Generation stops at the first sampled token that is one of `ids`, and emits that token.
// A response that is scored (a SPIN pair's real and generated sides, an SFT label, a held-out
// answer) is the same sequence: its tokens up to and including the first stop token, nothing
// after it, and `eos` appended when it holds none. A chat template that writes more after its
// end-of-turn token (Zephyr's "</s>\n", ChatML's "<|im_end|>\n", the byte vocabulary's
// "<eos>\n") is cut there, so a real answer and a generated answer with the same text have
// the same ids and a pair of equal texts has a zero margin.
//
// The stop ids, as transformers' generate() takes them: generation_config.json's
// eos_token_id (an int or a list), else config.json's, else the tokenizer's eos_token.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "text/text_codec.h"

namespace spinlm {

struct StopTokens {
  std::vector<int64_t> ids;  // generation ends at the first of these
  // Appended to a response that holds no stop token: the tokenizer's eos_token when it is
  // one of ids (what the chat template writes), else ids.front().
  int64_t eos = -1;

  // A policy with a single stop token (tests, folders without a tokenizer).
  static StopTokens single(int64_t eos_id) { return {{eos_id}, eos_id}; }

  bool stops(int64_t id) const;
  // The response as generation emits it: cut after its first stop token, or eos appended.
  std::vector<int64_t> end_response(std::vector<int64_t> response) const;
};

// The model folder's stop tokens; codec may be null (a folder without tokenizer.json).
// Error naming the folder when no file names an EOS token.
StopTokens load_stop_tokens(const std::string& model_dir, const ModelConfig& config, const TextCodec* codec);

}  // namespace spinlm
