// UTF-8 and Unicode helpers for the tokenizer: validation, code point iteration, the
// normalization forms (utf8proc) and the character classes Rust's `char` methods use,
// since the HuggingFace tokenizers are written in Rust and we must agree with them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace spinlm::unicode {

// Byte offset of the first invalid UTF-8 sequence, or npos when the text is valid.
size_t find_invalid_utf8(std::string_view text);

// Decodes the code point at text[pos] (valid UTF-8 assumed); *length receives its byte count.
char32_t decode_at(std::string_view text, size_t pos, size_t* length);
// Byte length of the UTF-8 sequence that starts with lead byte c (valid UTF-8 assumed).
inline size_t sequence_length(unsigned char c) {
  return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
void append_utf8(std::string& out, char32_t cp);

// Like Rust's String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD.
std::string from_utf8_lossy(std::string_view bytes);

// Normalization forms, through utf8proc.
std::string nfc(std::string_view text);
std::string nfd(std::string_view text);
std::string nfkc(std::string_view text);
std::string nfkd(std::string_view text);
// Rust's char::to_lowercase applied per character (no context-dependent final sigma).
std::string lowercase(std::string_view text);

// Rust char::is_whitespace (the White_Space property).
bool is_whitespace(char32_t cp);
// Rust char::is_numeric (general categories Nd, Nl, No).
bool is_numeric(char32_t cp);
// Rust char::is_alphabetic approximated by letters (L*) and letter numbers (Nl), plus marks
// that are alphabetic; used with is_numeric for is_alphanumeric.
bool is_alphanumeric(char32_t cp);
// regex \w: letters, marks, decimal digits, connector punctuation, joiners.
bool is_word_character(char32_t cp);
// Rust char::is_ascii_punctuation or Unicode P* (used by the Punctuation pre-tokenizer).
bool is_punctuation(char32_t cp);

}  // namespace spinlm::unicode
