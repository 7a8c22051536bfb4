#include "train/metrics.h"

#include <cstdio>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/jsonl.h"

namespace spinlm {

void MetricWindow::add_step(const std::map<std::string, double>& values) {
  for (const auto& [key, value] : values) sums_[key] += value;
  ++steps_;
}

std::map<std::string, double> MetricWindow::means() const {
  std::map<std::string, double> out;
  for (const auto& [key, sum] : sums_) out[key] = steps_ > 0 ? sum / static_cast<double>(steps_) : 0.0;
  return out;
}

void MetricWindow::clear() {
  sums_.clear();
  steps_ = 0;
}

nlohmann::json MetricWindow::to_json() const { return {{"sums", sums_}, {"steps", steps_}}; }

void MetricWindow::from_json(const nlohmann::json& state) {
  sums_ = state.at("sums").get<std::map<std::string, double>>();
  steps_ = state.at("steps").get<int64_t>();
}

MetricsWriter::MetricsWriter(std::string path, int64_t keep_rows) : path_(std::move(path)) {
  std::string kept;
  if (keep_rows > 0 && file_exists(path_)) {
    const std::string content = read_file(path_);
    size_t pos = 0;
    for (int64_t i = 0; i < keep_rows; ++i) {
      const size_t end = content.find('\n', pos);
      check(end != std::string::npos, path_, ": has fewer rows than the checkpoint recorded (",
            keep_rows, "); start the run again without --resume");
      pos = end + 1;
    }
    kept = content.substr(0, pos);
    rows_ = keep_rows;
  }
  write_file_atomic(path_, kept);
  file_ = std::fopen(path_.c_str(), "ab");
  check(file_ != nullptr, path_, ": cannot open for appending");
}

MetricsWriter::~MetricsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsWriter::write(const nlohmann::json& row) {
  const std::string line = json_line(row) + "\n";
  check(std::fwrite(line.data(), 1, line.size(), file_) == line.size(), path_, ": write failed");
  std::fflush(file_);
  ++rows_;
}

nlohmann::json metrics_row(const std::map<std::string, double>& values, int64_t step, double epoch,
                           const std::string& prefix) {
  nlohmann::json row = nlohmann::json::object();
  for (const auto& [key, value] : values) row[prefix + key] = value;
  row["step"] = step;
  row["epoch"] = epoch;
  return row;
}

}  // namespace spinlm
