#define PCRE2_CODE_UNIT_WIDTH 8
#include "eval/py_regex.h"

#include <pcre2.h>

#include "core/error.h"

namespace spinlm::py {

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() {
    if (code) pcre2_code_free(code);
  }
};

namespace {

// One match step shared by findall and sub: the next match at or after start, or false.
// An empty match advances by one character as Python does, so iteration always ends.
bool next_match(pcre2_code* code, const std::string& text, size_t start, pcre2_match_data* data) {
  if (start > text.size()) return false;
  const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0,
                             data, nullptr);
  return rc >= 0;
}

size_t after_match(const std::string& text, size_t begin, size_t end) {
  if (end > begin) return end;
  // Empty match: step over one UTF-8 character.
  size_t next = end + 1;
  while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
  return next;
}

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern), code_(std::make_shared<Code>()) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF,
                              &error_code, &error_offset, nullptr);
  if (!code_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    fail("invalid regular expression '", pattern, "' at offset ", error_offset, ": ",
         reinterpret_cast<const char*>(message));
  }
}

std::vector<std::vector<std::string>> Regex::findall(const std::string& text) const {
  std::vector<std::vector<std::string>> matches;
  uint32_t groups = 0;
  pcre2_pattern_info(code_->code, PCRE2_INFO_CAPTURECOUNT, &groups);
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  size_t start = 0;
  while (next_match(code_->code, text, start, data)) {
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    std::vector<std::string> entry;
    if (groups == 0) {
      entry.push_back(text.substr(ovector[0], ovector[1] - ovector[0]));
    } else {
      for (uint32_t g = 1; g <= groups; ++g) {
        if (ovector[2 * g] == PCRE2_UNSET) {
          entry.emplace_back();
        } else {
          entry.push_back(text.substr(ovector[2 * g], ovector[2 * g + 1] - ovector[2 * g]));
        }
      }
    }
    matches.push_back(std::move(entry));
    start = after_match(text, ovector[0], ovector[1]);
  }
  pcre2_match_data_free(data);
  return matches;
}

std::string Regex::sub(const std::string& replacement, const std::string& text) const {
  std::string out;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  size_t start = 0, copied = 0;
  while (next_match(code_->code, text, start, data)) {
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    out.append(text, copied, ovector[0] - copied);
    out.append(replacement);
    copied = ovector[1];
    start = after_match(text, ovector[0], ovector[1]);
    if (ovector[1] == ovector[0] && start <= text.size()) {
      // The character stepped over after an empty match is kept.
      out.append(text, copied, start - copied);
      copied = start;
    }
  }
  if (copied < text.size()) out.append(text, copied, std::string::npos);
  pcre2_match_data_free(data);
  return out;
}

}  // namespace spinlm::py
