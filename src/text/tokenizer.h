// A HuggingFace tokenizer.json (BPE: byte-level and SentencePiece-style), producing the same
// ids and decoded text as the native HuggingFace tokenizers library.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spinlm {

class Tokenizer {
 public:
  // Loads tokenizer.json (path to the file, or a folder holding it). An unsupported
  // component is an Error naming it and the file.
  static Tokenizer load(const std::string& file_or_dir);

  // Text -> ids. add_special_tokens applies the post-processor (BOS/EOS as the file says).
  // Invalid UTF-8 is an Error.
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens = false) const;
  // Ids -> text through the decoder; skip_special_tokens drops special added tokens.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;

  // Vocabulary size including added tokens (max id + 1).
  int64_t vocab_size() const;
  std::optional<int64_t> token_to_id(const std::string& token) const;
  std::optional<std::string> id_to_token(int64_t id) const;
  bool is_special(int64_t id) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace spinlm
