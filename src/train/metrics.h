// metrics.jsonl: one JSON object per logging step (docs/design.md's keys, as TRL and
// uclaml/SPIN log them): loss, rewards/real, rewards/generated, rewards/accuracies,
// rewards/margins, logps/real, logps/generated, grad_norm, learning_rate,
// tokens_per_second, step, epoch. Evaluation rows carry the same keys prefixed "eval_"
// (transformers' convention: eval_loss, eval_rewards/accuracies, ...).
#pragma once
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace spinlm {

// Sums of per-step metric values over a logging window; the logged value is the mean over
// the window's steps (what transformers' Trainer logs for loss, TRL for its stored metrics).
class MetricWindow {
 public:
  void add_step(const std::map<std::string, double>& values);
  bool empty() const { return steps_ == 0; }
  std::map<std::string, double> means() const;
  void clear();
  nlohmann::json to_json() const;  // for the resumable trainer state
  void from_json(const nlohmann::json& state);

 private:
  std::map<std::string, double> sums_;
  int64_t steps_ = 0;
};

// Appends rows to OUT/metrics.jsonl, flushing each. On resume the file is cut back to the
// rows the checkpoint had written (atomically), so a resumed run's file equals an
// uninterrupted run's.
class MetricsWriter {
 public:
  // keep_rows < 0: start a new file (an old one is replaced).
  MetricsWriter(std::string path, int64_t keep_rows);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void write(const nlohmann::json& row);
  int64_t rows() const { return rows_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  int64_t rows_ = 0;
};

// The metrics row for a step: values plus step and epoch, keys as documented above.
nlohmann::json metrics_row(const std::map<std::string, double>& values, int64_t step, double epoch,
                           const std::string& prefix = "");

}  // namespace spinlm
