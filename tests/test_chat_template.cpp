// Chat templates: spinlm's Jinja2 interpreter against Python jinja2 configured as transformers'
// apply_chat_template configures it (tests/reference/render_template.py). Every case of this
// file goes to one Python process, started once for the whole suite.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/error.h"
#include "testkit.h"
#include "text/chat_template.h"

namespace spinlm {
namespace {

using ojson = nlohmann::ordered_json;

struct Case {
  std::string label;
  std::string template_name;  // file under tests/data/templates, or "snippet"
  std::string source;
  ojson context;
};

struct Result {
  bool ok = false;
  std::string output;
  std::string error;
  int line = 0;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

ojson message(const std::string& role, const std::string& content) {
  return ojson{{"role", role}, {"content", content}};
}

// Conversations covering what SPIN feeds the templates: with and without a system turn,
// multi-turn, untrimmed content, unicode, empty content and a broken role order.
std::vector<std::pair<std::string, ojson>> conversations() {
  std::vector<std::pair<std::string, ojson>> c;
  c.emplace_back("single user", ojson::array({message("user", "Hello, who are you?")}));
  c.emplace_back("system and user", ojson::array({message("system", "You are a helpful assistant."),
                                                  message("user", "What is 2 + 2?")}));
  c.emplace_back("multi-turn with system",
                 ojson::array({message("system", "Be brief."), message("user", "Hi"),
                               message("assistant", "Hello! How can I help?"), message("user", "Tell me a joke."),
                               message("assistant", "Why did the chicken cross the road?")}));
  c.emplace_back("multi-turn ending with user",
                 ojson::array({message("user", "First question"), message("assistant", "First answer"),
                               message("user", "Second question")}));
  c.emplace_back("untrimmed content",
                 ojson::array({message("system", "  system with spaces  \n"), message("user", "\n\n  leading and trailing  \n\n"),
                               message("assistant", "   I am an assistant   "), message("user", "\ttabs\tand\nnew\nlines\n")}));
  c.emplace_back("unicode", ojson::array({message("user", "héllo wörld ☃ 日本語 🎉 — \"quotes\" and 'apostrophes' \\ back"),
                                          message("assistant", "Ça va? Ñandú. Ελληνικά. العربية. 😀"),
                                          message("user", "\u00a0non-breaking\u3000space\u2028sep")}));
  c.emplace_back("empty content", ojson::array({message("user", ""), message("assistant", ""), message("user", "x")}));
  c.emplace_back("template-like content",
                 ojson::array({message("user", "{{ not a tag }} {% if %} {# comment #} <|im_end|> [INST] </s>")}));
  c.emplace_back("roles not alternating", ojson::array({message("user", "one"), message("user", "two")}));
  c.emplace_back("structured content",
                 ojson::array({ojson{{"role", "user"}, {"content", ojson::parse(R"([{"type": "image"}, {"type": "text", "text": "  What is this?  "}])")}}}));
  c.emplace_back("reasoning", ojson::array({message("user", "Think about it"),
                                            message("assistant", "<think>\nStep one.\nStep two.\n</think>\n\nThe answer is 4."),
                                            message("user", "And now?")}));
  return c;
}

ojson weather_tool() {
  return ojson::parse(R"({"type": "function", "function": {"name": "get_weather",
      "description": "Get the current weather in a city",
      "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit"}},
      "required": ["city"]}}})");
}

ojson search_tool() {
  return ojson::parse(R"({"type": "function", "function": {"name": "search",
      "description": "Search the web — in any language",
      "parameters": {"type": "object", "properties": {
        "queries": {"type": "array", "items": {"type": "string"}, "description": "Queries to run"},
        "limit": {"type": ["integer", "number"], "description": "Results per query", "default": 1.5e-05},
        "filters": {"type": "object", "additionalProperties": {"type": "boolean"}, "description": "Flags"}},
      "required": ["queries"]}}})");
}

// Seeded random conversations: alternating turns whose content mixes words, whitespace runs,
// unicode and template-like punctuation.
std::vector<ojson> random_conversations(size_t count) {
  const std::vector<std::string> pieces = {"hello", "world", " ", "  ", "\n", "\n\n", "\t", "é", "日本", "🎉",
                                           "{{", "}}", "{%", "'", "\"", "\\", "<think>", "</think>", "0.5",
                                           "\u00a0", "-", "#", "[INST]", "\r\n"};
  std::mt19937 rng(1234);
  std::vector<ojson> out;
  for (size_t i = 0; i < count; ++i) {
    ojson messages = ojson::array();
    if (rng() % 2 == 0) messages.push_back(message("system", "You are helpful."));
    const size_t turns = 1 + rng() % 5;
    for (size_t t = 0; t < turns; ++t) {
      std::string content;
      const size_t n = rng() % 12;
      for (size_t k = 0; k < n; ++k) content += pieces[rng() % pieces.size()];
      messages.push_back(message(t % 2 == 0 ? "user" : "assistant", content));
    }
    out.push_back(messages);
  }
  return out;
}

// A tool round trip as OpenAI-style messages (arguments as an object, as transformers expects).
ojson tool_conversation() {
  ojson call = ojson::parse(R"({"id": "abc123def", "type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}})");
  ojson assistant = ojson{{"role", "assistant"}, {"content", ""}, {"tool_calls", ojson::array({call})}};
  ojson tool = ojson{{"role", "tool"}, {"tool_call_id", "abc123def"}, {"content", "{\"temperature\": 21.5}"}};
  return ojson::array({message("system", "You can use tools."), message("user", "Weather in Paris?"), assistant, tool});
}

std::pair<std::string, std::string> special_tokens(const std::string& template_name) {
  if (template_name.rfind("llama3", 0) == 0) return {"<|begin_of_text|>", "<|eot_id|>"};
  if (template_name == "gemma3") return {"<bos>", "<end_of_turn>"};
  if (template_name.rfind("qwen", 0) == 0 || template_name == "chatml") return {"", "<|im_end|>"};
  return {"<s>", "</s>"};
}

std::vector<std::string> template_names() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(testkit::source_path("tests/data/templates"))) {
    if (entry.path().extension() == ".jinja") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<Case> template_cases() {
  std::vector<Case> cases;
  for (const std::string& name : template_names()) {
    const std::string source = read_text(testkit::source_path("tests/data/templates/" + name + ".jinja"));
    const auto tokens = special_tokens(name);
    for (const auto& conversation : conversations()) {
      for (bool generation_prompt : {true, false}) {
        ojson context = {{"messages", conversation.second},
                         {"add_generation_prompt", generation_prompt},
                         {"bos_token", tokens.first},
                         {"eos_token", tokens.second}};
        cases.push_back({name + " / " + conversation.first + (generation_prompt ? " / prompt" : ""), name, source, context});
      }
    }
    const auto randoms = random_conversations(12);
    for (size_t i = 0; i < randoms.size(); ++i) {
      ojson context = {{"messages", randoms[i]}, {"add_generation_prompt", i % 2 == 0},
                       {"bos_token", tokens.first}, {"eos_token", tokens.second}};
      cases.push_back({name + " / random " + std::to_string(i), name, source, context});
    }
    const bool takes_tools = name == "qwen2.5" || name == "qwen3" || name == "llama3.1" || name == "llama3.2" ||
                             name == "mistral-v0.3" || name == "command-r-plus-tool_use";
    if (takes_tools) {
      ojson context = {{"messages", tool_conversation()}, {"tools", ojson::array({weather_tool(), search_tool()})},
                       {"add_generation_prompt", true}, {"bos_token", tokens.first}, {"eos_token", tokens.second}};
      cases.push_back({name + " / tools", name, source, context});
    }
    if (name == "llama3.1") {
      ojson context = {{"messages", ojson::array({message("user", "Search for it")})},
                       {"builtin_tools", ojson::array({"brave_search", "code_interpreter"})},
                       {"tools_in_user_message", false}, {"tools", ojson::array({weather_tool()})},
                       {"date_string", "01 Jan 2025"}, {"add_generation_prompt", true},
                       {"bos_token", tokens.first}, {"eos_token", tokens.second}};
      cases.push_back({name + " / builtin tools and date", name, source, context});
    }
    if (name == "qwen3") {
      ojson context = {{"messages", conversations()[3].second}, {"enable_thinking", false},
                       {"add_generation_prompt", true}, {"eos_token", tokens.second}};
      cases.push_back({name + " / thinking disabled", name, source, context});
    }
  }
  return cases;
}

std::vector<Case> snippet_cases() {
  std::vector<Case> cases;
  std::ifstream in(testkit::source_path("tests/data/templates/snippets.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    ojson s = ojson::parse(line);
    cases.push_back({s["name"].get<std::string>(), "snippet", s["template"].get<std::string>(), s["context"]});
  }
  return cases;
}

// Renders every case with Python jinja2 in one process.
class ChatTemplateReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    snippets_ = snippet_cases();
    templates_ = template_cases();
    const std::string dir = testkit::make_temp_dir("chat-template");
    const std::string cases_path = dir + "/cases.jsonl";
    const std::string results_path = dir + "/results.jsonl";
    {
      std::ofstream out(cases_path, std::ios::binary);
      for (const auto* group : {&snippets_, &templates_}) {
        for (const Case& c : *group) out << ojson{{"template", c.source}, {"context", c.context}}.dump() << "\n";
      }
    }
    auto run = testkit::run_python_reference(
        "render_template.py", testkit::shell_quote(cases_path) + " " + testkit::shell_quote(results_path));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::ifstream in(results_path);
    std::string line;
    while (std::getline(in, line)) {
      ojson r = ojson::parse(line);
      Result result;
      result.ok = r.contains("output");
      if (result.ok) {
        result.output = r["output"].get<std::string>();
      } else {
        result.error = r["error"].get<std::string>();
        result.line = r["line"].get<int>();
      }
      results_.push_back(result);
    }
    ASSERT_EQ(results_.size(), snippets_.size() + templates_.size());
  }

  // Renders `c` with spinlm and compares with jinja2's result: equal bytes, or an Error that
  // carries jinja2's message and names the template and line.
  static void expect_same(const Case& c, const Result& expected) {
    std::string output;
    std::string error;
    try {
      ChatTemplate chat_template(c.source, c.template_name);
      output = chat_template.render_ordered(c.context);
    } catch (const Error& e) {
      error = e.what();
    }
    if (expected.ok) {
      EXPECT_EQ(error, "") << c.label;
      EXPECT_EQ(output, expected.output) << c.label;
      return;
    }
    ASSERT_NE(error, "") << c.label << ": jinja2 failed with: " << expected.error;
    EXPECT_NE(error.find(expected.error), std::string::npos) << c.label << "\n  spinlm: " << error << "\n  jinja2: " << expected.error;
    // A runaway recursion stops at an arbitrary depth and line in each implementation.
    const bool recursion = expected.error.rfind("maximum recursion depth exceeded", 0) == 0;
    if (expected.line > 0 && !recursion) {
      const std::string where = c.template_name + ":" + std::to_string(expected.line) + ":";
      EXPECT_EQ(error.rfind(where, 0), 0u) << c.label << ": " << error << " (jinja2 says line " << expected.line << ")";
    }
  }

  static std::vector<Case> snippets_;
  static std::vector<Case> templates_;
  static std::vector<Result> results_;
};

std::vector<Case> ChatTemplateReference::snippets_;
std::vector<Case> ChatTemplateReference::templates_;
std::vector<Result> ChatTemplateReference::results_;

TEST_F(ChatTemplateReference, InterpreterFeaturesMatchJinja2) {
  ASSERT_GT(snippets_.size(), 80u);
  for (size_t i = 0; i < snippets_.size(); ++i) expect_same(snippets_[i], results_[i]);
}

TEST_F(ChatTemplateReference, RealTemplatesMatchJinja2) {
  const auto names = template_names();
  for (const char* required : {"zephyr", "llama2-chat", "llama3", "llama3.1", "llama3.2", "mistral-v0.1", "mistral-v0.2",
                               "mistral-v0.3", "qwen2.5", "qwen3", "gemma3", "chatml", "phi3.5",
                               "command-r-plus-tool_use"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;
  }
  size_t rendered = 0;
  for (size_t i = 0; i < templates_.size(); ++i) {
    const Result& expected = results_[snippets_.size() + i];
    rendered += expected.ok;
    expect_same(templates_[i], expected);
  }
  // Most cases render; the rest are the templates' own raise_exception checks.
  EXPECT_GT(rendered, templates_.size() * 3 / 4);
}

TEST(ChatTemplate, RenderWithMessagesEqualsContext) {
  const std::string source = read_text(testkit::source_path("tests/data/templates/zephyr.jinja"));
  ChatTemplate zephyr(source, "zephyr");
  std::vector<ChatMessage> messages = {{"system", "Be kind."}, {"user", "Hi"}, {"assistant", "Hello"}};
  std::string text = zephyr.render(messages, true, nlohmann::json{{"eos_token", "</s>"}});
  EXPECT_EQ(text, "<|system|>\nBe kind.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n<|assistant|>\n");
  EXPECT_EQ(zephyr.source(), source);
}

TEST(ChatTemplate, SyntaxErrorNamesTemplateAndLine) {
  try {
    ChatTemplate broken("ok\n{% for x in xs %}\n{{ x }}\n", "my-model/tokenizer_config.json");
    FAIL() << "expected a syntax error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_EQ(message.rfind("my-model/tokenizer_config.json:3:", 0), 0u) << message;
    EXPECT_NE(message.find("endfor"), std::string::npos) << message;
  }
}

TEST(ChatTemplate, RaiseExceptionBecomesError) {
  ChatTemplate gemma(read_text(testkit::source_path("tests/data/templates/gemma3.jinja")), "gemma3");
  std::vector<ChatMessage> messages = {{"user", "a"}, {"user", "b"}};
  try {
    gemma.render(messages, true, nlohmann::json{{"bos_token", "<bos>"}});
    FAIL() << "expected the template's raise_exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conversation roles must alternate user/assistant/user/assistant/..."),
              std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace spinlm

namespace spinlm {
namespace {

// Where Python would compute a big integer or exhaust memory, spinlm stops with an Error.
TEST(ChatTemplate, LimitsAreErrorsNotCrashes) {
  for (const char* source : {"{{ 2 ** 64 }}", "{{ 9223372036854775807 + 1 }}", "{{ -9223372036854775807 - 2 }}",
                             "{{ 'x' * 100000000000 }}", "{{ range(1000000)|length }}",
                             "{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}",
                             "{{ ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1 }}"}) {
    try {
      ChatTemplate t(source, "limits");
      t.render_context(nlohmann::json::object());
      ADD_FAILURE() << "expected an error for " << source;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("limits:", 0), 0u) << e.what();
    }
  }
  ChatTemplate ok("{{ 2 ** 62 }} {{ (-1) ** 1000000000000 }} {{ 1 ** 1000000000000 }}", "limits");
  EXPECT_EQ(ok.render_context(nlohmann::json::object()), "4611686018427387904 1 1");
}

}  // namespace
}  // namespace spinlm
