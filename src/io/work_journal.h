// Preemption for long computations that have no checkpoint of their own (evaluations,
// reference scoring; core/stop_signal.h). Their work is recorded unit by unit as it finishes,
// into a journal beside their output, and a rerun of the same computation takes recorded units
// from it instead of computing them again. A unit is named by its part (which computation:
// "arc_challenge", "heldout_sft", "reference") and a key, a digest of what it reads
// (UnitKey), so a recorded value serves only the same input. Callers form their batches as an
// uninterrupted run does and skip whole recorded ones, so a resumed computation gives the same
// numbers. The journal's first row is the computation's fingerprint (model, dtype, options); a
// journal with another fingerprint is an Error naming it. After every recorded unit comes a
// safe point: a stop request (SIGTERM, SIGINT, SIGUSR1) throws Preempted there, saying what
// is kept and how to continue. The journal is PATH.partial (a JSONL file appended line by
// line, a torn last line dropped); [dist] each rank keeps its own (PATH.rank-R-of-W.partial).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/collective.h"
#include "io/jsonl.h"

namespace spinlm {

class WorkJournal {
 public:
  // The journal of path (resumed when it exists with the same fingerprint; path empty: no file,
  // nothing is kept, and a stop request still ends the work at a safe point); label names the
  // computation in messages ("evaluation").
  WorkJournal(const std::string& path, const nlohmann::json& fingerprint, const Ranks& ranks, std::string label);
  ~WorkJournal();
  WorkJournal(const WorkJournal&) = delete;
  WorkJournal& operator=(const WorkJournal&) = delete;

  // The value recorded for (part, key), or null.
  const nlohmann::json* find(const std::string& part, const std::string& key) const;
  // Appends a finished unit (flushed before it returns), then passes a safe point.
  void record(const std::string& part, const std::string& key, const nlohmann::json& value);
  // Throws Preempted when a stop was requested.
  void safe_point() const;
  // The computation is complete: the journal file is removed.
  void remove();

 private:
  std::unique_ptr<ResumableJsonl> file_;
  std::map<std::string, nlohmann::json> values_;  // part + '\n' + key -> value
  std::string label_;
};

// Where one computation records its units: a part of a journal (journal null: nowhere, and
// no safe points).
struct JournalPart {
  WorkJournal* journal = nullptr;
  std::string name;

  explicit operator bool() const { return journal != nullptr; }
  const nlohmann::json* find(const std::string& key) const { return journal ? journal->find(name, key) : nullptr; }
  void record(const std::string& key, const nlohmann::json& value) const {
    if (journal) journal->record(name, key, value);
  }
};

// The key of a unit: a digest of token-id sequences (each with its length) and strings.
class UnitKey {
 public:
  UnitKey& add(const std::vector<int64_t>& ids);
  UnitKey& add(const std::string& text);
  std::string hex() const;

 private:
  uint64_t a_ = 0xcbf29ce484222325ULL, b_ = 0x84222325cbf29ce4ULL;  // two FNV-1a lanes
  void bytes(const void* data, size_t n);
};

}  // namespace spinlm
