#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

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

std::string format_progress_line(const ProgressLine& p, bool terminal) {
  std::vector<std::string> fields;
  char text[128];
  std::snprintf(text, sizeof text, "%lld/%lld %s", (long long)p.done, (long long)p.total, p.unit.c_str());
  fields.push_back(text);
  std::snprintf(text, sizeof text, "%.1f %s/s", p.rate, p.unit.c_str());
  fields.push_back(text);
  if (!p.extra.empty()) fields.push_back(p.extra);
  if (p.seconds >= 0) fields.push_back((p.final_line ? "took " : "left ") + format_duration(p.seconds));
  const char* separator = terminal ? "  " : ", ";
  std::string line = p.label;
  if (terminal) {
    const int width = 24;
    const int64_t filled = p.total > 0 ? std::min<int64_t>(width, width * p.done / p.total) : 0;
    std::string bar(size_t(std::max<int64_t>(0, filled)), '#');
    bar.resize(width, '.');
    line += " [" + bar + "] ";
  } else {
    line += ": ";
  }
  for (size_t i = 0; i < fields.size(); ++i) line += (i == 0 ? "" : separator) + fields[i];
  return line;
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
  if (!extra.empty()) extra_ = extra;
  auto now = std::chrono::steady_clock::now();
  double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  if (since_draw < (terminal_ ? 0.2 : 10.0)) return;
  last_draw_ = now;
  draw(false, extra);
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  draw(true, extra.empty() ? extra_ : extra);
}

void Progress::draw(bool final_line, const std::string& extra) {
  if (is_quiet()) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done_here = done_ - std::max<int64_t>(start_done_, 0);
  ProgressLine line;
  line.label = label_;
  line.unit = unit_;
  line.done = done_;
  line.total = total_;
  line.rate = elapsed > 0 ? double(done_here) / elapsed : 0.0;
  line.extra = extra;
  line.final_line = final_line;
  line.seconds = final_line ? elapsed : line.rate > 0 ? double(total_ - done_) / line.rate : -1.0;
  if (terminal_) {
    std::fputs(("\r" + format_progress_line(line, true) + "\033[K").c_str(), stderr);
    if (final_line) std::fputc('\n', stderr);
    std::fflush(stderr);
  } else {
    log_line("spinlm: ", format_progress_line(line, false));
  }
}

}  // namespace spinlm
