// spinlm's error type for user mistakes (missing file, malformed line, wrong shape,
// unknown option). The CLI prints its message as `error: ...` and exits non-zero.
// Messages name the file, the line or the field, and say what to do where that helps.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace spinlm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates the parts with operator<< and throws an Error.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw Error(message.str());
}

// Throws an Error built from the parts unless the condition holds.
template <class... Parts>
void check(bool condition, const Parts&... parts) {
  if (!condition) fail(parts...);
}

}  // namespace spinlm
