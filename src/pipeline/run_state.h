// The run folder of `spinlm run` and what it has finished:
//   RUN/state.json            finished steps (rewritten atomically after each one)
//   RUN/recipe.json           the validated recipe, to refuse resuming with another one
//   RUN/run.log               one timestamped line per event
//   RUN/iter_T/pairs.jsonl    generated pairs; model/ the trained p_{T+1}; metrics.jsonl;
//   RUN/iter_T/eval.json      the evaluation of p_{T+1}
// A step is marked done only after its outputs are in place, so a kill at any moment leaves
// either a finished step or one that is redone (itself resumable) on --resume.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace spinlm {

class RunState {
 public:
  // Opens run_dir. A fresh run refuses a folder that already holds a state.json (an Error
  // saying to pass --resume or pick another folder); resume requires the state and the same
  // recipe_json as the first run.
  static RunState open(const std::string& run_dir, const std::string& recipe_json, bool resume);
  // A reader's view for the other ranks of a distributed run: the state.json the writer
  // (rank 0) opened, which must exist; mark_done, set and log change only this copy, so it
  // follows the writer's as long as every rank runs the same steps.
  static RunState follow(const std::string& run_dir);

  const std::string& dir() const { return dir_; }
  // RUN/iter_T (created).
  std::string iteration_dir(int64_t t) const;

  bool done(const std::string& step) const;
  // What was recorded with the step (null when the step is not done).
  nlohmann::json result(const std::string& step) const;
  // Records the step (with an optional result) and rewrites state.json atomically.
  void mark_done(const std::string& step, const nlohmann::json& result = nullptr);
  // Names of the finished steps in the order they finished.
  std::vector<std::string> finished_steps() const;
  // Forgets step and every step recorded after it (and "finished", "stopped"), so a resumed
  // run does them again; rewrites state.json.
  void forget_from(const std::string& step);

  // Free-form fields of state.json (e.g. "stopped": reason).
  void set(const std::string& key, const nlohmann::json& value);
  nlohmann::json get(const std::string& key) const;

  // Appends "YYYY-mm-ddTHH:MM:SSZ message" to run.log (flushed) and logs it on stderr.
  void log(const std::string& message) const;

 private:
  void save() const;

  std::string dir_;
  nlohmann::json state_;
  bool writer_ = true;  // writes state.json and run.log (rank 0)
};

}  // namespace spinlm
