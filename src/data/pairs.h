// SPIN pairs as token ids: a prompt, the real (human) response and the generated one.
//
// Accepted rows (JSONL, one object a line):
//  * the generation output: {"real": [msgs], "generated": [msgs], "prompt_ids": [..],
//    "generated_ids": [..], ...}. prompt_ids is used as it is, generated_ids (and "real_ids"
//    when present) end as a response ends (below); without real_ids the real response is
//    rendered from the messages as below.
//  * uclaml/SPIN's {"real": [msgs], "generated": [msgs]} rows, rendered with the model's chat
//    template: prompt = template(messages before the last assistant turn,
//    add_generation_prompt=true); response = the rest of template(all messages) after that
//    prompt text. Prompt and response are tokenised separately without special tokens (what
//    TRL's DPOTrainer, which uclaml/SPIN's trainer is, does with its prompt/chosen/rejected
//    strings).
//  * without a chat template (e.g. a byte-level demo tokenizer): prompt = [BOS] + the prompt
//    turns' contents concatenated, response = the assistant content.
// Every response, real or generated, then ends exactly as generation emits it
// (model/stop_tokens.h): cut after its first stop token, or EOS appended when it has none.
// With Zephyr's template the real side is "...</s>" as the generated side is, where TRL's
// rule (EOS appended unless the text ends with one) gave "...</s>\n</s>".
// Every problem is an Error naming "FILE:LINE" and the field.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "model/stop_tokens.h"
#include "text/chat_template.h"
#include "text/text_codec.h"

namespace spinlm {

struct TokenPair {
  std::vector<int64_t> prompt;     // prompt ids (chat template with the generation prompt)
  std::vector<int64_t> real;       // the human response, ending with its first stop token
  std::vector<int64_t> generated;  // the model's response, ending with its first stop token
  std::string where;               // "FILE:LINE" of the row
};

// Prompt/response ids of a conversation whose last message is the assistant's answer
// (rendering rules above). codec may be null only when the row carries ids.
struct PromptResponseIds {
  std::vector<int64_t> prompt;
  std::vector<int64_t> response;
};
PromptResponseIds encode_prompt_response(const TextCodec& codec,
                                         const std::vector<ChatMessage>& messages, const StopTokens& stop,
                                         const std::string& where);

// One row -> pair. codec may be null when every row carries prompt_ids/real_ids/generated_ids.
TokenPair parse_pair_row(const nlohmann::json& row, const std::string& where,
                         const TextCodec* codec, const StopTokens& stop);

// All rows of the files, in order.
std::vector<TokenPair> load_pairs(const std::vector<std::string>& files, const TextCodec* codec,
                                  const StopTokens& stop);

// Error naming the row when an id is outside [0, vocab_size) or the prompt is empty.
void validate_pair(const TokenPair& pair, int64_t vocab_size);

}  // namespace spinlm
