// Python str methods the harness's task code relies on, with Python's semantics: strip and
// rstrip remove Unicode whitespace (str.isspace), capitalize upper-cases (title-cases) the
// first character and lower-cases the rest, len counts code points (acc_norm divides by it).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace spinlm::py {

// Python str.isspace for one code point.
bool is_space(char32_t cp);
std::string strip(std::string_view text);
std::string rstrip(std::string_view text);
// Number of code points (Python len) of UTF-8 text.
int64_t length(std::string_view text);
std::string lower(std::string_view text);
std::string capitalize(std::string_view text);
// str.replace(old, new) for every occurrence, left to right.
std::string replace_all(std::string_view text, std::string_view from, std::string_view to);
bool is_digits(std::string_view text);  // str.isdigit for ASCII digits, non-empty

}  // namespace spinlm::py
