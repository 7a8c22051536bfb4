// UTF-8 helpers for the Jinja2 interpreter: Python strings index, slice, strip and change case
// by code point, so the interpreter decodes where Python semantics need code points.
#pragma once
#include <string>
#include <vector>

#include "text/unicode.h"

namespace spinlm::jinja {

// Decodes UTF-8; invalid bytes become U+FFFD one byte at a time (never throws).
std::u32string utf8_decode(const std::string& text);
std::string utf8_encode(const std::u32string& text);
// The tokenizer's UTF-8 encoder serves the interpreter too.
inline void utf8_append(std::string& out, char32_t cp) { unicode::append_utf8(out, cp); }
size_t utf8_length(const std::string& text);

// Python's str.isspace() for one code point (the whitespace str.strip() and split() use).
bool is_python_space(char32_t cp);
// Python's str.isprintable() for one code point (what repr() leaves unescaped).
bool is_python_printable(char32_t cp);
bool is_python_alnum(char32_t cp);
bool is_cased_upper(char32_t cp);
bool is_cased_lower(char32_t cp);

char32_t to_upper(char32_t cp);
char32_t to_lower(char32_t cp);
char32_t to_title(char32_t cp);

std::string str_upper(const std::string& s);
std::string str_lower(const std::string& s);

}  // namespace spinlm::jinja
