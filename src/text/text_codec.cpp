// A model folder's text side: tokenizer.json, the special tokens and chat template of
// tokenizer_config.json (chat_template.jinja beside it wins), rendered and encoded the way
// transformers' apply_chat_template(tokenize=True) does: render, then encode without adding
// special tokens (the template writes them).
#include "text/text_codec.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"

namespace spinlm {
namespace {

// A special token in tokenizer_config.json: a string, {"content": ...} (AddedToken), or null.
std::string special_token(const nlohmann::json& config, const std::string& key, const std::string& file) {
  if (!config.contains(key) || config[key].is_null()) return "";
  const auto& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  fail(file, ": \"", key, "\" must be a string or an object with \"content\"");
}

// chat_template: a string, or a list of {"name", "template"} of which "default" is used.
std::optional<std::string> config_template(const nlohmann::json& config, const std::string& file) {
  if (!config.contains("chat_template") || config["chat_template"].is_null()) return std::nullopt;
  const auto& t = config["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) {
    std::string names;
    for (const auto& entry : t) {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("template"))
        fail(file, ": chat_template entries must be {\"name\", \"template\"}");
      std::string name = entry["name"].get<std::string>();
      if (name == "default") return entry["template"].get<std::string>();
      names += (names.empty() ? "" : ", ") + name;
    }
    fail(file, ": chat_template lists no \"default\" template (it has: ", names, ")");
  }
  fail(file, ": \"chat_template\" must be a string or a list of {\"name\", \"template\"}");
}

}  // namespace

TextCodec TextCodec::load(const std::string& dir) {
  TextCodec codec;
  codec.dir_ = dir;
  codec.tokenizer_ = Tokenizer::load(dir);
  const std::string config_file = dir + "/tokenizer_config.json";
  nlohmann::json config = nlohmann::json::object();
  if (file_exists(config_file)) {
    config = read_json_file(config_file);
    check(config.is_object(), config_file, ": must hold a JSON object");
  }
  codec.special_.bos_token = special_token(config, "bos_token", config_file);
  codec.special_.eos_token = special_token(config, "eos_token", config_file);
  codec.special_.pad_token = special_token(config, "pad_token", config_file);
  codec.special_.unk_token = special_token(config, "unk_token", config_file);

  const std::string jinja_file = dir + "/chat_template.jinja";
  if (file_exists(jinja_file)) {
    codec.chat_template_.emplace(read_file(jinja_file), jinja_file);
  } else if (auto source = config_template(config, config_file)) {
    codec.chat_template_.emplace(*source, config_file + ": chat_template");
  }
  return codec;
}

const ChatTemplate& TextCodec::chat_template() const {
  if (!chat_template_) {
    fail(dir_, ": no chat template (neither chat_template.jinja nor \"chat_template\" in tokenizer_config.json)");
  }
  return *chat_template_;
}

std::string TextCodec::render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  // transformers passes the tokenizer's special tokens map (the tokens that are set).
  nlohmann::json extra = nlohmann::json::object();
  if (!special_.bos_token.empty()) extra["bos_token"] = special_.bos_token;
  if (!special_.eos_token.empty()) extra["eos_token"] = special_.eos_token;
  if (!special_.unk_token.empty()) extra["unk_token"] = special_.unk_token;
  if (!special_.pad_token.empty()) extra["pad_token"] = special_.pad_token;
  return chat_template().render(messages, add_generation_prompt, extra);
}

std::vector<int64_t> TextCodec::encode_chat(const std::vector<ChatMessage>& messages,
                                            bool add_generation_prompt) const {
  return tokenizer_.encode(render_chat(messages, add_generation_prompt), false);
}

std::optional<int64_t> TextCodec::bos_id() const {
  if (special_.bos_token.empty()) return std::nullopt;
  return tokenizer_.token_to_id(special_.bos_token);
}

std::optional<int64_t> TextCodec::eos_id() const {
  if (special_.eos_token.empty()) return std::nullopt;
  return tokenizer_.token_to_id(special_.eos_token);
}

std::optional<int64_t> TextCodec::pad_id() const {
  if (special_.pad_token.empty()) return std::nullopt;
  return tokenizer_.token_to_id(special_.pad_token);
}

}  // namespace spinlm
