// The "pattern" of tokenizer.json components: {"String": literal} or {"Regex": regex}.
// Regexes run through PCRE2 (UTF + UCP, JIT), standing in for the Oniguruma regexes of the
// HuggingFace library.
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spinlm {

// A compiled PCRE2 regex (UTF, UCP). Thread-safe for matching.
class Regex {
 public:
  explicit Regex(const std::string& pattern);
  // Non-overlapping matches left to right as [start, end) byte offsets. An empty match is
  // reported and the search resumes one character later.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  struct Code;

 private:
  std::shared_ptr<Code> code_;
};

class Pattern {
 public:
  // From {"String": ...} or {"Regex": ...}; `where` names the component for errors.
  static Pattern from_json(const nlohmann::json& j, const std::string& where);
  static Pattern literal(std::string text);

  // Matches as (start, end), non-overlapping, left to right.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  // Replaces every match with `content`.
  std::string replace_all(std::string_view text, const std::string& content) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

}  // namespace spinlm
