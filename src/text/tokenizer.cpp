// The tokenization pipeline of the HuggingFace tokenizers library, for BPE models:
//   added tokens (raw) -> normalizer -> added tokens (normalized) -> pre-tokenizer -> BPE
//   -> post-processor (with add_special_tokens)
// and decoding through the decoder chain.
#include "text/tokenizer.h"

#include <sys/stat.h>

#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "text/added_vocabulary.h"
#include "text/bpe_model.h"
#include "text/decoders.h"
#include "text/normalizers.h"
#include "text/post_processor.h"
#include "text/pre_tokenizers.h"
#include "text/unicode.h"

namespace spinlm {

struct Tokenizer::Impl {
  std::string file;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  AddedVocabulary added;
  std::unordered_map<std::string, int64_t> added_by_content;
  std::unordered_map<int64_t, size_t> added_by_id;  // id -> index in added.tokens()
  int64_t vocab_size = 0;

  void encode_plain(const std::string& text, bool at_origin, std::vector<int64_t>& ids) const;
};

namespace {

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<AddedToken> parse_added_tokens(const nlohmann::json& j, const std::string& file) {
  std::vector<AddedToken> tokens;
  if (j.is_null()) return tokens;
  for (const auto& t : j) {
    AddedToken a;
    a.content = t.at("content").get<std::string>();
    a.id = json_integer(t.at("id"), file + ": added_tokens id");
    a.special = t.value("special", false);
    a.single_word = t.value("single_word", false);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    a.normalized = t.value("normalized", !a.special);
    if (a.content.empty()) continue;
    if (a.id < 0) fail(file, ": added token \"", a.content, "\" has a negative id");
    tokens.push_back(std::move(a));
  }
  return tokens;
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& file_or_dir) {
  std::string file = is_directory(file_or_dir) ? file_or_dir + "/tokenizer.json" : file_or_dir;
  if (!file_exists(file)) fail(file, ": no such tokenizer file");
  nlohmann::json j = read_json_file(file);
  auto impl = std::make_shared<Impl>();
  impl->file = file;
  try {
    if (j.contains("truncation") && !j["truncation"].is_null())
      fail(file, ": \"truncation\" is set; spinlm does not truncate inside the tokenizer (remove it)");
    const auto& model = j.at("model");
    std::string type = model.value("type", model.contains("merges") ? "BPE" : "");
    if (type != "BPE") fail(file, ": unsupported model type \"", type, "\" (spinlm supports BPE)");
    impl->model = std::make_unique<BpeModel>(model, file);
    impl->normalizer = make_normalizer(j.value("normalizer", nlohmann::json()), file);
    impl->pre_tokenizer = make_pre_tokenizer(j.value("pre_tokenizer", nlohmann::json()), file);
    impl->post_processor = make_post_processor(j.value("post_processor", nlohmann::json()), file);
    impl->decoder = make_decoder(j.value("decoder", nlohmann::json()), file);
    auto added = parse_added_tokens(j.value("added_tokens", nlohmann::json()), file);
    impl->vocab_size = impl->model->size();
    // As the library does: an added token whose content is already known keeps that id (the
    // file's id is ignored); a new one gets the next id after the model's vocabulary.
    int64_t next_id = impl->model->entries();
    for (size_t i = 0; i < added.size(); ++i) {
      auto known = impl->added_by_content.find(added[i].content);
      if (known != impl->added_by_content.end()) {
        added[i].id = known->second;
      } else if (auto model_id = impl->model->token_to_id(added[i].content)) {
        added[i].id = *model_id;
      } else {
        added[i].id = next_id++;
      }
      impl->added_by_content.emplace(added[i].content, added[i].id);
      impl->added_by_id[added[i].id] = i;
      impl->vocab_size = std::max(impl->vocab_size, added[i].id + 1);
    }
    impl->added = AddedVocabulary(std::move(added), impl->normalizer.get());
  } catch (const nlohmann::json::exception& e) {
    fail(file, ": malformed tokenizer: ", e.what());
  }
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

// Text between added tokens: normalize, split out normalized added tokens, pre-tokenize, BPE.
void Tokenizer::Impl::encode_plain(const std::string& text, bool at_origin, std::vector<int64_t>& ids) const {
  std::string normalized = normalizer ? normalizer->normalize(text) : text;
  std::vector<Segment> segments;
  added.split(normalized, true, segments);
  std::vector<Piece> pieces;
  for (const auto& s : segments) {
    if (s.token >= 0) {
      ids.push_back(added.tokens()[s.token].id);
      continue;
    }
    pieces.clear();
    pieces.push_back({normalized.substr(s.start, s.end - s.start), at_origin && s.start == 0});
    if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
    for (const auto& p : pieces) model->tokenize(p.text, ids);
  }
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_special_tokens) const {
  size_t bad = unicode::find_invalid_utf8(text);
  if (bad != std::string::npos) fail("invalid UTF-8 in the text at byte ", bad);
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> segments;
  impl_->added.split(text, false, segments);
  for (const auto& s : segments) {
    if (s.token >= 0) {
      ids.push_back(impl_->added.tokens()[s.token].id);
    } else {
      impl_->encode_plain(text.substr(s.start, s.end - s.start), s.start == 0, ids);
    }
  }
  if (add_special_tokens && impl_->post_processor) ids = impl_->post_processor->process(std::move(ids));
  return ids;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    auto added = impl_->added_by_id.find(id);
    if (added != impl_->added_by_id.end()) {
      const AddedToken& t = impl_->added.tokens()[added->second];
      if (!(skip_special_tokens && t.special)) tokens.push_back(t.content);
      continue;
    }
    const std::string* token = impl_->model->id_to_token(id);
    if (!token) fail("token id ", id, " is not in the vocabulary of ", impl_->file, " (size ", vocab_size(), ")");
    if (skip_special_tokens && is_special(id)) continue;
    tokens.push_back(*token);
  }
  if (!impl_->decoder) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) joined += (i ? " " : "") + tokens[i];
    return joined;
  }
  impl_->decoder->decode_chain(tokens);
  std::string text;
  for (const auto& t : tokens) text += t;
  return text;
}

int64_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int64_t> Tokenizer::token_to_id(const std::string& token) const {
  auto it = impl_->added_by_content.find(token);
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int64_t id) const {
  auto added = impl_->added_by_id.find(id);
  if (added != impl_->added_by_id.end()) return impl_->added.tokens()[added->second].content;
  const std::string* token = impl_->model->id_to_token(id);
  if (!token) return std::nullopt;
  return *token;
}

bool Tokenizer::is_special(int64_t id) const {
  auto added = impl_->added_by_id.find(id);
  return added != impl_->added_by_id.end() && impl_->added.tokens()[added->second].special;
}

}  // namespace spinlm
