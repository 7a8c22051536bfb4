// SFT examples: a conversation rendered with the model's chat template, the loss on the
// assistant turns' tokens only.
//
// Rows (data/conversation.h): {"messages": [..]}, {"prompt", "response"}, a SPIN pair (its
// "real" side), or pre-tokenised {"prompt_ids": [..], "response_ids": [..]}.
// With a chat template, the text is cut into turns by rendering growing prefixes of the
// conversation: for an assistant message k, template(messages[:k], add_generation_prompt=true)
// ends where its answer starts and template(messages[:k+1]) where it ends; the answer span is
// scored, everything else (system, user turns, the generation prompts) is not. Each span is
// tokenised on its own (no special tokens added), and the final assistant span gets EOS
// appended unless it already ends with EOS, so an SFT sequence of a single exchange is
// exactly the prompt + real response of a SPIN pair (data/pairs.h).
// Without a chat template: [BOS] + user contents, then the answer + EOS (scored).
// Sequences longer than max_length keep their first max_length tokens.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "data/collate.h"
#include "text/text_codec.h"

namespace spinlm {

struct SftExample {
  LabeledSequence sequence;
  std::string where;  // "FILE:LINE"
};

// codec may be null only for rows with ids.
SftExample encode_sft_row(const nlohmann::json& row, const std::string& where, const TextCodec* codec,
                          int64_t eos_id, int64_t max_length);

// Error naming the row when it has no assistant token to learn from or an id is out of range.
std::vector<SftExample> load_sft_examples(const std::vector<std::string>& files, const TextCodec* codec,
                                          int64_t eos_id, int64_t max_length, int64_t vocab_size);

}  // namespace spinlm
