#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/pattern.h"

#include <pcre2.h>

#include "core/error.h"
#include "text/unicode.h"

namespace spinlm {

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() {
    if (code) pcre2_code_free(code);
  }
};

namespace {

// One match-data block per thread and regex size, reused across calls (allocating it per
// call costs more than matching a short word).
struct MatchData {
  pcre2_match_data* data = nullptr;
  ~MatchData() {
    if (data) pcre2_match_data_free(data);
  }
};

pcre2_match_data* thread_match_data() {
  thread_local MatchData md;
  if (!md.data) md.data = pcre2_match_data_create(32, nullptr);
  return md.data;
}

// Unicode White_Space (what Oniguruma's and Rust's \s match); PCRE2's \s also takes U+180E.
const char* kSpaceItems = "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
// Oniguruma's Unicode \w: letters, marks, decimal digits, connector punctuation (PCRE2's
// takes all numbers and no marks).
const char* kWordItems = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";

// Rewrites \s, \S, \w, \W so that PCRE2 matches the characters Oniguruma does. Inside a
// character class the positive forms are spliced in; \S and \W there are left alone.
std::string onig_compatible(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() * 2);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char n = pattern[++i];
      if (n == 's' || n == 'w') {
        const char* items = n == 's' ? kSpaceItems : kWordItems;
        out += in_class ? std::string(items) : "[" + std::string(items) + "]";
      } else if ((n == 'S' || n == 'W') && !in_class) {
        out += "[^" + std::string(n == 'S' ? kSpaceItems : kWordItems) + "]";
      } else {
        out += c;
        out += n;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

Regex::Regex(const std::string& source) : code_(std::make_shared<Code>()) {
  const std::string pattern = onig_compatible(source);
  int error = 0;
  PCRE2_SIZE offset = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!code_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    fail("invalid regex /", source, "/ at offset ", offset, ": ", reinterpret_cast<char*>(message));
  }
  pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if no JIT
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  pcre2_match_data* md = thread_match_data();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    int rc = pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("regex matching failed (PCRE2 error ", rc, ")");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t s = ov[0], e = ov[1];
    out.emplace_back(s, e);
    if (e > s) {
      start = e;
    } else {
      if (e >= text.size()) break;
      start = e + unicode::sequence_length(static_cast<unsigned char>(text[e]));
    }
  }
}

Pattern Pattern::from_json(const nlohmann::json& j, const std::string& where) {
  Pattern p;
  if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    p.literal_ = j["String"].get<std::string>();
    if (p.literal_.empty()) fail(where, ": empty String pattern");
  } else if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    p.regex_ = std::make_shared<Regex>(j["Regex"].get<std::string>());
  } else {
    fail(where, ": pattern must be {\"String\": ...} or {\"Regex\": ...}, got ", j.dump());
  }
  return p;
}

Pattern Pattern::literal(std::string text) {
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

void Pattern::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  if (regex_) {
    regex_->find_all(text, out);
    return;
  }
  size_t pos = 0;
  while (true) {
    size_t found = text.find(literal_, pos);
    if (found == std::string_view::npos) break;
    out.emplace_back(found, found + literal_.size());
    pos = found + literal_.size();
  }
}

std::string Pattern::replace_all(std::string_view text, const std::string& content) const {
  std::vector<std::pair<size_t, size_t>> matches;
  find_all(text, matches);
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + matches.size() * content.size());
  size_t prev = 0;
  for (auto [s, e] : matches) {
    out.append(text.data() + prev, s - prev);
    out += content;
    prev = e;
  }
  out.append(text.data() + prev, text.size() - prev);
  return out;
}

}  // namespace spinlm
