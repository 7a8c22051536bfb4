// Everything text-side of a model folder: tokenizer.json, tokenizer_config.json (special
// tokens, chat_template, or chat_template.jinja beside it, which wins) and the rendering
// of conversations to ids the way transformers' apply_chat_template(tokenize=True) does
// (render, then encode without adding special tokens).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace spinlm {

struct SpecialTokens {
  std::string bos_token;  // empty when the config has none
  std::string eos_token;
  std::string pad_token;
  std::string unk_token;
};

class TextCodec {
 public:
  // dir holds tokenizer.json and (optionally) tokenizer_config.json / chat_template.jinja.
  static TextCodec load(const std::string& dir);

  const Tokenizer& tokenizer() const { return tokenizer_; }
  const SpecialTokens& special_tokens() const { return special_; }
  bool has_chat_template() const { return chat_template_.has_value(); }
  // Error naming the folder when it has no chat template.
  const ChatTemplate& chat_template() const;

  std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  std::vector<int64_t> encode_chat(const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt) const;

  std::optional<int64_t> bos_id() const;
  std::optional<int64_t> eos_id() const;
  std::optional<int64_t> pad_id() const;

 private:
  Tokenizer tokenizer_;
  SpecialTokens special_;
  std::optional<ChatTemplate> chat_template_;
  std::string dir_;
};

}  // namespace spinlm
