#include "model/lora.h"

#include <cmath>
#include <filesystem>
#include <cctype>
#include <regex>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "io/json_text.h"
#include "io/safetensors.h"
#include "model/hf_model.h"
#include "model/transformer.h"

namespace spinlm {
namespace fs = std::filesystem;

namespace {

const char* const kSitePaths[kLoraSites] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                            "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                            "mlp.down_proj"};
const char* const kAdapterConfig = "adapter_config.json";
const char* const kAdapterWeights = "adapter_model.safetensors";
const char* const kPeftPrefix = "base_model.model.";

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PEFT's list rule: the name itself, or a dotted suffix of it.
bool list_entry_matches(const std::string& module, const std::string& entry) {
  return module == entry || ends_with(module, "." + entry);
}

// [out, in] of a projection.
std::pair<int64_t, int64_t> site_shape(const ModelConfig& c, LoraSite site) {
  const int64_t C = c.hidden_size, F = c.intermediate_size, D = c.head_dim;
  const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads;
  switch (site) {
    case LoraSite::q: return {H * D, C};
    case LoraSite::k:
    case LoraSite::v: return {Hkv * D, C};
    case LoraSite::o: return {C, H * D};
    case LoraSite::gate:
    case LoraSite::up: return {F, C};
    case LoraSite::down: return {C, F};
  }
  return {0, 0};
}

// "model.layers.7.mlp.up_proj" -> (7, up); false for any other name.
bool parse_module(const std::string& name, const ModelConfig& config, int64_t& layer, LoraSite& site) {
  const std::string prefix = "model.layers.";
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos) return false;
  const std::string number = name.substr(prefix.size(), dot - prefix.size());
  if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos) return false;
  layer = std::stoll(number);
  if (layer >= config.num_hidden_layers) return false;
  const std::string rest = name.substr(dot + 1);
  for (int s = 0; s < kLoraSites; ++s) {
    if (rest == kSitePaths[s]) {
      site = static_cast<LoraSite>(s);
      return true;
    }
  }
  return false;
}

bool is_linear(const std::string& name, const ModelConfig& config) {
  int64_t layer = 0;
  LoraSite site = LoraSite::q;
  return name == "lm_head" || parse_module(name, config, layer, site);
}

// The module names with each layer's block written once as "model.layers.{0-N}.": the list
// an error shows.
std::string module_listing(const ModelConfig& config) {
  std::vector<std::string> names = model_module_names(config);
  std::vector<std::string> shown;
  const std::string layer0 = "model.layers.0";
  const std::string range = "model.layers.{0-" + std::to_string(config.num_hidden_layers - 1) + "}";
  const std::string layer_prefix = "model.layers.";
  for (const std::string& name : names) {
    if (name.compare(0, layer_prefix.size(), layer_prefix) == 0) {
      if (name.compare(0, layer0.size(), layer0) != 0 || (name.size() > layer0.size() && name[layer0.size()] != '.')) {
        continue;  // layers other than 0 are shown by the range
      }
      shown.push_back(range + name.substr(layer0.size()));
    } else {
      shown.push_back(name);
    }
  }
  std::string text;
  for (size_t i = 0; i < shown.size(); ++i) text += (i ? ", " : "") + shown[i];
  return text;
}

nlohmann::json targets_json(const LoraTargets& targets, const ModelConfig& config) {
  if (targets.kind == LoraTargets::Kind::regex) return targets.regex;
  std::set<std::string> names;
  if (targets.kind == LoraTargets::Kind::list) {
    names.insert(targets.names.begin(), targets.names.end());
  } else {
    // PEFT saves all-linear as the set of the linear layers' last name components.
    for (const std::string& module : resolve_lora_targets(config, targets)) {
      names.insert(module.substr(module.rfind('.') + 1));
    }
  }
  return nlohmann::json(std::vector<std::string>(names.begin(), names.end()));
}

}  // namespace

const char* lora_site_path(LoraSite site) { return kSitePaths[static_cast<int>(site)]; }

namespace {

// A target regex from a file or the command line, compiled once to check it. A hostile
// pattern cannot make std::regex build an automaton of millions of states: at most
// kMaxRegexLength characters and counted repetitions ({n}, {n,m}) of at most kMaxRepeat.
constexpr size_t kMaxRegexLength = 512;
constexpr int64_t kMaxRepeat = 100;
void check_target_regex(const std::string& text, const std::string& where) {
  check(text.size() <= kMaxRegexLength, where, ": the regular expression has ", text.size(),
        " characters; target-module patterns may have at most ", kMaxRegexLength);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '{' || (i > 0 && text[i - 1] == '\\')) continue;
    // The bounds of {n} / {n,} / {n,m}: each at most kMaxRepeat.
    for (size_t j = i + 1; j < text.size() && text[j] != '}';) {
      if (!std::isdigit(static_cast<unsigned char>(text[j]))) {
        ++j;
        continue;
      }
      int64_t n = 0;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])))
        n = std::min<int64_t>(n * 10 + (text[j++] - '0'), kMaxRepeat + 1);
      check(n <= kMaxRepeat, where, ": the regular expression repeats more than ", kMaxRepeat,
            " times ({n} above the limit for target-module patterns)");
    }
  }
  try {
    std::regex compiled(text);
  } catch (const std::regex_error& e) {
    fail(where, ": \"", text, "\" is not a valid regular expression (", e.what(), ")");
  }
}

}  // namespace

LoraTargets LoraTargets::parse(const std::string& text) {
  LoraTargets t;
  if (text == "all-linear") {
    t.kind = Kind::all_linear;
    return t;
  }
  const bool plain = !text.empty() &&
                     text.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-,") ==
                         std::string::npos;
  if (!plain) {
    t.kind = Kind::regex;
    t.regex = text;
    check_target_regex(text, "lora target modules");
    return t;
  }
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    check(!name.empty(), "lora target modules: empty name in \"", text, "\"");
    t.names.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return t;
}

LoraTargets LoraTargets::from_json(const nlohmann::json& value, const std::string& source) {
  LoraTargets t;
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    if (text == "all-linear") {
      t.kind = Kind::all_linear;
      return t;
    }
    t.kind = Kind::regex;
    t.regex = text;
    check_target_regex(text, source);
    return t;
  }
  check(value.is_array() && !value.empty(), source, ": must be a list of module names or one string (a regex or ",
        "\"all-linear\"), got ", value.dump());
  for (const auto& entry : value) {
    check(entry.is_string() && !entry.get<std::string>().empty(), source, ": entry ", entry.dump(),
          " is not a module name");
    t.names.push_back(entry.get<std::string>());
  }
  if (t.names.size() == 1 && t.names[0] == "all-linear") t = parse("all-linear");
  return t;
}

std::string LoraTargets::to_string() const {
  if (kind == Kind::all_linear) return "all-linear";
  if (kind == Kind::regex) return regex;
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) text += (i ? "," : "") + names[i];
  return text;
}

double LoraOptions::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

void LoraOptions::validate() const {
  check(r >= 0, "--lora-r must not be negative, got ", r);
  check(dropout >= 0 && dropout < 1, "--lora-dropout must be in [0, 1), got ", dropout);
  check(std::isfinite(alpha), "--lora-alpha must be finite, got ", alpha);
}

std::vector<std::string> model_module_names(const ModelConfig& config) {
  std::vector<std::string> names = {"model", "model.embed_tokens", "model.layers"};
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    names.push_back(p);
    names.push_back(p + ".self_attn");
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) names.push_back(p + ".self_attn." + proj);
    if (config.qk_norm) {
      names.push_back(p + ".self_attn.q_norm");
      names.push_back(p + ".self_attn.k_norm");
    }
    names.push_back(p + ".mlp");
    for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) names.push_back(p + ".mlp." + proj);
    names.push_back(p + ".mlp.act_fn");
    names.push_back(p + ".input_layernorm");
    names.push_back(p + ".post_attention_layernorm");
  }
  names.push_back("model.norm");
  names.push_back("model.rotary_emb");
  names.push_back("lm_head");
  return names;
}

std::vector<std::string> resolve_lora_targets(const ModelConfig& config, const LoraTargets& targets) {
  const std::vector<std::string> names = model_module_names(config);
  std::vector<std::string> selected;
  auto take = [&](const std::string& name, const std::string& because) {
    int64_t layer = 0;
    LoraSite site = LoraSite::q;
    if (parse_module(name, config, layer, site)) {
      selected.push_back(name);
      return;
    }
    fail("lora target modules: ", because, " matches module \"", name, "\", which ",
         name == "lm_head" ? "is the LM head (spinlm adapts only the decoder layers' projections)"
                           : "is not a linear layer",
         "; the model's modules are: ", module_listing(config));
  };
  switch (targets.kind) {
    case LoraTargets::Kind::all_linear:
      for (const std::string& name : names) {
        if (is_linear(name, config) && name != "lm_head") selected.push_back(name);
      }
      break;
    case LoraTargets::Kind::regex: {
      const std::regex pattern(targets.regex);
      for (const std::string& name : names) {
        if (std::regex_match(name, pattern)) take(name, "the regex \"" + targets.regex + "\"");
      }
      check(!selected.empty(), "lora target modules: the regex \"", targets.regex,
            "\" matches no module name in full; the model's modules are: ", module_listing(config));
      break;
    }
    case LoraTargets::Kind::list: {
      for (const std::string& entry : targets.names) {
        bool any = false;
        for (const std::string& name : names) any = any || list_entry_matches(name, entry);
        check(any, "lora target modules: \"", entry, "\" matches no module (neither a name nor a dotted suffix ",
              "of one); the model's modules are: ", module_listing(config));
      }
      for (const std::string& name : names) {
        for (const std::string& entry : targets.names) {
          if (list_entry_matches(name, entry)) {
            take(name, "\"" + entry + "\"");
            break;
          }
        }
      }
      break;
    }
  }
  return selected;
}

LoraAdapters::LoraAdapters(const ModelConfig& config, LoraOptions options, at::Device device)
    : options_(std::move(options)) {
  options_.validate();
  check(options_.r > 0, "a LoRA adapter needs a rank r > 0");
  scaling_ = options_.scaling();
  index_.assign(static_cast<size_t>(config.num_hidden_layers), {-1, -1, -1, -1, -1, -1, -1});
  const auto fp32 = at::TensorOptions().dtype(at::kFloat).device(device);
  for (const std::string& name : resolve_lora_targets(config, options_.targets)) {
    LoraModule m;
    m.name = name;
    parse_module(name, config, m.layer, m.site);
    const auto [out, in] = site_shape(config, m.site);
    m.A = at::zeros({options_.r, in}, fp32);
    m.B = at::zeros({out, options_.r}, fp32);
    index_[static_cast<size_t>(m.layer)][static_cast<int>(m.site)] = static_cast<int>(modules_.size());
    modules_.push_back(std::move(m));
  }
}

void LoraAdapters::init(uint64_t seed) {
  at::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  for (LoraModule& m : modules_) {
    // kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
    const double bound = 1.0 / std::sqrt(static_cast<double>(m.A.size(1)));
    m.A.copy_(at::empty(m.A.sizes(), at::kFloat).uniform_(-bound, bound, generator));
    m.B.zero_();
  }
}

const LoraModule* LoraAdapters::find(int64_t layer, LoraSite site) const {
  if (layer < 0 || layer >= static_cast<int64_t>(index_.size())) return nullptr;
  const int i = index_[static_cast<size_t>(layer)][static_cast<int>(site)];
  return i < 0 ? nullptr : &modules_[static_cast<size_t>(i)];
}

std::vector<at::Tensor> LoraAdapters::parameters() const {
  std::vector<at::Tensor> result;
  for (const LoraModule& m : modules_) {
    result.push_back(m.A);
    result.push_back(m.B);
  }
  return result;
}

std::vector<at::Tensor> LoraAdapters::layer_parameters(int64_t layer) const {
  std::vector<at::Tensor> result;
  for (const LoraModule& m : modules_) {
    if (m.layer != layer) continue;
    result.push_back(m.A);
    result.push_back(m.B);
  }
  return result;
}

std::vector<std::pair<std::string, at::Tensor>> LoraAdapters::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> result;
  for (const LoraModule& m : modules_) {
    result.emplace_back(kPeftPrefix + m.name + ".lora_A.weight", m.A);
    result.emplace_back(kPeftPrefix + m.name + ".lora_B.weight", m.B);
  }
  return result;
}

void LoraAdapters::set_requires_grad(bool on) {
  for (LoraModule& m : modules_) {
    m.A.set_requires_grad(on);
    m.B.set_requires_grad(on);
  }
}

bool LoraAdapters::dropout_active() const {
  return options_.dropout > 0 && at::GradMode::is_enabled() && !modules_.empty() && modules_[0].A.requires_grad();
}

void LoraAdapters::seed_dropout(uint64_t seed) { dropout_state_ = seed; }

uint64_t LoraAdapters::next_dropout_seed() const {
  // splitmix64: a fresh, well-mixed seed per call from a counter.
  dropout_state_ += 0x9E3779B97F4A7C15ull;
  uint64_t z = dropout_state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

at::Tensor LoraAdapters::apply(const LoraModule& module, const at::Tensor& x, const at::Tensor& y,
                               at::Generator* generator) const {
  at::Tensor input = x.to(at::kFloat);
  if (generator != nullptr && options_.dropout > 0) {
    // Inverted dropout; the backward keeps a boolean mask (1 byte an element), as torch's does.
    const double keep = 1.0 - options_.dropout;
    at::Tensor dropped = at::empty(input.sizes(), at::kFloat).bernoulli_(keep, *generator).to(at::kBool).logical_not();
    input = input.masked_fill(dropped.to(input.device()), 0.0).mul(1.0 / keep);
  }
  at::Tensor delta = at::mm(at::mm(input, module.A.t()), module.B.t()).mul(scaling_);  // [N, out] fp32
  if (y.scalar_type() == at::kFloat) return y + delta;
  return (y.to(at::kFloat) + delta).to(y.scalar_type());
}

void merge_lora(Transformer& model, const LoraAdapters& adapters) {
  at::NoGradGuard no_grad;
  for (const LoraModule& m : adapters.modules()) {
    at::Tensor weight = model.parameter(m.name + ".weight");
    at::Tensor merged = weight.to(at::kFloat) + at::mm(m.B, m.A).mul(adapters.scaling()).to(weight.device());
    weight.copy_(merged.to(weight.scalar_type()));
  }
}

void attach_lora_adapter(Transformer& model, const std::string& adapter_dir) {
  if (adapter_dir.empty()) return;
  model.set_lora(load_lora_adapter(adapter_dir, model.config(), model.device()));
  log_info("adapter ", adapter_dir, ": LoRA r=", model.lora()->options().r, " on ", model.lora()->modules().size(),
           " modules");
}

bool is_lora_adapter_folder(const std::string& dir) {
  return file_exists((fs::path(dir) / kAdapterConfig).string());
}

void check_lora_adapter_whole(const std::string& dir) {
  read_lora_config(dir);
  SafetensorsFile weights((fs::path(dir) / kAdapterWeights).string());
}

void save_lora_adapter(const LoraAdapters& adapters, const ModelConfig& config, const std::string& dir,
                       const std::string& base_model) {
  make_directories(dir);
  const LoraOptions& o = adapters.options();
  nlohmann::json j = nlohmann::json::object();
  // LoraConfig's fields as PEFT's save_pretrained writes them (sorted keys), defaults kept.
  j["alpha_pattern"] = nlohmann::json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = base_model;
  j["bias"] = "none";
  j["eva_config"] = nullptr;
  j["exclude_modules"] = nullptr;
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["layer_replication"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = nullptr;
  j["loftq_config"] = nlohmann::json::object();
  j["lora_alpha"] = o.alpha;
  j["lora_bias"] = false;
  j["lora_dropout"] = o.dropout;
  j["megatron_config"] = nullptr;
  j["megatron_core"] = "megatron.core";
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = o.r;
  j["rank_pattern"] = nlohmann::json::object();
  j["revision"] = nullptr;
  j["target_modules"] = targets_json(o.targets, config);
  j["task_type"] = "CAUSAL_LM";
  j["use_dora"] = false;
  j["use_rslora"] = o.use_rslora;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, tensor] : adapters.named_parameters()) tensors.emplace_back(name, tensor.detach());
  write_safetensors((fs::path(dir) / kAdapterWeights).string(), tensors);
  write_file_atomic((fs::path(dir) / kAdapterConfig).string(), j.dump(2) + "\n");
}

LoraOptions read_lora_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / kAdapterConfig).string();
  check(file_exists(path), dir, ": not an adapter folder (no ", kAdapterConfig, ")");
  const nlohmann::json j = read_json_file(path);
  check(j.is_object(), path, ": must be a JSON object");
  auto field = [&](const char* key) -> const nlohmann::json& {
    check(j.contains(key), path, ": missing key \"", key, "\"");
    return j.at(key);
  };
  check(field("peft_type").is_string() && field("peft_type").get<std::string>() == "LORA", path,
        ": peft_type is ", field("peft_type").dump(), "; spinlm reads LORA adapters only");
  LoraOptions o;
  check(field("r").is_number_integer() && field("r").get<int64_t>() > 0, path, ": \"r\" must be a positive integer, got ",
        field("r").dump());
  o.r = field("r").get<int64_t>();
  check(field("lora_alpha").is_number(), path, ": \"lora_alpha\" must be a number, got ", field("lora_alpha").dump());
  o.alpha = field("lora_alpha").get<double>();
  o.dropout = j.contains("lora_dropout") && j.at("lora_dropout").is_number() ? j.at("lora_dropout").get<double>() : 0.0;
  check(o.dropout >= 0 && o.dropout < 1, path, ": \"lora_dropout\" must be in [0, 1), got ", o.dropout);
  if (j.contains("use_rslora") && !j.at("use_rslora").is_null()) {
    check(j.at("use_rslora").is_boolean(), path, ": \"use_rslora\" must be true or false, got ", j.at("use_rslora").dump());
    o.use_rslora = j.at("use_rslora").get<bool>();
  }
  o.targets = LoraTargets::from_json(field("target_modules"), path + ": target_modules");

  // Settings spinlm does not implement: an error unless at their defaults.
  auto default_only = [&](const char* key, const nlohmann::json& allowed) {
    if (!j.contains(key)) return;
    const nlohmann::json& v = j.at(key);
    const bool empty_default = v.is_null() || (v.is_object() && v.empty()) || (v.is_array() && v.empty());
    check(v == allowed || (allowed.is_null() && empty_default), path, ": \"", key, "\" is ", v.dump(),
          "; spinlm supports only ", allowed.dump(), " there");
  };
  default_only("bias", "none");
  default_only("use_dora", false);
  default_only("fan_in_fan_out", false);
  default_only("lora_bias", false);
  default_only("rank_pattern", nullptr);
  default_only("alpha_pattern", nullptr);
  default_only("modules_to_save", nullptr);
  default_only("layers_to_transform", nullptr);
  default_only("layer_replication", nullptr);
  default_only("exclude_modules", nullptr);
  default_only("trainable_token_indices", nullptr);
  default_only("target_parameters", nullptr);
  static const std::set<std::string> used = {
      "peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "bias", "use_dora",
      "fan_in_fan_out", "lora_bias", "rank_pattern", "alpha_pattern", "modules_to_save", "layers_to_transform",
      "layer_replication", "exclude_modules", "trainable_token_indices", "target_parameters",
      // Informational, or about initialisation, other frameworks or layers_to_transform
      // (null here): nothing the adapted forward depends on.
      "base_model_name_or_path", "task_type", "inference_mode", "init_lora_weights", "revision",
      "auto_mapping", "eva_config", "loftq_config", "layers_pattern", "megatron_config", "megatron_core"};
  std::vector<std::string> ignored;
  for (const auto& item : j.items()) {
    if (!used.count(item.key())) ignored.push_back(item.key());
  }
  if (!ignored.empty()) {
    std::string list;
    for (size_t i = 0; i < ignored.size(); ++i) list += (i ? ", " : "") + ignored[i];
    log_info(path, ": ignoring keys spinlm does not use: ", list);
  }
  return o;
}

void restore_lora_weights(LoraAdapters& adapters, const std::string& dir) {
  const std::string path = (fs::path(dir) / kAdapterWeights).string();
  check(file_exists(path), dir, ": no ", kAdapterWeights);
  SafetensorsFile file(path);
  std::set<std::string> expected;
  at::NoGradGuard no_grad;
  for (const auto& [name, tensor] : adapters.named_parameters()) {
    expected.insert(name);
    check(file.contains(name), path, ": missing tensor \"", name, "\" (adapter_config.json's target_modules ",
          "select this module)");
    const SafetensorsEntry& entry = file.entries().at(name);
    check(at::IntArrayRef(entry.shape) == tensor.sizes(), path, ": tensor \"", name, "\" has shape ",
          at::IntArrayRef(entry.shape), ", the model and r = ", adapters.options().r, " need ", tensor.sizes());
    const_cast<at::Tensor&>(tensor).copy_(file.tensor(name, at::kFloat, tensor.device()));
  }
  for (const auto& [name, entry] : file.entries()) {
    check(expected.count(name) != 0, path, ": unexpected tensor \"", name,
          "\" (not an adapter of a module adapter_config.json's target_modules select)");
  }
}

std::shared_ptr<LoraAdapters> load_lora_adapter(const std::string& dir, const ModelConfig& config,
                                                at::Device device) {
  LoraOptions options = read_lora_config(dir);
  std::shared_ptr<LoraAdapters> adapters;
  try {
    adapters = std::make_shared<LoraAdapters>(config, options, device);
  } catch (const Error& e) {
    fail((fs::path(dir) / kAdapterConfig).string(), ": ", e.what());
  }
  restore_lora_weights(*adapters, dir);
  return adapters;
}

std::string ModelSource::describe() const {
  std::string text = folder;
  for (const std::string& adapter : adapters) text += " + " + adapter;
  return text;
}

ModelSource resolve_model_source(const std::string& path) {
  if (file_exists((fs::path(path) / "config.json").string())) return {path, {}};
  const std::string config_path = (fs::path(path) / kAdapterConfig).string();
  check(file_exists(config_path), path, " is neither a model folder (no config.json) nor a LoRA adapter folder (no ",
        kAdapterConfig, ")");
  const nlohmann::json j = read_json_file(config_path);
  const nlohmann::json base = j.is_object() ? j.value("base_model_name_or_path", nlohmann::json()) : nlohmann::json();
  check(base.is_string() && !base.get<std::string>().empty(), config_path,
        ": base_model_name_or_path must name the base model folder the adapter was trained on, got ", base.dump());
  const std::string folder = base.get<std::string>();
  check(file_exists((fs::path(folder) / "config.json").string()), config_path, ": base_model_name_or_path \"", folder,
        "\" is not a model folder here (no config.json; a relative path is read from the working directory); "
        "edit it to the base model's folder");
  return {folder, {path}};
}

Transformer load_model_source(const ModelSource& source, at::Device device, at::ScalarType dtype) {
  Transformer model = load_model(source.folder, device, dtype);
  for (const std::string& adapter : source.adapters) {
    merge_lora(model, *load_lora_adapter(adapter, model.config(), device));
    log_info("merged adapter ", adapter, " into ", source.folder);
  }
  return model;
}

}  // namespace spinlm
