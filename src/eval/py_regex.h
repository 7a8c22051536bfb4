// Python `re` operations the harness's filters and metrics use (findall, sub), on PCRE2,
// whose syntax covers the patterns the tasks use ("#### (\\-?[0-9\\.\\,]+)", "(?s).*#### ").
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace spinlm::py {

class Regex {
 public:
  // A pattern that does not compile is an Error naming it and the position.
  explicit Regex(const std::string& pattern);
  const std::string& pattern() const { return pattern_; }

  // re.findall: one entry per non-overlapping match; with groups, the groups of the match
  // (an unmatched group is ""); without groups, the whole match in groups[0].
  std::vector<std::vector<std::string>> findall(const std::string& text) const;
  // re.sub(pattern, replacement, text) with a literal replacement.
  std::string sub(const std::string& replacement, const std::string& text) const;

  struct Code;

 private:
  std::string pattern_;
  std::shared_ptr<Code> code_;
};

}  // namespace spinlm::py
