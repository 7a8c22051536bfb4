// Progress of long work: on a terminal a bar redrawn in place with rate and time left;
// otherwise (logs, CI) a plain line at most every few seconds.
#pragma once
#include <chrono>
#include <string>

namespace spinlm {

class Progress {
 public:
  // total: the number of units (rows, steps) expected; unit: what a unit is called.
  Progress(std::string label, int64_t total, std::string unit);
  ~Progress();

  // done: units finished so far; extra: a short text shown after the rate (e.g. "512 tok/s").
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");

 private:
  void draw(bool final_line, const std::string& extra);

  std::string label_;
  int64_t total_;
  std::string unit_;
  int64_t done_ = 0;
  int64_t start_done_ = -1;
  bool terminal_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// Seconds as "1h02m", "3m05s" or "12s".
std::string format_duration(double seconds);

}  // namespace spinlm
