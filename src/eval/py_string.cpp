#include "eval/py_string.h"

#include <utf8proc.h>

#include <vector>

namespace spinlm::py {
namespace {

// Decodes UTF-8 into code points; an invalid byte is kept as its own value (texts here come
// from JSON, which nlohmann has validated).
std::vector<char32_t> decode(std::string_view text) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    utf8proc_int32_t cp = 0;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + pos),
                                    static_cast<utf8proc_ssize_t>(text.size() - pos), &cp);
    if (n <= 0) {
      out.push_back(static_cast<unsigned char>(text[pos]));
      ++pos;
    } else {
      out.push_back(static_cast<char32_t>(cp));
      pos += static_cast<size_t>(n);
    }
  }
  return out;
}

std::string encode(const std::vector<char32_t>& cps) {
  std::string out;
  for (char32_t cp : cps) {
    utf8proc_uint8_t buffer[4];
    const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buffer);
    out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

bool is_space(char32_t cp) {
  // Python: bidirectional class WS, B or S, or category Zs (includes \x1c-\x1f).
  if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f) || cp == 0x85) return true;
  if (cp < 0x80) return false;
  const auto* property = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
  return property->category == UTF8PROC_CATEGORY_ZS || property->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
         property->bidi_class == UTF8PROC_BIDI_CLASS_B || property->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

std::string strip(std::string_view text) {
  const auto cps = decode(text);
  size_t begin = 0, end = cps.size();
  while (begin < end && is_space(cps[begin])) ++begin;
  while (end > begin && is_space(cps[end - 1])) --end;
  return encode(std::vector<char32_t>(cps.begin() + begin, cps.begin() + end));
}

std::string rstrip(std::string_view text) {
  const auto cps = decode(text);
  size_t end = cps.size();
  while (end > 0 && is_space(cps[end - 1])) --end;
  return encode(std::vector<char32_t>(cps.begin(), cps.begin() + end));
}

int64_t length(std::string_view text) { return static_cast<int64_t>(decode(text).size()); }

std::string lower(std::string_view text) {
  auto cps = decode(text);
  for (auto& cp : cps) cp = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
  return encode(cps);
}

std::string capitalize(std::string_view text) {
  auto cps = decode(text);
  for (size_t i = 0; i < cps.size(); ++i) {
    const auto cp = static_cast<utf8proc_int32_t>(cps[i]);
    cps[i] = static_cast<char32_t>(i == 0 ? utf8proc_totitle(cp) : utf8proc_tolower(cp));
  }
  return encode(cps);
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(text);
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

bool is_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace spinlm::py
