#include "io/work_journal.h"

#include <cstdio>

#include "core/error.h"
#include "core/logging.h"
#include "core/stop_signal.h"

namespace spinlm {

WorkJournal::WorkJournal(const std::string& path, const nlohmann::json& fingerprint, const Ranks& ranks,
                         std::string label)
    : label_(std::move(label)) {
  if (path.empty()) return;
  const std::string own = ranks.group == nullptr ? path : rank_file_path(path, ranks.index(), ranks.count());
  file_ = std::make_unique<ResumableJsonl>(own);
  const std::vector<nlohmann::json>& rows = file_->existing_rows();
  if (rows.empty()) {
    file_->append({{"fingerprint", fingerprint}});
    return;
  }
  const std::string where = file_->partial_path();
  check(rows.front().is_object() && rows.front().contains("fingerprint"), where,
        ": line 1 is not a journal's fingerprint; delete the file to start over");
  check(rows.front()["fingerprint"] == fingerprint, where, ": made by another ", label_, " (",
        rows.front()["fingerprint"].dump(), ", now ", fingerprint.dump(),
        "); delete it to start this one over, or rerun the ", label_, " it was made by");
  for (size_t i = 1; i < rows.size(); ++i) {
    const nlohmann::json& row = rows[i];
    check(row.is_object() && row.contains("part") && row["part"].is_string() && row.contains("key") &&
              row["key"].is_string() && row.contains("value"),
          where, ":", i + 1, ": not a journal row (part, key, value); delete the file to start over");
    values_[row["part"].get<std::string>() + '\n' + row["key"].get<std::string>()] = row["value"];
  }
  log_info(where, ": resuming with ", values_.size(), " finished units of work");
}

WorkJournal::~WorkJournal() = default;

const nlohmann::json* WorkJournal::find(const std::string& part, const std::string& key) const {
  const auto found = values_.find(part + '\n' + key);
  return found == values_.end() ? nullptr : &found->second;
}

void WorkJournal::record(const std::string& part, const std::string& key, const nlohmann::json& value) {
  if (file_) {
    file_->append({{"part", part}, {"key", key}, {"value", value}});
    values_[part + '\n' + key] = value;
  }
  safe_point();
}

void WorkJournal::safe_point() const {
  if (!stop_requested()) return;
  const std::string stopped = label_ + " stopped by " + signal_name(stop_signal());
  if (!file_) throw Preempted(stopped + "; nothing was kept");
  throw Preempted(stopped + "; " + std::to_string(values_.size()) + " finished units of work are kept in " +
                  file_->partial_path() +
                  ": rerun the same command to continue (spinlm run and spinlm train: with --resume)");
}

void WorkJournal::remove() {
  if (!file_) return;
  const std::string path = file_->partial_path();
  file_.reset();
  std::remove(path.c_str());
}

void UnitKey::bytes(const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    a_ = (a_ ^ p[i]) * 0x100000001b3ULL;
    b_ = (b_ ^ p[i]) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
  }
}

UnitKey& UnitKey::add(const std::vector<int64_t>& ids) {
  const int64_t n = int64_t(ids.size());
  bytes(&n, sizeof n);
  bytes(ids.data(), ids.size() * sizeof(int64_t));
  return *this;
}

UnitKey& UnitKey::add(const std::string& text) {
  const int64_t n = int64_t(text.size());
  bytes(&n, sizeof n);
  bytes(text.data(), text.size());
  return *this;
}

std::string UnitKey::hex() const {
  char text[33];
  std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(a_),
                static_cast<unsigned long long>(b_));
  return text;
}

}  // namespace spinlm
