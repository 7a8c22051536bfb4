// Recipe parsing: every map is checked against its known keys before values are read, and
// every value error names the key and the FILE:LINE yaml-cpp recorded for it.
#include "pipeline/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/answer_distribution.h"
#include "io/jsonl.h"
#include "eval/builtin_tasks.h"
#include "eval/evaluator.h"
#include "eval/task_yaml.h"
#include "train/train_device.h"

namespace spinlm {
namespace {

// The training keys, accepted at the top level (defaults) and in each iteration.
const std::vector<std::string> kTrainKeys = {
    "learning_rate", "beta", "loss_type", "num_train_epochs", "per_device_train_batch_size",
    "gradient_accumulation_steps", "max_length", "max_prompt_length", "warmup_ratio",
    "lr_scheduler_type", "optim", "weight_decay", "max_grad_norm", "logging_steps",
    "sft_weight", "mix_previous", "gradient_checkpointing", "optimizer_state_dtype", "save_steps",
    "use_peft", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "use_rslora"};

// The top-level keys besides the training keys.
const std::vector<std::string> kTopKeys = {"model_name_or_path", "output_dir", "seed", "num_iterations", "device",
                                           "torch_dtype", "bf16", "data", "generation", "evaluation",
                                           "iterations", "stop", "control", "keep_checkpoints"};

// Edit distance with adjacent transpositions (optimal string alignment): "learning_rte" is 1
// from "learning_rate", "optmi" 1 from "optim".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The known key nearest to key, when it is near enough to be a typo of it (at most a third
// of the key's characters differ, and at least 1 may); empty otherwise. Ties: the first in
// known's order.
std::string nearest_key(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = std::max<size_t>(1, key.size() / 3) + 1;
  for (const std::string& k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_distance) best = k, best_distance = d;
  }
  return best;
}

// A YAML map with the context for error messages.
class Section {
 public:
  Section(YAML::Node node, std::string source, std::string path)
      : node_(node), source_(std::move(source)), path_(std::move(path)) {}

  // Every key must be one of known: an Error names the first that is not, with the known
  // key nearest to it by edit distance when one is close.
  void only(const std::vector<std::string>& known) const {
    for (const auto& entry : node_) {
      const std::string key = entry.first.as<std::string>();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      const std::string nearest = nearest_key(key, known);
      if (!nearest.empty()) fail(where(entry.first), ": unknown key '", name(key), "'; did you mean '", name(nearest), "'?");
      fail(where(entry.first), ": unknown key '", name(key),
           "' (not a key here, nor close to one; the keys are listed in src/pipeline/recipe.h)");
    }
  }

  bool has(const std::string& key) const { return bool(node_[key]); }

  // "FILE:LINE" of a node; just FILE for a key that is absent (check() builds its message
  // arguments before it knows whether they are needed).
  std::string where(const YAML::Node& node) const {
    if (!node) return source_;
    const YAML::Mark mark = node.Mark();
    return source_ + ":" + std::to_string(mark.line + 1);
  }
  std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  YAML::Node get(const std::string& key) const { return node_[key]; }

  Section child(const std::string& key) const {
    YAML::Node n = node_[key];
    check(n.IsMap(), where(n), ": key '", name(key), "' must be a map of settings");
    return Section(n, source_, name(key));
  }

  // Reads a scalar of type T into out when the key is present.
  template <class T>
  bool read(const std::string& key, T& out, const char* expected) const {
    YAML::Node n = node_[key];
    if (!n) return false;
    check(n.IsScalar(), where(n), ": key '", name(key), "' must be ", expected);
    try {
      out = n.as<T>();
    } catch (const YAML::Exception&) {
      fail(where(n), ": key '", name(key), "' must be ", expected, ", got '", n.Scalar(), "'");
    }
    return true;
  }

  void number(const std::string& key, double& out, double low, double high) const {
    if (!read(key, out, "a number")) return;
    check(std::isfinite(out) && out >= low && out <= high, where(get(key)), ": key '", name(key),
          "' must be in [", low, ", ", high, "], got ", out);
  }
  void positive(const std::string& key, double& out) const {
    if (!read(key, out, "a number")) return;
    check(std::isfinite(out) && out > 0, where(get(key)), ": key '", name(key),
          "' must be a positive number, got ", out);
  }
  void integer(const std::string& key, int64_t& out, int64_t low) const {
    if (!read(key, out, "an integer")) return;
    check(out >= low, where(get(key)), ": key '", name(key), "' must be at least ", low,
          ", got ", out);
  }
  void flag(const std::string& key, bool& out) const { read(key, out, "true or false"); }
  // A list of non-empty strings (a single string counts as a list of one); the nodes come
  // back for their FILE:LINE.
  std::vector<YAML::Node> strings(const std::string& key, std::vector<std::string>& out) const {
    std::vector<YAML::Node> nodes;
    YAML::Node n = node_[key];
    if (!n) return nodes;
    if (n.IsScalar()) {
      nodes.push_back(n);
    } else {
      check(n.IsSequence(), where(n), ": key '", name(key), "' must be a list of strings");
      for (const YAML::Node& item : n) nodes.push_back(item);
    }
    for (size_t i = 0; i < nodes.size(); ++i) {
      check(nodes[i].IsScalar() && !nodes[i].Scalar().empty(), where(nodes[i]), ": key '", name(key), "[", i,
            "]' must be a non-empty string");
      out.push_back(nodes[i].Scalar());
    }
    return nodes;
  }
  void text(const std::string& key, std::string& out) const {
    read(key, out, "a string");
    check(!has(key) || !out.empty(), where(get(key)), ": key '", name(key), "' must not be empty");
  }
  // A string that must be one of choices; aliases map other spellings to a choice.
  void choice(const std::string& key, std::string& out, const std::vector<std::string>& choices,
              const std::vector<std::pair<std::string, std::string>>& aliases = {}) const {
    std::string value;
    if (!read(key, value, "a string")) return;
    for (const auto& [alias, target] : aliases)
      if (value == alias) value = target;
    if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
      std::string list;
      for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
      fail(where(get(key)), ": key '", name(key), "' must be one of ", list, ", got '",
           get(key).Scalar(), "'");
    }
    out = value;
  }

 private:
  YAML::Node node_;
  std::string source_;
  std::string path_;
};

// TRL's PEFT keys: use_peft switches LoRA on with lora_r (default 16); the rest as LoraOptions.
void read_lora(const Section& s, LoraOptions& l) {
  bool use_peft = l.r > 0;
  int64_t rank = l.r > 0 ? l.r : 16;
  s.flag("use_peft", use_peft);
  s.integer("lora_r", rank, 1);
  s.number("lora_alpha", l.alpha, -1e9, 1e9);
  s.number("lora_dropout", l.dropout, 0.0, 0.999);
  s.flag("use_rslora", l.use_rslora);
  if (s.has("lora_target_modules")) {
    const YAML::Node n = s.get("lora_target_modules");
    nlohmann::json value;
    if (n.IsScalar()) {
      value = n.Scalar();
    } else {
      std::vector<std::string> names;
      s.strings("lora_target_modules", names);
      value = names;
    }
    l.targets = LoraTargets::from_json(value, s.where(n) + ": key '" + s.name("lora_target_modules") + "'");
  }
  l.r = use_peft ? rank : 0;
}

void read_train(const Section& s, TrainSettings& t) {
  s.positive("learning_rate", t.learning_rate);
  s.positive("beta", t.beta);
  // TRL calls the paper's logistic loss "sigmoid".
  s.choice("loss_type", t.loss, {"logistic", "hinge", "exponential", "ipo"},
           {{"sigmoid", "logistic"}});
  s.integer("num_train_epochs", t.num_train_epochs, 1);
  s.integer("per_device_train_batch_size", t.per_device_train_batch_size, 1);
  s.integer("gradient_accumulation_steps", t.gradient_accumulation_steps, 1);
  s.integer("max_length", t.max_length, 2);
  s.integer("max_prompt_length", t.max_prompt_length, 1);
  s.number("warmup_ratio", t.warmup_ratio, 0.0, 1.0);
  s.choice("lr_scheduler_type", t.lr_scheduler_type, {"linear", "cosine", "constant"});
  s.choice("optim", t.optim, {"rmsprop", "adamw"},
           {{"adamw_torch", "adamw"}, {"adamw_hf", "adamw"}, {"RMSprop", "rmsprop"}});
  s.number("weight_decay", t.weight_decay, 0.0, 1.0);
  s.number("max_grad_norm", t.max_grad_norm, 0.0, 1e9);
  s.integer("logging_steps", t.logging_steps, 1);
  s.number("sft_weight", t.sft_weight, 0.0, 1e6);
  s.flag("mix_previous", t.mix_previous);
  s.flag("gradient_checkpointing", t.gradient_checkpointing);
  // HF's torch_dtype spellings; the trainer's own (--optimizer-state-dtype) are accepted too.
  std::string state = t.optimizer_state_dtype == "bf16" ? "bfloat16" : "float32";
  s.choice("optimizer_state_dtype", state, {"float32", "bfloat16"}, {{"fp32", "float32"}, {"bf16", "bfloat16"}});
  t.optimizer_state_dtype = state == "bfloat16" ? "bf16" : "fp32";
  s.integer("save_steps", t.save_steps, 0);
  read_lora(s, t.lora);
  if (t.max_prompt_length >= t.max_length)
    fail(s.where(s.has("max_prompt_length") ? s.get("max_prompt_length") : s.get("max_length")),
         ": key '", s.name("max_prompt_length"), "' (", t.max_prompt_length,
         ") must be below max_length (", t.max_length, ")");
}

// device: the values of --device, checked for their form only (whether this build and machine
// have the device is checked when the run resolves it, after --device had its say).
void read_device(const Section& top, PlacementSettings& p) {
  if (!top.read("device", p.device, "a string")) return;
  const std::string& d = p.device;
  const bool index = d.size() > 5 && d.compare(0, 5, "cuda:") == 0 &&
                     d.find_first_not_of("0123456789", 5) == std::string::npos;
  check(d == "auto" || d == "cpu" || d == "cuda" || index, top.where(top.get("device")),
        ": key 'device' must be auto, cpu, cuda or cuda:N (as --device), got '", d, "'");
  if (d == "auto") return;
  p.device_at = top.where(top.get("device"));
  p.device_key = "device: " + d + " at " + p.device_at;
}

// torch_dtype (HF's names) and bf16 (TRL's flag) say one thing here: the dtype the models are
// stored, run and trained in, since spinlm trains in one dtype (no autocast); fp32 master
// weights come with optimizer_state_dtype float32. bf16: true is bfloat16, bf16: false is
// float32; torch_dtype auto leaves the choice to --dtype. float16 is refused (no loss scaling).
void read_dtype(const Section& top, PlacementSettings& p) {
  std::string torch_dtype = "auto";
  top.choice("torch_dtype", torch_dtype, {"auto", "float32", "bfloat16", "float16"});
  const std::string torch_at = top.where(top.get("torch_dtype"));
  check(torch_dtype != "float16", torch_at, ": key 'torch_dtype' float16 cannot be trained (it needs loss scaling, "
        "which spinlm does not do); use bfloat16 or float32");
  if (torch_dtype != "auto") {
    p.dtype = torch_dtype == "bfloat16" ? "bf16" : "fp32";
    p.dtype_key = "torch_dtype: " + torch_dtype + " at " + torch_at;
  }
  bool bf16 = false;
  if (!top.read("bf16", bf16, "true or false")) return;
  const std::string bf16_at = top.where(top.get("bf16"));
  const std::string flag = bf16 ? "bf16: true" : "bf16: false";
  if (bf16 && torch_dtype == "float32")
    fail(bf16_at, ": key 'bf16' true contradicts torch_dtype: float32 (", torch_at, "): in transformers that pair is "
         "mixed precision (fp32 weights, bf16 compute), which spinlm does not have; for bf16 training with fp32 "
         "master weights give bf16: true (or torch_dtype: bfloat16) and optimizer_state_dtype: float32");
  if (!bf16 && torch_dtype == "bfloat16")
    fail(bf16_at, ": key 'bf16' false contradicts torch_dtype: bfloat16 (", torch_at, "); keep one of them");
  p.dtype = bf16 ? "bf16" : "fp32";
  p.dtype_key = flag + " at " + bf16_at;
}

std::string resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || base_dir.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

// Builds every prompt of the task (reads and checks its data rows and few-shot pool) so that
// a missing file, a bad row or a too-small pool fails now, naming the recipe key.
void check_task(const TaskDefinition& task, const EvaluationSettings& ev, const std::string& where,
                const std::string& key) {
  EvalOptions options;
  options.data_dir = ev.data_dir;
  options.num_fewshot = int(ev.num_fewshot);
  options.limit = ev.limit > 0 ? ev.limit : -1;
  try {
    build_task_prompts(task, options);
  } catch (const Error& error) {
    fail(where, ": key '", key, "' (task ", task.config.name, "): ", error.what());
  }
}

void read_evaluation(const Section& e, const std::string& base_dir, EvaluationSettings& ev) {
  e.only({"heldout_reward_accuracy", "heldout_nll", "exact_match", "heldout_exact_match", "sample_accuracy",
          "distribution", "displacement_warning", "max_new_tokens", "tasks", "task_files", "data_dir",
          "num_fewshot", "limit", "batch_size"});
  e.flag("heldout_reward_accuracy", ev.heldout_reward_accuracy);
  e.flag("heldout_nll", ev.heldout_nll);
  e.flag("exact_match", ev.exact_match);
  e.flag("heldout_exact_match", ev.heldout_exact_match);
  e.flag("sample_accuracy", ev.sample_accuracy);
  e.flag("distribution", ev.distribution);
  e.number("displacement_warning", ev.displacement_warning, 0.0, 1e9);
  e.integer("max_new_tokens", ev.max_new_tokens, 1);
  e.integer("num_fewshot", ev.num_fewshot, 0);
  e.integer("limit", ev.limit, 0);
  e.integer("batch_size", ev.batch_size, 1);
  const std::vector<YAML::Node> task_nodes = e.strings("tasks", ev.tasks);
  const std::vector<YAML::Node> file_nodes = e.strings("task_files", ev.task_files);
  e.text("data_dir", ev.data_dir);
  ev.data_dir = resolve(ev.data_dir, base_dir);
  if (!ev.has_tasks()) {
    for (const char* key : {"data_dir", "num_fewshot", "limit"})
      check(!e.has(key), e.where(e.get(key)), ": key '", e.name(key), "' needs evaluation.tasks or evaluation.task_files");
    return;
  }
  // Names first (no data needed), then the data folder, then every task's files.
  std::vector<std::pair<TaskDefinition, std::string>> tasks;  // with the recipe key
  std::vector<YAML::Node> nodes;
  std::set<std::string> seen;
  for (size_t i = 0; i < ev.tasks.size(); ++i) {
    const std::string key = e.name("tasks") + "[" + std::to_string(i) + "]";
    if (!is_builtin_task(ev.tasks[i])) {
      std::string known;
      for (const std::string& name : builtin_task_names()) known += (known.empty() ? "" : ", ") + name;
      fail(e.where(task_nodes[i]), ": key '", key, "': unknown task '", ev.tasks[i], "' (built-in: ", known,
           "; your own tasks go in task_files)");
    }
    tasks.emplace_back(builtin_task(ev.tasks[i]), key);
    nodes.push_back(task_nodes[i]);
  }
  for (size_t i = 0; i < ev.task_files.size(); ++i) {
    const std::string key = e.name("task_files") + "[" + std::to_string(i) + "]";
    ev.task_files[i] = resolve(ev.task_files[i], base_dir);
    try {
      tasks.emplace_back(load_task_yaml(ev.task_files[i]), key);
    } catch (const Error& error) {
      fail(e.where(file_nodes[i]), ": key '", key, "': ", error.what());
    }
    nodes.push_back(file_nodes[i]);
  }
  for (size_t i = 0; i < tasks.size(); ++i)
    check(seen.insert(tasks[i].first.config.name).second, e.where(nodes[i]), ": key '", tasks[i].second,
          "': task '", tasks[i].first.config.name, "' is listed twice");
  check(e.has("data_dir"), e.where(nodes.front()), ": key '", e.name(task_nodes.empty() ? "task_files" : "tasks"),
        "' needs '", e.name("data_dir"), "' (the folder of <task>.jsonl files, docs/eval.md)");
  check(std::filesystem::is_directory(ev.data_dir), e.where(e.get("data_dir")), ": key '", e.name("data_dir"),
        "': folder ", ev.data_dir, " does not exist");
  for (size_t i = 0; i < tasks.size(); ++i) check_task(tasks[i].first, ev, e.where(nodes[i]), tasks[i].second);
}

}  // namespace

Recipe parse_recipe(const std::string& yaml_text, const std::string& source,
                    const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& error) {
    fail(source, ":", error.mark.line + 1, ": not valid YAML: ", error.msg);
  }
  check(root.IsMap(), source, ": a recipe is a YAML map of settings");
  Recipe recipe;
  recipe.source = source;
  const Section top(root, source, "");
  std::vector<std::string> known = kTopKeys;
  known.insert(known.end(), kTrainKeys.begin(), kTrainKeys.end());
  top.only(known);

  check(top.has("model_name_or_path"), source, ": missing key 'model_name_or_path' (the SFT model folder)");
  top.text("model_name_or_path", recipe.model_name_or_path);
  recipe.model_name_or_path = resolve(recipe.model_name_or_path, base_dir);
  top.text("output_dir", recipe.output_dir);
  recipe.output_dir = resolve(recipe.output_dir, base_dir);
  int64_t seed = 42;
  top.integer("seed", seed, 0);
  recipe.seed = uint64_t(seed);
  read_device(top, recipe.placement);
  read_dtype(top, recipe.placement);

  TrainSettings defaults;
  read_train(top, defaults);

  check(top.has("data"), source, ": missing key 'data' (with data.train, the SFT conversations)");
  const Section data = top.child("data");
  data.only({"train", "heldout", "test", "max_train_samples", "max_heldout_samples", "max_test_samples"});
  check(data.has("train"), data.where(root["data"]), ": missing key 'data.train'");
  data.text("train", recipe.data.train);
  data.text("heldout", recipe.data.heldout);
  data.text("test", recipe.data.test);
  for (std::string* path : {&recipe.data.train, &recipe.data.heldout, &recipe.data.test})
    *path = resolve(*path, base_dir);
  data.integer("max_train_samples", recipe.data.max_train_samples, 0);
  data.integer("max_heldout_samples", recipe.data.max_heldout_samples, 0);
  data.integer("max_test_samples", recipe.data.max_test_samples, 0);

  if (top.has("generation")) {
    const Section g = top.child("generation");
    g.only({"max_new_tokens", "temperature", "top_p", "top_k", "min_p", "batch_size", "prompt_format", "negatives"});
    SamplingSettings& gen = recipe.generation;
    g.integer("max_new_tokens", gen.max_new_tokens, 1);
    g.number("temperature", gen.temperature, 0.0, 100.0);
    g.number("top_p", gen.top_p, 0.0, 1.0);
    check(gen.top_p > 0, g.where(g.get("top_p")), ": key 'generation.top_p' must be above 0");
    g.integer("top_k", gen.top_k, 0);
    g.number("min_p", gen.min_p, 0.0, 1.0);
    g.integer("batch_size", gen.batch_size, 1);
    g.choice("prompt_format", gen.prompt_format, {"chat", "spin-legacy"});
    if (g.has("negatives")) {
      const Section n = g.child("negatives");
      n.only({"reject", "verifier", "max_resamples"});
      std::string reject = "none";
      n.choice("reject", reject, {"none", "verified"});
      gen.negatives.reject_verified = reject == "verified";
      n.choice("verifier", gen.negatives.verifier, {"final_answer", "solution"});
      n.integer("max_resamples", gen.negatives.max_resamples, 0);
      check(gen.negatives.reject_verified || (!n.has("verifier") && !n.has("max_resamples")),
            n.where(n.get(n.has("verifier") ? "verifier" : "max_resamples")),
            ": key 'generation.negatives' needs reject: verified for its other settings");
    }
  }

  if (top.has("evaluation")) read_evaluation(top.child("evaluation"), base_dir, recipe.evaluation);
  // Evaluations that need a data set are off when the set is missing.
  if (recipe.data.heldout.empty()) recipe.evaluation.heldout_reward_accuracy = recipe.evaluation.heldout_nll = false;
  if (recipe.data.test.empty()) recipe.evaluation.exact_match = false;
  if (recipe.data.heldout.empty() && recipe.evaluation.heldout_exact_match) {
    const Section e = top.child("evaluation");
    fail(e.where(e.get("heldout_exact_match")), ": key 'evaluation.heldout_exact_match' needs data.heldout");
  }

  if (recipe.evaluation.distribution) {
    const Section e = top.child("evaluation");
    check(!recipe.data.test.empty() || !recipe.data.heldout.empty(), e.where(e.get("distribution")),
          ": key 'evaluation.distribution' needs data.test or data.heldout");
    for (const std::string* path : {&recipe.data.test, &recipe.data.heldout}) {
      if (path->empty()) continue;
      check(data_path_exists(*path), e.where(e.get("distribution")), ": data file ", *path, " does not exist");
      check(rows_list_valid_answers(*path), e.where(e.get("distribution")),
            ": key 'evaluation.distribution' needs rows that list their valid answers (\"solutions\"), and ",
            *path, " has none: this task carries no answer distribution");
    }
  }

  int64_t num_iterations = -1;
  top.integer("num_iterations", num_iterations, 1);
  if (top.has("iterations")) {
    const YAML::Node list = root["iterations"];
    check(list.IsSequence() && list.size() > 0, top.where(list),
          ": key 'iterations' must be a list of per-iteration settings (one map per iteration)");
    for (size_t t = 0; t < list.size(); ++t) {
      check(list[t].IsMap() || list[t].IsNull(), top.where(list[t]), ": key 'iterations[", t,
            "]' must be a map of settings");
      TrainSettings settings = defaults;
      if (list[t].IsMap()) {
        const Section it(list[t], source, "iterations[" + std::to_string(t) + "]");
        for (const char* key : {"device", "torch_dtype", "bf16"})
          check(!it.has(key), it.where(list[t][key]), ": key '", it.name(key), "' belongs at the top level: every "
                "model of the run has one device and dtype");
        it.only(kTrainKeys);
        read_train(it, settings);
      }
      recipe.iterations.push_back(settings);
    }
    check(num_iterations < 0 || num_iterations == int64_t(list.size()), top.where(root["num_iterations"]),
          ": key 'num_iterations' (", num_iterations, ") disagrees with the ", list.size(),
          " entries of 'iterations'");
  } else {
    recipe.iterations.assign(size_t(num_iterations < 0 ? 1 : num_iterations), defaults);
  }

  if (top.has("stop")) {
    const Section s = top.child("stop");
    s.only({"reward_accuracy_stderrs", "min_train_margin", "patience", "metric"});
    if (s.has("reward_accuracy_stderrs")) {
      double k = 0;
      s.number("reward_accuracy_stderrs", k, 0.0, 100.0);
      recipe.stop.reward_accuracy_stderrs = k;
      check(recipe.evaluation.heldout_reward_accuracy, s.where(s.get("reward_accuracy_stderrs")),
            ": key 'stop.reward_accuracy_stderrs' needs data.heldout and evaluation.heldout_reward_accuracy");
    }
    s.number("min_train_margin", recipe.stop.min_train_margin, 0.0, 1e9);
    check(!s.has("min_train_margin") || recipe.stop.reward_accuracy_stderrs, s.where(s.get("min_train_margin")),
          ": key 'stop.min_train_margin' belongs to the rule of 'stop.reward_accuracy_stderrs'");
    s.integer("patience", recipe.stop.patience, 0);
    // Patience watches a validation measurement: choices never look at data.test.
    const EvaluationSettings& ev = recipe.evaluation;
    s.choice("metric", recipe.stop.metric, {"heldout_exact_match", "heldout_nll", "heldout_forward_kl"});
    if (recipe.stop.metric.empty())
      recipe.stop.metric = ev.heldout_exact_match ? "heldout_exact_match"
                           : ev.distribution && !recipe.data.heldout.empty() ? "heldout_forward_kl"
                                                                             : "heldout_nll";
    const bool evaluated = recipe.stop.metric == "heldout_exact_match" ? ev.heldout_exact_match
                           : recipe.stop.metric == "heldout_nll"     ? ev.heldout_nll
                                                                     : ev.distribution && !recipe.data.heldout.empty();
    const std::string needs = recipe.stop.metric == "heldout_forward_kl" ? "distribution" : recipe.stop.metric;
    check(recipe.stop.patience == 0 || evaluated, s.where(s.get(s.has("metric") ? "metric" : "patience")),
          ": key 'stop.patience' watches ", recipe.stop.metric, ", which needs data.heldout and evaluation.",
          needs, " (the stop rule uses the validation split only, never data.test)");
  }
  if (top.has("control")) {
    const Section c = top.child("control");
    c.only({"enabled"});
    c.flag("enabled", recipe.control.enabled);
  }
  top.flag("keep_checkpoints", recipe.checkpoints.keep);
  return recipe;
}

Recipe load_recipe(const std::string& path) {
  const std::string text = read_file(path);
  return parse_recipe(text, path, std::filesystem::path(path).parent_path().string());
}

namespace {

bool is_open(const std::string& value) { return value.empty() || value == "auto"; }

// The --dtype spellings of one dtype as one name (fp32, bf16, fp16); others unchanged, for
// resolve_train_device's error.
std::string dtype_name(const std::string& value) {
  if (value == "float32") return "fp32";
  if (value == "bfloat16") return "bf16";
  if (value == "float16") return "fp16";
  return value;
}

}  // namespace

RunPlacement resolve_placement(const PlacementSettings& recipe, const std::string& device_option,
                               const std::string& dtype_option) {
  RunPlacement p;
  if (!is_open(device_option)) {
    p.device = device_option;
    p.device_from = "--device";
  } else if (!is_open(recipe.device)) {
    p.device = recipe.device;
    p.device_from = recipe.device_key;
  } else {
    p.device = "auto";
    p.device_from = "default";
  }
  const std::string asked = dtype_name(dtype_option);
  if (!is_open(asked) && !is_open(recipe.dtype)) {
    check(asked == recipe.dtype, "--dtype ", dtype_option, " contradicts the recipe's ", recipe.dtype_key,
          ": give the dtype in one place, or the same in both");
    p.dtype = asked;
    p.dtype_from = "--dtype and " + recipe.dtype_key;
  } else if (!is_open(asked)) {
    p.dtype = asked;
    p.dtype_from = "--dtype";
  } else if (!is_open(recipe.dtype)) {
    p.dtype = recipe.dtype;
    p.dtype_from = recipe.dtype_key;
  } else {
    p.dtype = "auto";
    p.dtype_from = "default";
  }
  return p;
}

TrainDevice resolve_run_device(const PlacementSettings& recipe, const RunPlacement& placement) {
  TrainLoopOptions options;
  options.device = placement.device;
  options.dtype = placement.dtype;
  try {
    return resolve_train_device(options);
  } catch (const Error& error) {
    const std::string message = error.what();
    const std::string option = "--device " + placement.device;
    if (placement.device_from != recipe.device_key || recipe.device_key.empty() || message.rfind(option, 0) != 0)
      throw;
    fail(recipe.device_at, ": key 'device' ", placement.device, message.substr(option.size()),
         " (--device overrides the recipe's device)");
  }
}

std::string recipe_to_json(const Recipe& r) {
  // Settings added later appear only when they change what a run does, so the recipe.json of
  // run folders written before them still matches on --resume.
  nlohmann::json iterations = nlohmann::json::array();
  for (const TrainSettings& t : r.iterations) {
    nlohmann::json it = {{"learning_rate", t.learning_rate}, {"beta", t.beta}, {"loss_type", t.loss},
                         {"num_train_epochs", t.num_train_epochs},
                         {"per_device_train_batch_size", t.per_device_train_batch_size},
                         {"gradient_accumulation_steps", t.gradient_accumulation_steps},
                         {"max_length", t.max_length}, {"max_prompt_length", t.max_prompt_length},
                         {"warmup_ratio", t.warmup_ratio}, {"lr_scheduler_type", t.lr_scheduler_type},
                         {"optim", t.optim}, {"weight_decay", t.weight_decay},
                         {"max_grad_norm", t.max_grad_norm}, {"logging_steps", t.logging_steps},
                         {"sft_weight", t.sft_weight}, {"mix_previous", t.mix_previous}};
    if (t.gradient_checkpointing) it["gradient_checkpointing"] = true;
    if (t.optimizer_state_dtype != "fp32") it["optimizer_state_dtype"] = t.optimizer_state_dtype;
    if (t.save_steps > 0) it["save_steps"] = t.save_steps;
    if (t.lora.enabled()) {
      it["use_peft"] = true;
      it["lora_r"] = t.lora.r;
      it["lora_alpha"] = t.lora.alpha;
      it["lora_dropout"] = t.lora.dropout;
      it["lora_target_modules"] = t.lora.targets.to_string();
      it["use_rslora"] = t.lora.use_rslora;
    }
    iterations.push_back(it);
  }
  const SamplingSettings& g = r.generation;
  const EvaluationSettings& e = r.evaluation;
  nlohmann::json out = {
      {"model_name_or_path", r.model_name_or_path},
      {"seed", r.seed},
      {"data", {{"train", r.data.train}, {"heldout", r.data.heldout}, {"test", r.data.test},
                {"max_train_samples", r.data.max_train_samples},
                {"max_heldout_samples", r.data.max_heldout_samples},
                {"max_test_samples", r.data.max_test_samples}}},
      {"generation", {{"max_new_tokens", g.max_new_tokens}, {"temperature", g.temperature},
                      {"top_p", g.top_p}, {"top_k", g.top_k}, {"min_p", g.min_p},
                      {"batch_size", g.batch_size}, {"prompt_format", g.prompt_format}}},
      {"evaluation", {{"heldout_reward_accuracy", e.heldout_reward_accuracy},
                      {"heldout_nll", e.heldout_nll}, {"exact_match", e.exact_match},
                      {"max_new_tokens", e.max_new_tokens}}},
      {"iterations", iterations},
      {"stop", nlohmann::json::object({{"patience", r.stop.patience}})},
      {"control", {{"enabled", r.control.enabled}}}};
  if (!is_open(r.placement.device)) out["device"] = r.placement.device;
  if (!is_open(r.placement.dtype)) out["torch_dtype"] = r.placement.dtype == "bf16" ? "bfloat16" : "float32";
  if (e.heldout_exact_match) out["evaluation"]["heldout_exact_match"] = true;
  if (e.sample_accuracy) out["evaluation"]["sample_accuracy"] = true;
  if (e.distribution) out["evaluation"]["distribution"] = true;
  if (g.negatives.reject_verified)
    out["generation"]["negatives"] = {{"reject", "verified"}, {"verifier", g.negatives.verifier},
                                      {"max_resamples", g.negatives.max_resamples}};
  if (e.has_tasks())
    out["evaluation"].update({{"tasks", e.tasks}, {"task_files", e.task_files}, {"data_dir", e.data_dir},
                              {"num_fewshot", e.num_fewshot}, {"limit", e.limit}, {"batch_size", e.batch_size}});
  if (r.stop.patience > 0) out["stop"]["metric"] = r.stop.metric;
  if (r.stop.reward_accuracy_stderrs)
    out["stop"].update({{"reward_accuracy_stderrs", *r.stop.reward_accuracy_stderrs},
                        {"min_train_margin", r.stop.min_train_margin}});
  if (r.checkpoints.keep) out["keep_checkpoints"] = true;
  return out.dump(2);
}

}  // namespace spinlm
