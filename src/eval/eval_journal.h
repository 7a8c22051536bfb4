// Preemption for evaluations (core/stop_signal.h). Work is recorded unit by unit as it
// finishes, into a journal beside the evaluation's output, and a rerun of the same evaluation
// takes recorded units from it instead of computing them again:
//   part "<task>"          a batch of log-likelihood blocks (its per-continuation sums) or
//                          one greedy generation (its text), keyed by the tokens it reads;
//   part "heldout_sft"     a micro-batch of conversations (NLL sum, tokens);
//   part "heldout_pairs"   this rank's pair scores, keyed by every pair's tokens;
//   part "distribution"    a split's per-problem rows, keyed by its file and row limit.
// A key is a digest of what the unit reads, so a recorded value serves only the same input,
// and batches are formed as in an uninterrupted evaluation and skipped whole, so a resumed
// evaluation computes the same numbers. The journal's first row is the fingerprint of the
// evaluation (model, dtype, options); a journal with another fingerprint is an Error naming
// it. After every recorded unit comes a safe point: a stop request (SIGTERM, SIGINT,
// SIGUSR1) throws Preempted there, saying what is kept and how to continue.
// [dist] Each rank keeps its own journal (PATH.rank-R-of-W) of the units it computed.
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

class EvalJournal {
 public:
  // No journal: nothing is kept, and a stop request still ends the work at a safe point.
  EvalJournal() = default;
  // The journal of path (resumed when it exists with the same fingerprint); resume_hint says
  // how to continue ("rerun the same command").
  EvalJournal(const std::string& path, const nlohmann::json& fingerprint, const Ranks& ranks,
              std::string resume_hint);
  ~EvalJournal();
  EvalJournal(const EvalJournal&) = delete;
  EvalJournal& operator=(const EvalJournal&) = delete;

  // The value recorded for (part, key), or null.
  const nlohmann::json* find(const std::string& part, const std::string& key) const;
  // Appends a finished unit (flushed before it returns), then passes a safe point.
  void record(const std::string& part, const std::string& key, const nlohmann::json& value);
  // Throws Preempted when a stop was requested.
  void safe_point() const;
  // The evaluation is complete: the journal file is removed.
  void remove();

  int64_t recorded() const { return int64_t(values_.size()); }

 private:
  std::unique_ptr<ResumableJsonl> file_;
  std::map<std::string, nlohmann::json> values_;  // part + '\n' + key -> value
  std::string resume_hint_;
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
