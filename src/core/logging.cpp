#include "core/logging.h"

#include <cstdio>
#include <mutex>

namespace spinlm {
namespace {
bool quiet_mode = false;
std::mutex log_mutex;
}  // namespace

void set_quiet(bool quiet) { quiet_mode = quiet; }
bool is_quiet() { return quiet_mode; }

void log_line(const std::string& prefix, const std::string& message) {
  std::lock_guard<std::mutex> lock(log_mutex);
  std::fprintf(stderr, "%s%s\n", prefix.c_str(), message.c_str());
  std::fflush(stderr);
}

}  // namespace spinlm
