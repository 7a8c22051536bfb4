// template NUL variables: the template is parsed, then rendered with the variables where they
// are a JSON object (render_context), with them as the messages where they are an array of
// {"role", "content"} objects, and with a short conversation otherwise; messages render
// with and without the generation prompt.
#include "core/error.h"
#include "fuzz/fuzz_support.h"
#include "io/json_text.h"
#include "text/chat_template.h"

namespace spinlm::fuzz {

void fuzz_chat_template(const std::string& input) {
  using json = nlohmann::json;
  auto [source, variables] = split_at_nul(input);
  ChatTemplate chat_template(source, "fuzz.jinja");
  json context;
  try {
    context = parse_json_text(variables, "variables");
  } catch (const Error&) {
    // not JSON: the short conversation below
  }
  if (context.is_object()) {
    chat_template.render_context(context);
    return;
  }
  std::vector<ChatMessage> messages;
  if (context.is_array()) {
    for (const json& m : context) {
      if (m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
          m["content"].is_string())
        messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
  } else {
    messages = {{"system", "Be brief."}, {"user", "What is 2+2?"}, {"assistant", "4"}};
  }
  const json extra = json::object({{"bos_token", "<s>"}, {"eos_token", "</s>"}});
  for (bool add_generation_prompt : {false, true}) chat_template.render(messages, add_generation_prompt, extra);
}

}  // namespace spinlm::fuzz

SPINLM_FUZZ_TARGET(chat_template)
