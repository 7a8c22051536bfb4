#include "data/pairs.h"

#include "core/error.h"
#include "data/conversation.h"
#include "io/jsonl.h"

namespace spinlm {
namespace {

// The messages before the last assistant turn must exist and end with a non-assistant turn.
void check_ends_with_answer(const std::vector<ChatMessage>& messages, const std::string& field,
                            const std::string& where) {
  check(messages.size() >= 2, where, ": field \"", field,
        "\" needs a prompt turn and an assistant answer, got ", messages.size(), " message(s)");
  check(messages.back().role == "assistant", where, ": field \"", field,
        "\" must end with an assistant message, the last has role \"", messages.back().role, "\"");
}

bool same_messages(const std::vector<ChatMessage>& a, const std::vector<ChatMessage>& b, size_t n) {
  if (a.size() < n || b.size() < n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (a[i].role != b[i].role || a[i].content != b[i].content) return false;
  }
  return true;
}

}  // namespace

PromptResponseIds encode_prompt_response(const TextCodec& codec,
                                         const std::vector<ChatMessage>& messages, const StopTokens& stop,
                                         const std::string& where) {
  check(!messages.empty() && messages.back().role == "assistant", where,
        ": the conversation must end with an assistant message");
  std::vector<ChatMessage> prompt_messages(messages.begin(), messages.end() - 1);
  PromptResponseIds out;
  if (codec.has_chat_template()) {
    const std::string prompt_text = codec.render_chat(prompt_messages, true);
    const std::string full_text = codec.render_chat(messages, false);
    check(full_text.compare(0, prompt_text.size(), prompt_text) == 0, where,
          ": the chat template renders the prompt differently inside the full conversation, so the "
          "response cannot be split off (prompt rendering: ",
          nlohmann::json(prompt_text).dump(), ")");
    out.prompt = codec.tokenizer().encode(prompt_text, false);
    out.response = codec.tokenizer().encode(full_text.substr(prompt_text.size()), false);
  } else {
    if (auto bos = codec.bos_id()) out.prompt.push_back(*bos);
    std::string prompt_text;
    for (const ChatMessage& m : prompt_messages) prompt_text += m.content;
    std::vector<int64_t> prompt_ids = codec.tokenizer().encode(prompt_text, false);
    out.prompt.insert(out.prompt.end(), prompt_ids.begin(), prompt_ids.end());
    out.response = codec.tokenizer().encode(messages.back().content, false);
  }
  out.response = stop.end_response(std::move(out.response));
  return out;
}

TokenPair parse_pair_row(const nlohmann::json& row, const std::string& where,
                         const TextCodec* codec, const StopTokens& stop) {
  TokenPair pair;
  pair.where = where;
  const bool has_prompt_ids = row.is_object() && row.contains("prompt_ids");
  const bool has_real_ids = has_prompt_ids && row.contains("real_ids");
  const bool has_generated_ids = has_prompt_ids && row.contains("generated_ids");
  check(row.is_object() && (row.contains("generated") || has_generated_ids), where,
        ": field \"generated\" is missing (a SPIN pair needs \"real\" and \"generated\", or "
        "\"prompt_ids\" with \"generated_ids\")");
  Conversation conversation;
  if (!(has_real_ids && has_generated_ids)) {
    check(row.is_object() && row.contains("real"), where,
          ": not a SPIN pair: expected fields \"real\" and \"generated\" (message lists), "
          "optionally with \"prompt_ids\"/\"generated_ids\"");
    conversation = parse_conversation(row, where);
    check(codec != nullptr, where,
          ": the row has no token ids and the model folder has no tokenizer to render it");
  }
  auto render = [&](const std::vector<ChatMessage>& messages, const std::string& field) {
    check_ends_with_answer(messages, field, where);
    return encode_prompt_response(*codec, messages, stop, where);
  };

  if (has_prompt_ids) {
    pair.prompt = require_ids(row, "prompt_ids", where);
  }
  if (has_real_ids) {
    pair.real = stop.end_response(require_ids(row, "real_ids", where));
  } else {
    PromptResponseIds ids = render(conversation.messages, "real");
    if (!has_prompt_ids) pair.prompt = std::move(ids.prompt);
    pair.real = std::move(ids.response);
  }
  if (has_generated_ids) {
    pair.generated = stop.end_response(require_ids(row, "generated_ids", where));
  } else {
    check(row.contains("generated"), where, ": field \"generated\" is missing");
    const auto& generated = conversation.generated;
    check_ends_with_answer(generated, "generated", where);
    check(generated.size() == conversation.messages.size() &&
              same_messages(generated, conversation.messages, generated.size() - 1),
          where, ": fields \"real\" and \"generated\" must share the same prompt turns");
    pair.generated = render(generated, "generated").response;
  }
  check(!pair.prompt.empty(), where, ": the prompt is empty (a response needs at least one token before it)");
  return pair;
}

std::vector<TokenPair> load_pairs(const std::vector<std::string>& files, const TextCodec* codec,
                                  const StopTokens& stop) {
  std::vector<TokenPair> pairs;
  for (const std::string& file : files) {
    JsonlReader reader(file);
    for (nlohmann::json row; reader.next(row);) pairs.push_back(parse_pair_row(row, reader.where(), codec, stop));
    check(!pairs.empty(), file, ": no pairs in the file");
  }
  return pairs;
}

void validate_pair(const TokenPair& pair, int64_t vocab_size) {
  check(!pair.prompt.empty(), pair.where, ": the prompt is empty");
  auto check_ids = [&](const std::vector<int64_t>& ids, const char* field) {
    for (int64_t id : ids) {
      check(id >= 0 && id < vocab_size, pair.where, ": field \"", field, "\" holds token id ", id,
            ", outside the model's vocabulary [0, ", vocab_size, ")");
    }
  };
  check_ids(pair.prompt, "prompt_ids");
  check_ids(pair.real, "real");
  check_ids(pair.generated, "generated");
}

}  // namespace spinlm
