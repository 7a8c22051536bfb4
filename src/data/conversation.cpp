#include "data/conversation.h"

#include "core/error.h"

namespace spinlm {
namespace {

using json = nlohmann::json;

// One message object; field names the path for errors (e.g. `"messages"[2]`).
ChatMessage parse_message(const json& value, const std::string& field, const std::string& where) {
  check(value.is_object(), where, ": field ", field, " must be an object {\"role\":..,\"content\":..}, got ",
        value.type_name());
  ChatMessage message;
  for (const char* key : {"role", "content"}) {
    auto found = value.find(key);
    check(found != value.end(), where, ": field ", field, " has no \"", key, "\"");
    check(found->is_string(), where, ": field ", field, ".", key, " must be a string, got ",
          found->type_name());
    (std::string(key) == "role" ? message.role : message.content) = found->get<std::string>();
  }
  return message;
}

std::vector<ChatMessage> parse_messages(const json& row, const std::string& key,
                                        const std::string& where) {
  const json& value = row.at(key);
  check(value.is_array(), where, ": field \"", key, "\" must be an array of messages, got ",
        value.type_name());
  std::vector<ChatMessage> messages;
  messages.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    messages.push_back(parse_message(value[i], "\"" + key + "\"[" + std::to_string(i) + "]", where));
  }
  return messages;
}

std::string string_field(const json& row, const std::string& key, const std::string& where) {
  const json& value = row.at(key);
  check(value.is_string(), where, ": field \"", key, "\" must be a string, got ", value.type_name());
  return value.get<std::string>();
}

}  // namespace

Conversation parse_conversation(const json& row, const std::string& where) {
  check(row.is_object(), where, ": expected a JSON object, got ", row.type_name());
  Conversation conversation;
  // UltraChat rows carry "prompt" next to "messages", so "messages" is looked at first.
  if (row.contains("messages")) {
    conversation.format = ConversationFormat::kMessages;
    conversation.messages = parse_messages(row, "messages", where);
  } else if (row.contains("real")) {
    conversation.format = ConversationFormat::kSpinPair;
    conversation.messages = parse_messages(row, "real", where);
    if (row.contains("generated")) conversation.generated = parse_messages(row, "generated", where);
  } else if (row.contains("prompt")) {
    conversation.format = ConversationFormat::kPromptResponse;
    conversation.messages.push_back({"user", string_field(row, "prompt", where)});
    if (row.contains("response") && !row.at("response").is_null()) {
      conversation.messages.push_back({"assistant", string_field(row, "response", where)});
    }
  } else {
    fail(where, ": not a conversation: expected a field \"messages\", \"real\" (SPIN pair) or "
                "\"prompt\" (with \"response\")");
  }
  return conversation;
}

Exchange first_exchange(const std::vector<ChatMessage>& messages, const std::string& where) {
  size_t user = 0;
  while (user < messages.size() && messages[user].role != "user") ++user;
  check(user < messages.size(), where, ": no user turn (a message with \"role\": \"user\")");
  Exchange exchange{messages[user], std::nullopt};
  for (size_t i = user + 1; i < messages.size(); ++i) {
    if (messages[i].role == "assistant") {
      exchange.answer = messages[i];
      break;
    }
  }
  return exchange;
}

json messages_to_json(const std::vector<ChatMessage>& messages) {
  json out = json::array();
  for (const ChatMessage& message : messages) {
    out.push_back({{"role", message.role}, {"content", message.content}});
  }
  return out;
}

}  // namespace spinlm
