// Plain log lines on stderr: `spinlm: ...` and `warning: ...`. Quiet mode silences info.
#pragma once
#include <sstream>
#include <string>

namespace spinlm {

void set_quiet(bool quiet);
bool is_quiet();
void log_line(const std::string& prefix, const std::string& message);

template <class... Parts>
void log_info(const Parts&... parts) {
  if (is_quiet()) return;
  std::ostringstream message;
  (message << ... << parts);
  log_line("spinlm: ", message.str());
}

template <class... Parts>
void log_warning(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  log_line("warning: ", message.str());
}

}  // namespace spinlm
