// GPT-2's reversible map between bytes and printable Unicode characters, used by the
// ByteLevel pre-tokenizer and decoder: bytes that are printable Latin-1 map to themselves,
// the others to U+0100 upwards in byte order.
#pragma once
#include <string>
#include <string_view>

namespace spinlm::byte_level {

// UTF-8 text of the character standing for byte b.
const std::string& byte_to_char(unsigned char b);
// The byte a character stands for, or -1 when the character is not in the map.
int char_to_byte(char32_t cp);
// Maps every byte of text to its character.
std::string encode(std::string_view text);
// The GPT-2 pre-tokenization regex (ByteLevel with use_regex).
const char* gpt2_regex();

}  // namespace spinlm::byte_level
