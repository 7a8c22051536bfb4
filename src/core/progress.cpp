#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/logging.h"

namespace spinlm {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds != seconds) return "?";
  long total = static_cast<long>(seconds + 0.5);
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%ldh%02ldm", total / 3600, (total % 3600) / 60);
  } else if (total >= 60) {
    std::snprintf(text, sizeof text, "%ldm%02lds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%lds", total);
  }
  return text;
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      terminal_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && terminal_ && done_ > 0 && !is_quiet()) std::fputc('\n', stderr);
}

void Progress::update(int64_t done, const std::string& extra) {
  if (start_done_ < 0) start_done_ = done;  // rows already done before a resume
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  if (since_draw < (terminal_ ? 0.2 : 10.0)) return;
  last_draw_ = now;
  draw(false, extra);
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  draw(true, extra);
}

void Progress::draw(bool final_line, const std::string& extra) {
  if (is_quiet()) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  int64_t done_here = done_ - std::max<int64_t>(start_done_, 0);
  double rate = elapsed > 0 ? done_here / elapsed : 0.0;
  double left = rate > 0 ? (total_ - done_) / rate : -1.0;
  char line[512];
  if (terminal_) {
    const int width = 24;
    int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : 0;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::snprintf(line, sizeof line, "\r%s [%s] %lld/%lld %s  %.1f %s/s  %s  left %s\033[K",
                  label_.c_str(), bar.c_str(), (long long)done_, (long long)total_,
                  unit_.c_str(), rate, unit_.c_str(), extra.c_str(),
                  final_line ? "0s" : format_duration(left).c_str());
    std::fputs(line, stderr);
    if (final_line) std::fputc('\n', stderr);
    std::fflush(stderr);
  } else {
    std::snprintf(line, sizeof line, "%s: %lld/%lld %s, %.1f %s/s, %s, %s %s", label_.c_str(),
                  (long long)done_, (long long)total_, unit_.c_str(), rate, unit_.c_str(),
                  extra.c_str(), final_line ? "took" : "left",
                  format_duration(final_line ? elapsed : left).c_str());
    log_line("spinlm: ", line);
  }
}

}  // namespace spinlm
