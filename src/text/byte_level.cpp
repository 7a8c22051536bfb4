#include "text/byte_level.h"

#include <array>

#include "text/unicode.h"

namespace spinlm::byte_level {
namespace {

struct Tables {
  std::array<std::string, 256> to_char;
  std::array<int, 512> to_byte;  // every mapped character is below U+0200
  Tables() {
    to_byte.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(next++);
      unicode::append_utf8(to_char[b], cp);
      to_byte[cp] = b;
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& byte_to_char(unsigned char b) { return tables().to_char[b]; }

int char_to_byte(char32_t cp) { return cp < 512 ? tables().to_byte[cp] : -1; }

std::string encode(std::string_view text) {
  const Tables& t = tables();
  std::string out(text.size() * 2, '\0');  // every character is one or two bytes
  size_t n = 0;
  for (unsigned char c : text) {
    const std::string& ch = t.to_char[c];
    out[n++] = ch[0];
    if (ch.size() > 1) out[n++] = ch[1];
  }
  out.resize(n);
  return out;
}

const char* gpt2_regex() {
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
}

}  // namespace spinlm::byte_level
