#include "data/sft_data.h"

#include <algorithm>

#include "core/error.h"
#include "data/conversation.h"
#include "io/jsonl.h"

namespace spinlm {
namespace {

void append(LabeledSequence& seq, const std::vector<int64_t>& ids, bool scored) {
  seq.ids.insert(seq.ids.end(), ids.begin(), ids.end());
  seq.scored.insert(seq.scored.end(), ids.size(), scored ? 1 : 0);
}

LabeledSequence encode_templated(const TextCodec& codec, const std::vector<ChatMessage>& messages,
                                 const StopTokens& stop, const std::string& where) {
  LabeledSequence seq;
  std::string rendered;  // text covered so far
  size_t last_assistant = messages.size();
  for (size_t k = 0; k < messages.size(); ++k) {
    if (messages[k].role == "assistant") last_assistant = k;
  }
  check(last_assistant < messages.size(), where, ": the conversation has no assistant message to learn from");
  for (size_t k = 0; k <= last_assistant; ++k) {
    if (messages[k].role != "assistant") continue;
    std::vector<ChatMessage> before(messages.begin(), messages.begin() + k);
    std::vector<ChatMessage> through(messages.begin(), messages.begin() + k + 1);
    const std::string prompt_text = codec.render_chat(before, true);
    const std::string full_text = codec.render_chat(through, false);
    check(prompt_text.compare(0, rendered.size(), rendered) == 0 &&
              full_text.compare(0, prompt_text.size(), prompt_text) == 0,
          where, ": the chat template does not render this conversation as growing prefixes, so its "
                 "assistant turns cannot be located (message ", k, ")");
    append(seq, codec.tokenizer().encode(prompt_text.substr(rendered.size()), false), false);
    const std::vector<int64_t> answer = codec.tokenizer().encode(full_text.substr(prompt_text.size()), false);
    if (k == last_assistant) {
      append(seq, stop.end_response(answer), true);  // nothing after the last answer's stop token
    } else {
      // The answer is scored through its first stop token; what the template writes after it
      // (ChatML's "\n") is context for the next turn.
      const auto first_stop = std::find_if(answer.begin(), answer.end(), [&](int64_t id) { return stop.stops(id); });
      const auto scored_end = first_stop == answer.end() ? answer.end() : first_stop + 1;
      append(seq, std::vector<int64_t>(answer.begin(), scored_end), true);
      append(seq, std::vector<int64_t>(scored_end, answer.end()), false);
    }
    rendered = full_text;
  }
  return seq;
}

LabeledSequence encode_plain(const TextCodec& codec, const std::vector<ChatMessage>& messages,
                             const StopTokens& stop, const std::string& where) {
  LabeledSequence seq;
  if (auto bos = codec.bos_id()) append(seq, {*bos}, false);
  bool any_answer = false;
  for (size_t k = 0; k < messages.size(); ++k) {
    const bool answer = messages[k].role == "assistant";
    std::vector<int64_t> ids = codec.tokenizer().encode(messages[k].content, false);
    if (answer) ids = stop.end_response(std::move(ids));
    append(seq, ids, answer);
    any_answer = any_answer || answer;
  }
  check(any_answer, where, ": the conversation has no assistant message to learn from");
  return seq;
}

}  // namespace

SftExample encode_sft_row(const nlohmann::json& row, const std::string& where, const TextCodec* codec,
                          const StopTokens& stop, int64_t max_length) {
  SftExample example;
  example.where = where;
  if (row.is_object() && row.contains("prompt_ids")) {
    std::vector<int64_t> prompt = require_ids(row, "prompt_ids", where);
    const std::vector<int64_t> response = require_ids(row, "response_ids", where);
    check(!prompt.empty(), where, ": field \"prompt_ids\" is empty");
    example.sequence = pair_sequence(prompt, stop.end_response(response));
  } else {
    Conversation conversation = parse_conversation(row, where);
    check(codec != nullptr, where, ": the row has no token ids and the model folder has no tokenizer");
    example.sequence = codec->has_chat_template()
                           ? encode_templated(*codec, conversation.messages, stop, where)
                           : encode_plain(*codec, conversation.messages, stop, where);
  }
  LabeledSequence& seq = example.sequence;
  check(!seq.ids.empty() && !seq.scored[0], where,
        ": the sequence must start with at least one prompt token before the first answer token");
  if (static_cast<int64_t>(seq.ids.size()) > max_length) {
    seq.ids.resize(max_length);
    seq.scored.resize(max_length);
  }
  return example;
}

std::vector<SftExample> load_sft_examples(const std::vector<std::string>& files, const TextCodec* codec,
                                          const StopTokens& stop, int64_t max_length, int64_t vocab_size) {
  check(max_length > 1, "max length must be above 1, got ", max_length);
  std::vector<SftExample> examples;
  for (const std::string& file : files) {
    JsonlReader reader(file);
    for (nlohmann::json row; reader.next(row);) {
      SftExample example = encode_sft_row(row, reader.where(), codec, stop, max_length);
      for (int64_t id : example.sequence.ids) {
        check(id >= 0 && id < vocab_size, example.where, ": token id ", id,
              " is outside the model's vocabulary [0, ", vocab_size, ")");
      }
      examples.push_back(std::move(example));
    }
  }
  check(!examples.empty(), "no SFT examples in the data");
  return examples;
}

}  // namespace spinlm
