// tokenizer.json NUL text: loading; encoding the text with and without special tokens and
// decoding the ids (keeping and skipping special tokens); decoding the text's bytes taken as
// ids, one of which may be just past the vocabulary.
#include "core/error.h"
#include "fuzz/fuzz_support.h"
#include "text/tokenizer.h"

namespace spinlm::fuzz {

void fuzz_tokenizer(const std::string& input) {
  auto [tokenizer_json, text] = split_at_nul(input);
  Tokenizer tokenizer = Tokenizer::load(write_scratch("tokenizer.json", tokenizer_json));
  for (bool add_special_tokens : {false, true}) {
    std::vector<int64_t> ids;
    try {
      ids = tokenizer.encode(text, add_special_tokens);
    } catch (const Error&) {
      break;  // text that is not UTF-8
    }
    for (bool skip_special_tokens : {false, true}) tokenizer.decode(ids, skip_special_tokens);
  }
  std::vector<int64_t> byte_ids;
  for (unsigned char c : text) {
    int64_t id = static_cast<int64_t>(c) % (tokenizer.vocab_size() + 1);
    tokenizer.id_to_token(id);
    tokenizer.is_special(id);
    byte_ids.push_back(id);
  }
  for (bool skip_special_tokens : {false, true}) tokenizer.decode(byte_ids, skip_special_tokens);
}

}  // namespace spinlm::fuzz

SPINLM_FUZZ_TARGET(tokenizer)
