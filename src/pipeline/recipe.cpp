// Recipe parsing: one table per section declares its keys (name, help, how each is read and
// recorded); the table drives the check for unknown keys, the reading, recipe.json and the
// key list (`spinlm run --list-keys`, docs/recipe-keys.md). Every value error names the key and
// the FILE:LINE yaml-cpp recorded for it.
#include "pipeline/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/limits.h"
#include "io/json_text.h"
#include "eval/answer_distribution.h"
#include "io/jsonl.h"
#include "eval/builtin_tasks.h"
#include "eval/evaluator.h"
#include "eval/task_yaml.h"
#include "text/unicode.h"
#include "train/train_device.h"

namespace spinlm {
namespace {

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

// A YAML map with the context for error messages, and the folder relative paths resolve in.
class Section {
 public:
  Section(YAML::Node node, std::string source, std::string path, std::string base_dir)
      : node_(node), source_(std::move(source)), path_(std::move(path)), base_dir_(std::move(base_dir)) {}

  // Every key must be one of known: an Error names the first that is not, with the known
  // key nearest to it by edit distance when one is close.
  void only(const std::vector<std::string>& known) const {
    for (const auto& entry : node_) {
      check(entry.first.IsScalar(), where(entry.first), ": a key", path_.empty() ? "" : " of '" + path_ + "'",
            " must be a plain name, not a list or a map");
      const std::string key = entry.first.as<std::string>();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      const std::string nearest = nearest_key(key, known);
      if (!nearest.empty()) fail(where(entry.first), ": unknown key '", name(key), "'; did you mean '", name(nearest), "'?");
      fail(where(entry.first), ": unknown key '", name(key),
           "' (not a key here, nor close to one; `spinlm run --list-keys` lists them)");
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
  std::string where(const std::string& key) const { return where(get(key)); }
  std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const std::string& source() const { return source_; }

  YAML::Node get(const std::string& key) const { return node_[key]; }

  Section child(const std::string& key) const {
    YAML::Node n = node_[key];
    check(n.IsMap(), where(n), ": key '", name(key), "' must be a map of settings");
    return Section(n, source_, name(key), base_dir_);
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
    check(std::isfinite(out) && out >= low && out <= high, where(key), ": key '", name(key),
          "' must be in [", low, ", ", high, "], got ", out);
  }
  void positive(const std::string& key, double& out) const {
    if (!read(key, out, "a number")) return;
    check(std::isfinite(out) && out > 0, where(key), ": key '", name(key), "' must be a positive number, got ", out);
  }
  void integer(const std::string& key, int64_t& out, int64_t low) const {
    if (!read(key, out, "an integer")) return;
    check(out >= low, where(key), ": key '", name(key), "' must be at least ", low, ", got ", out);
  }
  // A count limit: null (or no key) is kNoLimit, otherwise a positive integer.
  void limit(const std::string& key, int64_t& out) const {
    YAML::Node n = node_[key];
    if (!n) return;
    if (n.IsNull()) {
      out = kNoLimit;
      return;
    }
    read(key, out, "a positive integer or null (no limit)");
    check(out > 0, where(key), ": key '", name(key), "' must be a positive integer or null (no limit), got ", out);
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
    out.clear();
    for (size_t i = 0; i < nodes.size(); ++i) {
      check(nodes[i].IsScalar() && !nodes[i].Scalar().empty(), where(nodes[i]), ": key '", name(key), "[", i,
            "]' must be a non-empty string");
      out.push_back(nodes[i].Scalar());
    }
    return nodes;
  }
  void text(const std::string& key, std::string& out) const {
    read(key, out, "a string");
    check(!has(key) || !out.empty(), where(key), ": key '", name(key), "' must not be empty");
  }
  // A path, relative to the recipe's folder unless absolute.
  void path(const std::string& key, std::string& out) const {
    if (!has(key)) return;
    text(key, out);
    out = resolve(out);
  }
  std::string resolve(const std::string& path) const {
    if (path.empty() || base_dir_.empty() || std::filesystem::path(path).is_absolute()) return path;
    return (std::filesystem::path(base_dir_) / path).lexically_normal().string();
  }
  // A string that must be one of choices; aliases map other spellings to a choice.
  void choice(const std::string& key, std::string& out, const std::vector<std::string>& choices,
              const std::vector<std::pair<std::string, std::string>>& aliases = {}) const {
    std::string value;
    if (!read(key, value, "a string")) return;
    for (const auto& [alias, target] : aliases)
      if (value == alias) value = target;
    if (std::find(choices.begin(), choices.end(), value) == choices.end())
      fail(where(key), ": key '", name(key), "' must be one of ", join(choices), ", got '", get(key).Scalar(), "'");
    out = value;
  }

  static std::string join(const std::vector<std::string>& items) {
    std::string list;
    for (const std::string& item : items) list += (list.empty() ? "" : ", ") + item;
    return list;
  }

 private:
  YAML::Node node_;
  std::string source_;
  std::string path_;
  std::string base_dir_;
};

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

// One recipe key of a settings struct S: its name, its line in the key list, how it is read
// from a YAML map and how recipe.json records it. A key without `read` is read by
// parse_recipe itself (a map, a list, keys that are checked together); a key without
// `record` does not change what a run computes and is not recorded.
template <class S>
struct Key {
  std::string name;
  std::string help;
  std::function<void(const Section&, S&)> read;
  std::function<nlohmann::json(const S&)> record;
};
template <class S>
using Keys = std::vector<Key<S>>;

template <class S, class T>
std::function<nlohmann::json(const S&)> member(T S::*m) {
  return [m](const S& s) { return nlohmann::json(s.*m); };
}

template <class S>
Key<S> number(const std::string& name, double S::*m, double low, double high, const std::string& help) {
  return {name, help, [=](const Section& s, S& v) { s.number(name, v.*m, low, high); }, member(m)};
}
template <class S>
Key<S> positive(const std::string& name, double S::*m, const std::string& help) {
  return {name, help, [=](const Section& s, S& v) { s.positive(name, v.*m); }, member(m)};
}
template <class S>
Key<S> integer(const std::string& name, int64_t S::*m, int64_t low, const std::string& help) {
  return {name, help, [=](const Section& s, S& v) { s.integer(name, v.*m, low); }, member(m)};
}
template <class S>
Key<S> limit(const std::string& name, int64_t S::*m, const std::string& help) {
  return {name, help, [=](const Section& s, S& v) { s.limit(name, v.*m); },
          [m](const S& v) { return has_limit(v.*m) ? nlohmann::json(v.*m) : nlohmann::json(nullptr); }};
}
template <class S>
Key<S> flag(const std::string& name, bool S::*m, const std::string& help) {
  return {name, help, [=](const Section& s, S& v) { s.flag(name, v.*m); }, member(m)};
}
template <class S>
Key<S> choice(const std::string& name, std::string S::*m, const std::vector<std::string>& choices,
              const std::vector<std::pair<std::string, std::string>>& aliases, const std::string& help) {
  return {name, help, [=](const Section& s, S& v) { s.choice(name, v.*m, choices, aliases); }, member(m)};
}
template <class S>
Key<S> path(const std::string& name, std::string S::*m, const std::string& help) {
  return {name, help, [=](const Section& s, S& v) { s.path(name, v.*m); }, member(m)};
}
// A key parse_recipe reads itself (recorded by `record` when given).
template <class S>
Key<S> structural(const std::string& name, const std::string& help,
                  std::function<nlohmann::json(const S&)> record = nullptr) {
  return {name, help, nullptr, std::move(record)};
}

template <class S>
std::vector<std::string> key_names(const Keys<S>& keys) {
  std::vector<std::string> names;
  for (const Key<S>& key : keys) names.push_back(key.name);
  return names;
}
template <class S>
void read_keys(const Section& s, const Keys<S>& keys, S& out) {
  s.only(key_names(keys));
  for (const Key<S>& key : keys)
    if (key.read) key.read(s, out);
}
template <class S>
nlohmann::json record_keys(const Keys<S>& keys, const S& value) {
  nlohmann::json out = nlohmann::json::object();
  for (const Key<S>& key : keys)
    if (key.record) out[key.name] = key.record(value);
  return out;
}

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

// lora_target_modules as a recipe writes it: a list of names, a regex, or "all-linear".
nlohmann::json targets_json(const LoraTargets& targets) {
  if (targets.kind == LoraTargets::Kind::list) return targets.names;
  if (targets.kind == LoraTargets::Kind::regex) return targets.regex;
  return "all-linear";
}

// The training keys: at the top level (every iteration's defaults) and in each iteration.
const Keys<TrainSettings>& train_keys() {
  using T = TrainSettings;
  static const Keys<T> keys = {
      positive("learning_rate", &T::learning_rate, "the optimizer's learning rate"),
      positive("beta", &T::beta, "SPIN's beta, the scale of the implicit rewards"),
      // TRL calls the paper's logistic loss "sigmoid".
      choice("loss_type", &T::loss, {"logistic", "hinge", "exponential", "ipo"}, {{"sigmoid", "logistic"}},
             "sigmoid (= logistic) | hinge | exponential | ipo"),
      integer("num_train_epochs", &T::num_train_epochs, 1, "epochs over the iteration's pairs"),
      integer("per_device_train_batch_size", &T::per_device_train_batch_size, 1, "pairs per micro-batch"),
      integer("gradient_accumulation_steps", &T::gradient_accumulation_steps, 1,
              "micro-batches per optimizer step; the global batch is the product, on any number of ranks"),
      integer("max_length", &T::max_length, 2, "prompt + answer tokens kept"),
      integer("max_prompt_length", &T::max_prompt_length, 1, "prompt tokens kept (below max_length)"),
      number("warmup_ratio", &T::warmup_ratio, 0.0, 1.0, "share of the steps the learning rate warms up over"),
      choice("lr_scheduler_type", &T::lr_scheduler_type, {"linear", "cosine", "constant"}, {},
             "linear | cosine | constant"),
      choice("optim", &T::optim, {"rmsprop", "adamw"},
             {{"adamw_torch", "adamw"}, {"adamw_hf", "adamw"}, {"RMSprop", "rmsprop"}},
             "rmsprop | adamw (adamw_torch accepted)"),
      number("weight_decay", &T::weight_decay, 0.0, 1.0, "decoupled weight decay"),
      number("max_grad_norm", &T::max_grad_norm, 0.0, 1e9, "global gradient-norm clip (0: none)"),
      integer("logging_steps", &T::logging_steps, 1, "optimizer steps per logged window"),
      number("sft_weight", &T::sft_weight, 0.0, 1e6, "weight of an SFT term on the real answers"),
      flag("mix_previous", &T::mix_previous, "train iteration t on the pairs of t-1 and t (uclaml/SPIN)"),
      flag("gradient_checkpointing", &T::gradient_checkpointing, "recompute each decoder layer in the backward pass"),
      // HF's torch_dtype spellings; the trainer's own (--optimizer-state-dtype) are accepted too.
      Key<T>{"optimizer_state_dtype", "float32 (+ fp32 master weights for bf16) | bfloat16 (no master copy)",
             [](const Section& s, T& t) {
               std::string state = t.optimizer_state_dtype == "bf16" ? "bfloat16" : "float32";
               s.choice("optimizer_state_dtype", state, {"float32", "bfloat16"},
                        {{"fp32", "float32"}, {"bf16", "bfloat16"}});
               t.optimizer_state_dtype = state == "bfloat16" ? "bf16" : "fp32";
             },
             [](const T& t) { return nlohmann::json(t.optimizer_state_dtype == "bf16" ? "bfloat16" : "float32"); }},
      integer("save_steps", &T::save_steps, 0, "a resumable checkpoint every N optimizer steps (0: epoch ends only)"),
      Key<T>{"use_peft", "train a fresh LoRA adapter on p_t each iteration, into iter_T/adapter (model/lora.h)",
             [](const Section& s, T& t) { read_lora(s, t.lora); },
             [](const T& t) { return nlohmann::json(t.lora.enabled()); }},
      structural<T>("lora_r", "the adapter's rank (with use_peft)",
                    [](const T& t) { return nlohmann::json(t.lora.enabled() ? t.lora.r : 16); }),
      structural<T>("lora_alpha", "adapter scale s = alpha / r (alpha / sqrt(r) with use_rslora)",
                    [](const T& t) { return nlohmann::json(t.lora.alpha); }),
      structural<T>("lora_dropout", "dropout on the adapter's input while training",
                    [](const T& t) { return nlohmann::json(t.lora.dropout); }),
      structural<T>("lora_target_modules", "a list (exact or dotted-suffix names), a regex, or all-linear",
                    [](const T& t) { return targets_json(t.lora.targets); }),
      structural<T>("use_rslora", "rank-stabilised scaling alpha / sqrt(r)",
                    [](const T& t) { return nlohmann::json(t.lora.use_rslora); }),
      limit("max_tokens_per_micro_batch", &T::max_tokens_per_micro_batch,
            "micro-batches of pairs up to N packed tokens, not a fixed count (null: per_device_train_batch_size)"),
  };
  return keys;
}

// The top-level keys besides the training keys.
const Keys<Recipe>& top_keys() {
  using R = Recipe;
  static const Keys<R> keys = {
      path("model_name_or_path", &R::model_name_or_path,
           "p_0, the SFT model's HuggingFace folder, or a LoRA adapter folder on its base (required)"),
      Key<R>{"output_dir", "the run folder (--output overrides)",
             [](const Section& s, R& r) { s.path("output_dir", r.output_dir); }, nullptr},
      Key<R>{"seed", "seeds generation and training",
             [](const Section& s, R& r) {
               int64_t seed = int64_t(r.seed);
               s.integer("seed", seed, 0);
               r.seed = uint64_t(seed);
             },
             member(&R::seed)},
      structural<R>("num_iterations", "iterations when `iterations` is not given (default 1)"),
      Key<R>{"device", "auto | cpu | cuda | cuda:N (--device wins)",
             [](const Section& s, R& r) { read_device(s, r.placement); },
             [](const R& r) { return nlohmann::json(r.placement.device); }},
      Key<R>{"torch_dtype", "auto | float32 | bfloat16 (float16 is refused)",
             [](const Section& s, R& r) { read_dtype(s, r.placement); },
             [](const R& r) {
               const std::string& d = r.placement.dtype;
               return nlohmann::json(d == "bf16" ? "bfloat16" : d == "fp32" ? "float32" : "auto");
             }},
      structural<R>("bf16", "true = torch_dtype bfloat16, false = float32"),
      Key<R>{"keep_checkpoints", "keep each iteration's trainer checkpoints (weights and optimizer state)",
             [](const Section& s, R& r) { s.flag("keep_checkpoints", r.checkpoints.keep); },
             [](const R& r) { return nlohmann::json(r.checkpoints.keep); }},
      Key<R>{"save_merged", "with use_peft: write p_t+1 merged to iter_T/model (false: only iter_T/adapter)",
             [](const Section& s, R& r) { s.flag("save_merged", r.checkpoints.save_merged); },
             [](const R& r) { return nlohmann::json(r.checkpoints.save_merged); }},
      structural<R>("data", "the data sets"),
      structural<R>("generation", "how p_t answers the training prompts"),
      structural<R>("evaluation", "what every model of the run is measured by"),
      structural<R>("iterations", "one map of training keys per iteration, over the defaults above"),
      structural<R>("stop", "an early end, on validation numbers only"),
      structural<R>("control", "continued SFT with the same steps, the comparison arm"),
  };
  return keys;
}

const Keys<DataSettings>& data_keys() {
  using D = DataSettings;
  static const Keys<D> keys = {
      path("train", &D::train, "conversations: the prompts p_t answers and their real answers (required)"),
      path("heldout", &D::heldout, "validation conversations: held-out reward accuracy, NLL, the stop rule"),
      path("test", &D::test, "test problems: greedy exact match of \"#### N\" (reported numbers)"),
      limit("max_train_samples", &D::max_train_samples, "the first N rows of train (null: all)"),
      limit("max_heldout_samples", &D::max_heldout_samples, "the first N rows of heldout (null: all)"),
      limit("max_test_samples", &D::max_test_samples, "the first N rows of test (null: all)"),
  };
  return keys;
}

const Keys<SamplingSettings>& generation_keys() {
  using G = SamplingSettings;
  static const Keys<G> keys = {
      integer("max_new_tokens", &G::max_new_tokens, 1, "tokens a generated answer may have"),
      number("temperature", &G::temperature, 0.0, 100.0, "sampling temperature (0: greedy)"),
      number("top_p", &G::top_p, 0.0, 1.0, "nucleus sampling mass, above 0"),
      integer("top_k", &G::top_k, 0, "keep the k most likely tokens (0: off)"),
      number("min_p", &G::min_p, 0.0, 1.0, "drop tokens below min_p x the top probability (0: off)"),
      integer("batch_size", &G::batch_size, 1, "sequences decoded together"),
      choice("prompt_format", &G::prompt_format, {"chat", "spin-legacy"}, {}, "chat | spin-legacy"),
      structural<G>("negatives", "verifier-filtered negatives: an extension (ReST-EM's filter), not the paper's"),
  };
  return keys;
}

const Keys<NegativeSettings>& negative_keys() {
  using N = NegativeSettings;
  static const Keys<N> keys = {
      Key<N>{"reject", "none | verified: draw again an answer the verifier accepts",
             [](const Section& s, N& n) {
               std::string reject = n.reject_verified ? "verified" : "none";
               s.choice("reject", reject, {"none", "verified"});
               n.reject_verified = reject == "verified";
             },
             [](const N& n) { return nlohmann::json(n.reject_verified ? "verified" : "none"); }},
      choice("verifier", &N::verifier, {"final_answer", "solution"}, {},
             "final_answer (\"#### N\") | solution (one of the row's listed answers)"),
      integer("max_resamples", &N::max_resamples, 0, "draws after the first; then the prompt gives no pair"),
  };
  return keys;
}

const Keys<EvaluationSettings>& evaluation_keys() {
  using E = EvaluationSettings;
  static const Keys<E> keys = {
      flag("heldout_reward_accuracy", &E::heldout_reward_accuracy, "p_t+1 against p_t on held-out pairs"),
      flag("heldout_nll", &E::heldout_nll, "NLL of the held-out real answers"),
      flag("exact_match", &E::exact_match, "greedy exact match on data.test (the reported numbers)"),
      flag("heldout_exact_match", &E::heldout_exact_match, "the same on data.heldout (for choices)"),
      flag("sample_accuracy", &E::sample_accuracy, "one answer at temperature 1 per problem, checked"),
      flag("distribution", &E::distribution, "exact distance to p_data; rows list their \"solutions\""),
      number("displacement_warning", &E::displacement_warning, 0.0, 1e9,
             "warn when training loses this many nats of logps/real while margins grow (0: off)"),
      integer("max_new_tokens", &E::max_new_tokens, 1, "tokens of a greedy evaluation answer"),
      structural<E>("tasks", "lm-evaluation-harness tasks run on every model (docs/eval.md)", member(&E::tasks)),
      structural<E>("task_files", "task YAML files", member(&E::task_files)),
      structural<E>("data_dir", "DATA_DIR/<task>.jsonl and <task>.fewshot.jsonl", member(&E::data_dir)),
      Key<E>{"num_fewshot", "few-shot examples per prompt (null: each task's own count)",
             [](const Section& s, E& e) {
               if (s.has("num_fewshot") && !s.get("num_fewshot").IsNull()) s.integer("num_fewshot", e.num_fewshot, 0);
             },
             [](const E& e) { return e.num_fewshot < 0 ? nlohmann::json(nullptr) : nlohmann::json(e.num_fewshot); }},
      limit("limit", &E::limit, "the first N documents of each task (null: all)"),
      integer("batch_size", &E::batch_size, 1, "sequences per forward for the tasks"),
  };
  return keys;
}

const Keys<StopSettings>& stop_keys() {
  using S = StopSettings;
  static const Keys<S> keys = {
      Key<S>{"reward_accuracy_stderrs", "end when held-out reward accuracy is within k standard errors of 0.5 ...",
             [](const Section& s, S& stop) {
               if (!s.has("reward_accuracy_stderrs")) return;
               double k = 0;
               s.number("reward_accuracy_stderrs", k, 0.0, 100.0);
               stop.reward_accuracy_stderrs = k;
             },
             [](const S& stop) {
               return stop.reward_accuracy_stderrs ? nlohmann::json(*stop.reward_accuracy_stderrs) : nlohmann::json();
             }},
      number("min_train_margin", &S::min_train_margin, 0.0, 1e9, "... once the training margins reached this"),
      integer("patience", &S::patience, 0, "iterations without a better `metric` (0: off)"),
      choice("metric", &S::metric, {"heldout_exact_match", "heldout_nll", "heldout_forward_kl"}, {},
             "what patience watches: heldout_exact_match | heldout_nll | heldout_forward_kl"),
  };
  return keys;
}

const Keys<ControlSettings>& control_keys() {
  static const Keys<ControlSettings> keys = {
      flag("enabled", &ControlSettings::enabled, "run the control arm next to SPIN"),
  };
  return keys;
}

void read_train(const Section& s, TrainSettings& t) {
  for (const Key<TrainSettings>& key : train_keys())
    if (key.read) key.read(s, t);
  if (t.max_prompt_length >= t.max_length)
    fail(s.where(s.has("max_prompt_length") ? "max_prompt_length" : "max_length"), ": key '",
         s.name("max_prompt_length"), "' (", t.max_prompt_length, ") must be below max_length (", t.max_length, ")");
}

// Builds every prompt of the task (reads and checks its data rows and few-shot pool) so that
// a missing file, a bad row or a too-small pool fails now, naming the recipe key.
void check_task(const TaskDefinition& task, const EvaluationSettings& ev, const std::string& where,
                const std::string& key) {
  EvalOptions options;
  options.data_dir = ev.data_dir;
  options.num_fewshot = int(ev.num_fewshot);
  options.limit = ev.limit;
  try {
    build_task_prompts(task, options);
  } catch (const Error& error) {
    fail(where, ": key '", key, "' (task ", task.config.name, "): ", error.what());
  }
}

void read_evaluation(const Section& e, EvaluationSettings& ev) {
  read_keys(e, evaluation_keys(), ev);
  const std::vector<YAML::Node> task_nodes = e.strings("tasks", ev.tasks);
  const std::vector<YAML::Node> file_nodes = e.strings("task_files", ev.task_files);
  e.path("data_dir", ev.data_dir);
  if (!ev.has_tasks()) {
    for (const char* key : {"data_dir", "num_fewshot", "limit"})
      check(!e.has(key), e.where(key), ": key '", e.name(key), "' needs evaluation.tasks or evaluation.task_files");
    return;
  }
  // Names first (no data needed), then the data folder, then every task's files.
  std::vector<std::pair<TaskDefinition, std::string>> tasks;  // with the recipe key
  std::vector<YAML::Node> nodes;
  std::set<std::string> seen;
  for (size_t i = 0; i < ev.tasks.size(); ++i) {
    const std::string key = e.name("tasks") + "[" + std::to_string(i) + "]";
    if (!is_builtin_task(ev.tasks[i]))
      fail(e.where(task_nodes[i]), ": key '", key, "': unknown task '", ev.tasks[i], "' (built-in: ",
           Section::join(builtin_task_names()), "; your own tasks go in task_files)");
    tasks.emplace_back(builtin_task(ev.tasks[i]), key);
    nodes.push_back(task_nodes[i]);
  }
  for (size_t i = 0; i < ev.task_files.size(); ++i) {
    const std::string key = e.name("task_files") + "[" + std::to_string(i) + "]";
    ev.task_files[i] = e.resolve(ev.task_files[i]);
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
  check(std::filesystem::is_directory(ev.data_dir), e.where("data_dir"), ": key '", e.name("data_dir"),
        "': folder ", ev.data_dir, " does not exist");
  for (size_t i = 0; i < tasks.size(); ++i) check_task(tasks[i].first, ev, e.where(nodes[i]), tasks[i].second);
}

// The key list: every key under its section, with its default and its line of help.
void list_keys_of(std::string& out, const std::string& indent, const std::vector<std::string>& names,
                  const std::vector<nlohmann::json>& defaults, const std::vector<std::string>& helps) {
  for (size_t i = 0; i < names.size(); ++i) {
    std::string line = indent + names[i] + ":";
    const nlohmann::json& value = defaults[i];
    if (value.is_string() && !value.get<std::string>().empty()) line += " " + value.get<std::string>();
    if (!value.is_string() && (!value.is_null() || helps[i].find("null") != std::string::npos))
      line += " " + value.dump();
    if (line.size() < 44) line.resize(44, ' ');
    out += line + " # " + helps[i] + "\n";
  }
}
template <class S>
void list_keys(std::string& out, const std::string& indent, const Keys<S>& keys, const S& defaults = S{}) {
  std::vector<std::string> names, helps;
  std::vector<nlohmann::json> values;
  for (const Key<S>& key : keys) {
    names.push_back(key.name);
    helps.push_back(key.help);
    values.push_back(key.record ? key.record(defaults) : nlohmann::json());
  }
  list_keys_of(out, indent, names, values, helps);
}

}  // namespace

std::string recipe_key_list() {
  std::string out =
      "# Every key of a `spinlm run` recipe, with its default (`spinlm run --list-keys` prints this).\n"
      "# Under `iterations:`, each entry is a map of the training keys.\n";
  Keys<Recipe> top;
  for (const Key<Recipe>& key : top_keys())
    if (key.read || key.name == "num_iterations" || key.name == "bf16") top.push_back(key);
  list_keys(out, "", top);
  out += "# training keys (the defaults of every iteration; also allowed in each iteration)\n";
  list_keys(out, "", train_keys());
  for (const Key<Recipe>& key : top_keys()) {
    if (key.read || key.name == "num_iterations" || key.name == "bf16") continue;
    out += key.name + ":" + std::string(key.name.size() + 1 < 44 ? 43 - key.name.size() : 0, ' ') + " # " +
           key.help + "\n";
    if (key.name == "data") list_keys(out, "  ", data_keys());
    if (key.name == "generation") {
      list_keys(out, "  ", generation_keys());
      list_keys(out, "    ", negative_keys());
    }
    if (key.name == "evaluation") list_keys(out, "  ", evaluation_keys());
    if (key.name == "stop") list_keys(out, "  ", stop_keys());
    if (key.name == "control") list_keys(out, "  ", control_keys());
  }
  return out;
}

Recipe parse_recipe(const std::string& yaml_text, const std::string& source, const std::string& base_dir) {
  // Every string of a recipe ends up in the run's recorded JSON, which must be UTF-8.
  if (const size_t bad = unicode::find_invalid_utf8(yaml_text); bad != std::string::npos)
    fail(source, ":", std::count(yaml_text.begin(), yaml_text.begin() + bad, '\n') + 1, ": not valid UTF-8 (byte ",
         bad, " of the file); a recipe is UTF-8 text");
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& error) {
    fail(source, ":", error.mark.line + 1, ": not valid YAML: ", error.msg);
  }
  check(root.IsMap(), source, ": a recipe is a YAML map of settings");
  Recipe recipe;
  recipe.source = source;
  const Section top(root, source, "", base_dir);
  std::vector<std::string> known = key_names(top_keys());
  for (const std::string& key : key_names(train_keys())) known.push_back(key);
  top.only(known);

  check(top.has("model_name_or_path"), source, ": missing key 'model_name_or_path' (the SFT model folder)");
  for (const Key<Recipe>& key : top_keys())
    if (key.read) key.read(top, recipe);
  TrainSettings defaults;
  read_train(top, defaults);

  check(top.has("data"), source, ": missing key 'data' (with data.train, the SFT conversations)");
  const Section data = top.child("data");
  check(data.has("train"), data.where(root["data"]), ": missing key 'data.train'");
  read_keys(data, data_keys(), recipe.data);

  if (top.has("generation")) {
    const Section g = top.child("generation");
    SamplingSettings& gen = recipe.generation;
    read_keys(g, generation_keys(), gen);
    check(gen.top_p > 0, g.where("top_p"), ": key 'generation.top_p' must be above 0");
    if (g.has("negatives")) {
      const Section n = g.child("negatives");
      read_keys(n, negative_keys(), gen.negatives);
      check(gen.negatives.reject_verified || (!n.has("verifier") && !n.has("max_resamples")),
            n.where(n.has("verifier") ? "verifier" : "max_resamples"),
            ": key 'generation.negatives' needs reject: verified for its other settings");
    }
  }

  if (top.has("evaluation")) read_evaluation(top.child("evaluation"), recipe.evaluation);
  // Evaluations that need a data set are off when the set is missing.
  if (recipe.data.heldout.empty()) recipe.evaluation.heldout_reward_accuracy = recipe.evaluation.heldout_nll = false;
  if (recipe.data.test.empty()) recipe.evaluation.exact_match = false;
  if (recipe.data.heldout.empty() && recipe.evaluation.heldout_exact_match) {
    const Section e = top.child("evaluation");
    fail(e.where("heldout_exact_match"), ": key 'evaluation.heldout_exact_match' needs data.heldout");
  }

  if (recipe.evaluation.distribution) {
    const Section e = top.child("evaluation");
    check(!recipe.data.test.empty() || !recipe.data.heldout.empty(), e.where("distribution"),
          ": key 'evaluation.distribution' needs data.test or data.heldout");
    for (const std::string* path : {&recipe.data.test, &recipe.data.heldout}) {
      if (path->empty()) continue;
      check(data_path_exists(*path), e.where("distribution"), ": data file ", *path, " does not exist");
      check(rows_list_valid_answers(*path), e.where("distribution"),
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
        const Section it(list[t], source, "iterations[" + std::to_string(t) + "]", base_dir);
        for (const char* key : {"device", "torch_dtype", "bf16"})
          check(!it.has(key), it.where(key), ": key '", it.name(key), "' belongs at the top level: every "
                "model of the run has one device and dtype");
        it.only(key_names(train_keys()));
        read_train(it, settings);
      }
      recipe.iterations.push_back(settings);
    }
    check(num_iterations < 0 || num_iterations == int64_t(list.size()), top.where("num_iterations"),
          ": key 'num_iterations' (", num_iterations, ") disagrees with the ", list.size(),
          " entries of 'iterations'");
  } else {
    recipe.iterations.assign(size_t(num_iterations < 0 ? 1 : num_iterations), defaults);
  }

  if (top.has("stop")) {
    const Section s = top.child("stop");
    read_keys(s, stop_keys(), recipe.stop);
    check(!recipe.stop.reward_accuracy_stderrs || recipe.evaluation.heldout_reward_accuracy,
          s.where("reward_accuracy_stderrs"),
          ": key 'stop.reward_accuracy_stderrs' needs data.heldout and evaluation.heldout_reward_accuracy");
    check(!s.has("min_train_margin") || recipe.stop.reward_accuracy_stderrs, s.where("min_train_margin"),
          ": key 'stop.min_train_margin' belongs to the rule of 'stop.reward_accuracy_stderrs'");
  }
  // Patience watches a validation measurement: choices never look at data.test.
  const EvaluationSettings& ev = recipe.evaluation;
  if (recipe.stop.metric.empty())
    recipe.stop.metric = ev.heldout_exact_match                               ? "heldout_exact_match"
                         : ev.distribution && !recipe.data.heldout.empty() ? "heldout_forward_kl"
                                                                           : "heldout_nll";
  if (top.has("stop")) {
    const Section s = top.child("stop");
    const bool evaluated = recipe.stop.metric == "heldout_exact_match" ? ev.heldout_exact_match
                           : recipe.stop.metric == "heldout_nll"     ? ev.heldout_nll
                                                                     : ev.distribution && !recipe.data.heldout.empty();
    const std::string needs = recipe.stop.metric == "heldout_forward_kl" ? "distribution" : recipe.stop.metric;
    check(recipe.stop.patience == 0 || evaluated, s.where(s.has("metric") ? "metric" : "patience"),
          ": key 'stop.patience' watches ", recipe.stop.metric, ", which needs data.heldout and evaluation.",
          needs, " (the stop rule uses the validation split only, never data.test)");
  }
  if (top.has("control")) read_keys(top.child("control"), control_keys(), recipe.control);
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
  nlohmann::json out = record_keys(top_keys(), r);
  out["data"] = record_keys(data_keys(), r.data);
  out["generation"] = record_keys(generation_keys(), r.generation);
  out["generation"]["negatives"] = record_keys(negative_keys(), r.generation.negatives);
  out["evaluation"] = record_keys(evaluation_keys(), r.evaluation);
  out["iterations"] = nlohmann::json::array();
  for (const TrainSettings& t : r.iterations) out["iterations"].push_back(record_keys(train_keys(), t));
  out["stop"] = record_keys(stop_keys(), r.stop);
  out["control"] = record_keys(control_keys(), r.control);
  return out.dump(2);
}

}  // namespace spinlm
