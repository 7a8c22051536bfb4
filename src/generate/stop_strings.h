// Stop strings: generation of a row ends when its decoded text contains one of them; the
// text is cut just before the earliest occurrence. The check runs on the whole decoded
// response after every token (responses are short; decoding them again is cheap and avoids
// the pitfalls of incremental decoding: a byte-level token may complete a UTF-8 character
// that the previous prefix showed as U+FFFD).
#pragma once
#include <string>
#include <vector>

namespace spinlm {

class StopStrings {
 public:
  StopStrings() = default;
  // Empty strings are an Error naming --stop.
  explicit StopStrings(std::vector<std::string> stops);

  bool empty() const { return stops_.empty(); }
  const std::vector<std::string>& strings() const { return stops_; }

  // Byte offset of the earliest stop string in text, or std::string::npos. With several
  // matches at the same offset the result is the same, whichever matched.
  size_t find(const std::string& text) const;

  // text cut before the earliest stop string (unchanged when none occurs).
  std::string trim(const std::string& text) const;

 private:
  std::vector<std::string> stops_;
};

}  // namespace spinlm
