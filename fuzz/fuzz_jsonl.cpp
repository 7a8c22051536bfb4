// JSONL conversation and pair rows: each row read (UTF-8, nesting and size limits), parsed
// as a conversation (and its first exchange) and as a SPIN pair rendered and encoded with
// the byte-level vocabulary of `spinlm init-model --vocab byte`, then validated against it.
// A bad row is an Error for that row (commands with --skip-bad go on to the next); the
// reader's own Errors end the file.
#include "core/error.h"
#include "data/conversation.h"
#include "data/pairs.h"
#include "fuzz/fuzz_support.h"
#include "io/jsonl.h"
#include "text/byte_vocab.h"
#include "text/text_codec.h"

namespace spinlm::fuzz {

void fuzz_jsonl(const std::string& input) {
  static const TextCodec codec = [] {
    std::string dir = scratch_dir() + "/byte-vocab";
    write_byte_tokenizer(dir);
    return TextCodec::load(dir);
  }();
  const StopTokens stop = StopTokens::single(kByteEosId);
  JsonlReader reader(write_scratch("rows.jsonl", input));
  for (json row; reader.next(row);) {
    try {
      first_exchange(parse_conversation(row, reader.where()), reader.where());
    } catch (const Error&) {
    }
    try {
      validate_pair(parse_pair_row(row, reader.where(), &codec, stop), codec.tokenizer().vocab_size());
    } catch (const Error&) {
    }
    json_line(row);
  }
}

}  // namespace spinlm::fuzz

SPINLM_FUZZ_TARGET(jsonl)
