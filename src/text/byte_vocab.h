// The byte-level vocabulary of `spinlm init-model --vocab byte`: a HuggingFace tokenizer.json
// with one token per byte (GPT-2's byte-to-character map, no merges), a ByteLevel
// pre-tokenizer and decoder, special tokens for padding, end of sequence, beginning of
// sequence and the chat roles, and a tokenizer_config.json with a Zephyr-like chat template.
// transformers and the native tokenizers load these files unchanged.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace spinlm {

// Ids 0..255 are the bytes themselves; the special tokens follow.
constexpr int64_t kBytePadId = 256;        // <|pad|>
constexpr int64_t kByteEosId = 257;        // <|eos|>, ends every chat turn
constexpr int64_t kByteBosId = 258;        // <|bos|>, added by the post-processor and the template
constexpr int64_t kByteSystemId = 259;     // <|system|>
constexpr int64_t kByteUserId = 260;       // <|user|>
constexpr int64_t kByteAssistantId = 261;  // <|assistant|>

// 262: the 256 bytes and the six special tokens.
int64_t byte_vocab_size();
nlohmann::json byte_tokenizer_json();
nlohmann::json byte_tokenizer_config();
// Writes tokenizer.json and tokenizer_config.json into dir (atomically, dir created).
void write_byte_tokenizer(const std::string& dir);

}  // namespace spinlm
