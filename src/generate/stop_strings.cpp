#include "generate/stop_strings.h"

#include "core/error.h"

namespace spinlm {

StopStrings::StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const std::string& stop : stops_) check(!stop.empty(), "--stop: a stop string must not be empty");
}

size_t StopStrings::find(const std::string& text) const {
  size_t earliest = std::string::npos;
  for (const std::string& stop : stops_) {
    size_t at = text.find(stop);
    if (at < earliest) earliest = at;
  }
  return earliest;
}

std::string StopStrings::trim(const std::string& text) const {
  size_t at = find(text);
  return at == std::string::npos ? text : text.substr(0, at);
}

}  // namespace spinlm
