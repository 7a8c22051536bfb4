// Progress of long work: on a terminal a bar redrawn in place with rate and time left;
// otherwise (logs, CI) a plain line at most every few seconds.
#pragma once
#include <chrono>
#include <string>

namespace spinlm {

// What one progress line shows; format_progress_line writes it.
struct ProgressLine {
  std::string label;  // "train"
  std::string unit;   // "steps"
  int64_t done = 0;
  int64_t total = 0;
  double rate = 0;    // units per second
  std::string extra;  // "loss 0.6931"; left out when empty
  bool final_line = false;
  double seconds = -1;  // elapsed on the final line, time left before; < 0: unknown (left out)
};

// Plain: "train: 12/12 steps, 2.0 steps/s, loss 0.6931, took 6s". Terminal: the same fields
// after a bar, two spaces apart ("train [####....] 3/12 steps  2.0 steps/s  left 5s").
// Only fields with a value appear, so no line has an empty field.
std::string format_progress_line(const ProgressLine& line, bool terminal);

class Progress {
 public:
  // total: the number of units (rows, steps) expected; unit: what a unit is called.
  Progress(std::string label, int64_t total, std::string unit);
  ~Progress();

  // done: units finished so far; extra: a short text shown after the rate (e.g. "512 tok/s").
  void update(int64_t done, const std::string& extra = "");
  // The summary line; without extra it shows the last update's (a trainer's last loss).
  void finish(const std::string& extra = "");

 private:
  void draw(bool final_line, const std::string& extra);

  std::string label_;
  int64_t total_;
  std::string unit_;
  int64_t done_ = 0;
  std::string extra_;  // the last update's
  int64_t start_done_ = -1;
  bool terminal_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// Seconds as "1h02m", "3m05s" or "12s".
std::string format_duration(double seconds);

}  // namespace spinlm
