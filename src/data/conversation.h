// Conversations as the JSONL rows of docs/design.md ("Formats"), in any of its three formats:
//   {"messages": [{"role": .., "content": ..}, ..]}             (UltraChat and other SFT sets)
//   {"prompt": "..", "response": ".."}                          (response may be absent)
//   {"real": [msgs], "generated": [msgs]}                       (a SPIN pair, uclaml/SPIN's columns)
// SPIN uses the first user turn as the prompt x and the first assistant answer after it as the
// human answer y; first_exchange() picks them out. Every error names "FILE:LINE" and the field.
//
// Typical use:
//   JsonlReader reader(path);
//   for (json row; reader.next(row);) {
//     Conversation conversation = parse_conversation(row, reader.where());
//     Exchange exchange = first_exchange(conversation, reader.where());
//     ... exchange.prompt, exchange.answer ...
//   }
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "text/chat_template.h"

namespace spinlm {

enum class ConversationFormat { kMessages, kPromptResponse, kSpinPair };

struct Conversation {
  ConversationFormat format = ConversationFormat::kMessages;
  // The human conversation: "messages", the pair's "real" side, or [user: prompt,
  // assistant: response] (just [user: prompt] when the row has no response).
  std::vector<ChatMessage> messages;
  // A SPIN pair's "generated" side; empty for the other formats.
  std::vector<ChatMessage> generated;
};

// Parses one row (a JSON object). where ("FILE:LINE") prefixes every error, which names the
// offending field, e.g. `data.jsonl:7: field "messages"[1].content must be a string`.
// A row with none of the recognised keys is an error listing the accepted formats.
Conversation parse_conversation(const nlohmann::json& row, const std::string& where);

// The first user turn and the first assistant message after it (SPIN's x and y).
struct Exchange {
  ChatMessage prompt;                 // role "user"
  std::optional<ChatMessage> answer;  // role "assistant"; absent when no answer follows
};

// Error naming where when the messages hold no user turn.
Exchange first_exchange(const std::vector<ChatMessage>& messages, const std::string& where);
inline Exchange first_exchange(const Conversation& conversation, const std::string& where) {
  return first_exchange(conversation.messages, where);
}

// Messages as JSON [{"role":..,"content":..},..] (the form the output files use).
nlohmann::json messages_to_json(const std::vector<ChatMessage>& messages);

}  // namespace spinlm
