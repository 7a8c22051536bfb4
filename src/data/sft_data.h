// SFT examples: a conversation rendered with the model's chat template, the loss on the
// assistant turns' tokens only.
//
// Rows (data/conversation.h): {"messages": [..]}, {"prompt", "response"}, a SPIN pair (its
// "real" side), or pre-tokenised {"prompt_ids": [..], "response_ids": [..]}.
// With a chat template, the text is cut into turns by rendering growing prefixes of the
// conversation: for an assistant message k, template(messages[:k], add_generation_prompt=true)
// ends where its answer starts and template(messages[:k+1]) where it ends; the answer span is
// scored through its first stop token (model/stop_tokens.h), everything else (system, user
// turns, the generation prompts, what the template writes after an answer's end-of-turn
// token) is not. Each span is tokenised on its own (no special tokens added); the final
// answer ends as generation emits it (cut after its first stop token, EOS appended when it
// has none, nothing after it), so an SFT sequence of a single exchange is exactly the
// prompt + real response of a SPIN pair (data/pairs.h).
// Without a chat template: [BOS] + user contents, then the answer ended the same way (scored).
// Sequences longer than max_length keep their first max_length tokens.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "data/collate.h"
#include "model/stop_tokens.h"
#include "text/text_codec.h"

namespace spinlm {

struct SftExample {
  LabeledSequence sequence;
  std::string where;  // "FILE:LINE"
};

// codec may be null only for rows with ids.
SftExample encode_sft_row(const nlohmann::json& row, const std::string& where, const TextCodec* codec,
                          const StopTokens& stop, int64_t max_length);

// Error naming the row when it has no assistant token to learn from or an id is out of range.
std::vector<SftExample> load_sft_examples(const std::vector<std::string>& files, const TextCodec* codec,
                                          const StopTokens& stop, int64_t max_length, int64_t vocab_size);

}  // namespace spinlm
