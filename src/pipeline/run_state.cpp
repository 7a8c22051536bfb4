#include "pipeline/run_state.h"

#include <cstdio>
#include <ctime>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "core/logging.h"

namespace spinlm {

RunState RunState::open(const std::string& run_dir, const std::string& recipe_json, bool resume) {
  RunState run;
  run.dir_ = run_dir;
  const std::string state_path = run_dir + "/state.json";
  const std::string recipe_path = run_dir + "/recipe.json";
  if (file_exists(state_path)) {
    check(resume, run_dir, " already holds a run (state.json); pass --resume to continue it, "
          "or choose another output folder");
    run.state_ = read_json_file(state_path);
    check(run.state_.is_object() && run.state_.contains("steps") && run.state_["steps"].is_array(),
          state_path, ": not a spinlm run state");
    check(file_exists(recipe_path) && read_file(recipe_path) == recipe_json, run_dir,
          ": the recipe differs from the one this run started with (", recipe_path,
          "); resume with the same recipe or start a new output folder");
    return run;
  }
  // A resume of a run killed before its first state.json simply starts afresh.
  make_directories(run_dir);
  write_file_atomic(recipe_path, recipe_json);
  run.state_ = {{"steps", nlohmann::json::array()}, {"results", nlohmann::json::object()}};
  run.save();
  return run;
}

RunState RunState::follow(const std::string& run_dir) {
  RunState run;
  run.dir_ = run_dir;
  run.writer_ = false;
  const std::string state_path = run_dir + "/state.json";
  check(file_exists(state_path), state_path, ": missing; rank 0 opens the run folder before the other ranks read it "
        "(is the folder on a file system every rank sees?)");
  run.state_ = read_json_file(state_path);
  return run;
}

std::string RunState::iteration_dir(int64_t t) const {
  const std::string path = dir_ + "/iter_" + std::to_string(t);
  make_directories(path);
  return path;
}

bool RunState::done(const std::string& step) const {
  for (const auto& s : state_["steps"])
    if (s == step) return true;
  return false;
}

nlohmann::json RunState::result(const std::string& step) const {
  const auto& results = state_["results"];
  return results.contains(step) ? results[step] : nlohmann::json();
}

void RunState::mark_done(const std::string& step, const nlohmann::json& result) {
  if (!done(step)) state_["steps"].push_back(step);
  if (!result.is_null()) state_["results"][step] = result;
  save();
}

std::vector<std::string> RunState::finished_steps() const {
  return state_["steps"].get<std::vector<std::string>>();
}

void RunState::forget_from(const std::string& step) {
  nlohmann::json kept = nlohmann::json::array();
  bool forgetting = false;
  for (const auto& s : state_["steps"]) {
    forgetting = forgetting || s == step;
    if (forgetting)
      state_["results"].erase(s.get<std::string>());
    else
      kept.push_back(s);
  }
  state_["steps"] = kept;
  state_.erase("finished");
  state_.erase("stopped");
  save();
}

void RunState::set(const std::string& key, const nlohmann::json& value) {
  state_[key] = value;
  save();
}

nlohmann::json RunState::get(const std::string& key) const {
  return state_.contains(key) ? state_[key] : nlohmann::json();
}

void RunState::save() const {
  if (writer_) write_file_atomic(dir_ + "/state.json", state_.dump(2) + "\n");
}

void RunState::log(const std::string& message) const {
  if (!writer_) return;
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
  const std::string path = dir_ + "/run.log";
  std::FILE* file = std::fopen(path.c_str(), "a");
  check(file != nullptr, path, ": cannot append to the run log");
  std::fprintf(file, "%s %s\n", stamp, message.c_str());
  std::fclose(file);
  log_info(message);
}

}  // namespace spinlm
