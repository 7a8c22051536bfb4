#include "text/chat_template.h"

#include "core/error.h"
#include "text/jinja_lexer.h"
#include "text/jinja_limits.h"
#include "text/jinja_parser.h"
#include "text/jinja_renderer.h"

namespace spinlm {

struct ChatTemplate::Program {
  std::shared_ptr<jinja::Program> tree;
};

ChatTemplate::ChatTemplate(const std::string& source, std::string name) : source_(source), name_(std::move(name)) {
  check(source.size() <= jinja::kMaxTemplateBytes, name_, ": the template is ", source.size(),
        " bytes, more than the ", jinja::kMaxTemplateBytes >> 20,
        " MiB a chat template may have (kMaxTemplateBytes, src/text/jinja_limits.h)");
  try {
    program_ = std::make_shared<const Program>(Program{jinja::parse_template(source)});
  } catch (const jinja::SyntaxError& e) {
    fail(name_, ":", e.line, ": template syntax error: ", e.message);
  } catch (const std::exception& e) {
    fail(name_, ": template syntax error: ", e.what());
  }
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const nlohmann::json& extra) const {
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& m : messages) {
    nlohmann::ordered_json message = nlohmann::ordered_json::object();
    message["role"] = m.role;
    message["content"] = m.content;
    list.push_back(message);
  }
  context["messages"] = list;
  context["add_generation_prompt"] = add_generation_prompt;
  for (const auto& item : extra.items()) context[item.key()] = nlohmann::ordered_json(item.value());
  return render_ordered(context);
}

std::string ChatTemplate::render_context(const nlohmann::json& context) const {
  return render_ordered(nlohmann::ordered_json(context));
}

std::string ChatTemplate::render_ordered(const nlohmann::ordered_json& context) const {
  check(context.is_object(), name_, ": the template context must be a JSON object");
  try {
    return jinja::render_program(*program_->tree, jinja::from_json(context));
  } catch (const jinja::JinjaError& e) {
    fail(name_, ":", e.line, ": ", e.what());
  } catch (const std::bad_alloc&) {
    fail(name_, ": the template ran out of memory");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(name_, ": ", e.what());  // a library error inside a filter or method (never a crash)
  }
}

}  // namespace spinlm
