#include "text/byte_vocab.h"

#include <vector>

#include "core/atomic_file.h"
#include "text/byte_level.h"

namespace spinlm {
namespace {

struct SpecialToken {
  int64_t id;
  const char* content;
};

const std::vector<SpecialToken>& special_tokens() {
  static const std::vector<SpecialToken> tokens = {
      {kBytePadId, "<|pad|>"},       {kByteEosId, "<|eos|>"},   {kByteBosId, "<|bos|>"},
      {kByteSystemId, "<|system|>"}, {kByteUserId, "<|user|>"}, {kByteAssistantId, "<|assistant|>"},
  };
  return tokens;
}

// Zephyr's layout (<|role|>\ncontent EOS \n) with a BOS first, as Llama-3 templates do; other
// roles have no marker token and are refused. Written for trim_blocks/lstrip_blocks.
const char* kChatTemplate =
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('Unknown role: ' + message['role'] + ' (use system, user or assistant)') }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

nlohmann::json byte_level_component(const char* type) {
  return {{"type", type}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
}

}  // namespace

int64_t byte_vocab_size() { return 256 + static_cast<int64_t>(special_tokens().size()); }

nlohmann::json byte_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level::byte_to_char(static_cast<unsigned char>(b))] = b;
  nlohmann::json added = nlohmann::json::array();
  for (const auto& t : special_tokens()) {
    added.push_back({{"id", t.id}, {"content", t.content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  auto special = [](const char* name) {
    return nlohmann::json{{"SpecialToken", {{"id", name}, {"type_id", 0}}}};
  };
  auto sequence = [](const char* name, int type_id) {
    return nlohmann::json{{"Sequence", {{"id", name}, {"type_id", type_id}}}};
  };
  nlohmann::json post = {
      {"type", "TemplateProcessing"},
      {"single", {special("<|bos|>"), sequence("A", 0)}},
      {"pair", {special("<|bos|>"), sequence("A", 0), special("<|bos|>"), sequence("B", 1)}},
      {"special_tokens", {{"<|bos|>", {{"id", "<|bos|>"}, {"ids", {kByteBosId}}, {"tokens", {"<|bos|>"}}}}}},
  };
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level_component("ByteLevel")},
      {"post_processor", post},
      {"decoder", byte_level_component("ByteLevel")},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", nlohmann::json::array()}}},
  };
}

nlohmann::json byte_tokenizer_config() {
  nlohmann::json decoder = nlohmann::json::object();
  for (const auto& t : special_tokens()) {
    decoder[std::to_string(t.id)] = {{"content", t.content}, {"lstrip", false}, {"normalized", false},
                                     {"rstrip", false},      {"single_word", false}, {"special", true}};
  }
  return {
      {"added_tokens_decoder", decoder},
      {"bos_token", "<|bos|>"},
      {"eos_token", "<|eos|>"},
      {"pad_token", "<|pad|>"},
      {"unk_token", nullptr},
      {"chat_template", kChatTemplate},
      {"clean_up_tokenization_spaces", false},
      {"model_max_length", 1000000000000000019884624838656.0},
      {"tokenizer_class", "PreTrainedTokenizerFast"},
  };
}

void write_byte_tokenizer(const std::string& dir) {
  make_directories(dir);
  write_file_atomic(dir + "/tokenizer.json", byte_tokenizer_json().dump(2) + "\n");
  write_file_atomic(dir + "/tokenizer_config.json", byte_tokenizer_config().dump(2) + "\n");
}

}  // namespace spinlm
