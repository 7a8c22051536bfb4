// Chat templates: the Jinja2 subset real HuggingFace chat templates use, rendered
// byte-identically to transformers' apply_chat_template (sandboxed Jinja2 environment with
// trim_blocks and lstrip_blocks). A template cannot lift the limits of
// src/text/jinja_limits.h (size, nesting, loop iterations, the size of what it builds).
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace spinlm {

struct ChatMessage {
  std::string role;     // "system" | "user" | "assistant" | ...
  std::string content;
};

class ChatTemplate {
 public:
  // Parses the template source; a syntax error is an Error naming `name` and the line.
  explicit ChatTemplate(const std::string& source, std::string name = "chat_template");

  // Renders with the variables transformers passes: messages, add_generation_prompt,
  // bos_token, eos_token (and any other keys of extra, e.g. tools, date_string).
  // raise_exception(...) in the template becomes an Error with its message.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const nlohmann::json& extra = nlohmann::json::object()) const;
  // Renders with an arbitrary context object.
  std::string render_context(const nlohmann::json& context) const;
  // Same, keeping the key order of JSON objects as Python's dicts do (it shows in tojson
  // and in printed dicts; nlohmann::json sorts keys).
  std::string render_ordered(const nlohmann::ordered_json& context) const;

  const std::string& source() const { return source_; }

  struct Program;

 private:
  std::string source_;
  std::string name_;
  std::shared_ptr<const Program> program_;
};

}  // namespace spinlm
