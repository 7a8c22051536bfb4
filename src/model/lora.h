// LoRA adapters (Hu et al. 2021) as PEFT computes, names and stores them.
//
// Math, per targeted linear layer y = W x (+ b) with W [out, in]:
//   y = W x (+ b) + (B (A dropout(x))) * s,   s = alpha / r   (alpha / sqrt(r) with rsLoRA)
// A [r, in] starts Kaiming-uniform with a = sqrt(5) (U(-1/sqrt(in), 1/sqrt(in)), PEFT's
// init_lora_weights=True), B [out, r] starts at zero, so an untrained adapter changes
// nothing. A and B are fp32 whatever the base dtype: the input is cast to fp32, the
// adapter's term added to the base output in fp32, and the sum cast back to the base dtype.
// Dropout (inverted, as nn.Dropout) acts only while the adapter is trained (autograd
// recording and A requiring grad); its masks come from a seed per decoder-layer call, so a
// layer recomputed in the backward pass (gradient checkpointing) draws the same masks.
// Merging: W' = W + s B A, computed in fp32 and stored in W's dtype.
//
// Target modules, as PEFT's check_target_module_exists: a list entry matches a module name
// exactly or as a dotted suffix ("q_proj" matches "model.layers.3.self_attn.q_proj"); a
// string is a full regex match (std::regex ECMAScript, which agrees with Python's re on the
// usual patterns); "all-linear" is every linear layer but the LM head. Names are those of
// transformers' named_modules() on the causal-LM model ("model.layers.0.mlp.up_proj").
// Only the seven projections of a decoder layer can carry an adapter (the LM head and the
// embedding cannot); an entry that matches nothing, or a match that is not one of them, is
// an Error naming it and listing the model's module names.
//
// Adapter folder, as PEFT's save_pretrained writes it:
//   adapter_config.json        LoraConfig's keys (peft_type LORA, task_type CAUSAL_LM, r,
//                              lora_alpha, lora_dropout, target_modules, use_rslora, ...)
//   adapter_model.safetensors  base_model.model.<module>.lora_A.weight [r, in] and
//                              .lora_B.weight [out, r], fp32, metadata {"format": "pt"}
// Reading: config keys spinlm does not use are noted and ignored; settings it cannot honour
// (DoRA, bias other than none, rank/alpha patterns, modules_to_save, layers_to_transform,
// fan_in_fan_out) are Errors naming the key; a missing, unexpected or misshapen tensor is an
// Error naming it.
#pragma once
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/torch_pch.h"
#include "model/config.h"

namespace spinlm {

class Transformer;

// The projections of a decoder layer, in transformers' module order.
enum class LoraSite : int { q = 0, k, v, o, gate, up, down };
constexpr int kLoraSites = 7;
// "self_attn.q_proj", ..., "mlp.down_proj": the module path inside "model.layers.N.".
const char* lora_site_path(LoraSite site);

// Which modules get an adapter.
struct LoraTargets {
  enum class Kind { list, regex, all_linear };
  Kind kind = Kind::list;
  std::vector<std::string> names;  // kind list
  std::string regex;               // kind regex

  // "all-linear"; a comma-separated list of names (letters, digits, '_', '.', '-'); anything
  // else is a regex.
  static LoraTargets parse(const std::string& text);
  // A recipe's or adapter_config.json's value: a list of strings, or one string (a regex, or
  // "all-linear"). source names the file and key in errors.
  static LoraTargets from_json(const nlohmann::json& value, const std::string& source);
  std::string to_string() const;  // as parse() reads it back
};

struct LoraOptions {
  int64_t r = 0;  // rank; 0: no adapter
  double alpha = 32.0;
  double dropout = 0.05;
  LoraTargets targets = LoraTargets::parse("q_proj,v_proj");  // PEFT's default for Llama/Qwen2
  bool use_rslora = false;

  bool enabled() const { return r > 0; }
  double scaling() const;  // alpha / r, or alpha / sqrt(r) with rsLoRA
  void validate() const;   // Error naming the option when out of range
};

// The module names of a model as transformers' named_modules() lists them (without the
// root ""), and the linear ones among them.
std::vector<std::string> model_module_names(const ModelConfig& config);
// The linear modules the targets select, in module order ("model.layers.0.self_attn.q_proj").
std::vector<std::string> resolve_lora_targets(const ModelConfig& config, const LoraTargets& targets);

// One adapted projection.
struct LoraModule {
  std::string name;  // "model.layers.3.self_attn.q_proj"
  int64_t layer = 0;
  LoraSite site = LoraSite::q;
  at::Tensor A;  // [r, in] fp32
  at::Tensor B;  // [out, r] fp32
};

class LoraAdapters {
 public:
  // Allocates A and B (zeros) for every targeted module of the model, on device.
  LoraAdapters(const ModelConfig& config, LoraOptions options, at::Device device = at::kCPU);

  // PEFT's initialisation: A Kaiming-uniform (a = sqrt 5) drawn in fp32 on the CPU from seed,
  // module by module in order; B zero.
  void init(uint64_t seed);

  const LoraOptions& options() const { return options_; }
  double scaling() const { return scaling_; }
  const std::vector<LoraModule>& modules() const { return modules_; }
  // The module adapting (layer, site), or null.
  const LoraModule* find(int64_t layer, LoraSite site) const;
  // A then B of each module, in module order (what the optimizer updates).
  std::vector<at::Tensor> parameters() const;
  // The A and B tensors of decoder layer `layer` (for gradient checkpointing's weight list).
  std::vector<at::Tensor> layer_parameters(int64_t layer) const;
  // Under PEFT's file names: "base_model.model.<module>.lora_A.weight", ".lora_B.weight".
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  void set_requires_grad(bool on);

  // y + (B (A dropout(x))) * s for x [N, in], y [N, out] (y's dtype kept). Dropout acts
  // when a generator is given (its mask drawn from it on the CPU), else x is used as is.
  at::Tensor apply(const LoraModule& module, const at::Tensor& x, const at::Tensor& y,
                   at::Generator* generator) const;
  // Whether dropout should act now (p > 0, autograd recording, adapters require grad).
  bool dropout_active() const;
  // The seeds of the decoder-layer calls: seed_dropout sets the stream (the trainer calls it
  // with its seed and the step), next_dropout_seed draws the next layer call's seed.
  void seed_dropout(uint64_t seed);
  uint64_t next_dropout_seed() const;

 private:
  LoraOptions options_;
  double scaling_ = 0.0;
  std::vector<LoraModule> modules_;
  std::vector<std::array<int, kLoraSites>> index_;  // [layer][site] -> index into modules_, -1: none
  mutable uint64_t dropout_state_ = 0;
};

// Adds s B A into the base weights of every adapted projection (fp32 sum, stored in the
// model's dtype). The model's own adapters, if any, are not touched.
void merge_lora(Transformer& model, const LoraAdapters& adapters);

// Writes an adapter folder (see above) atomically file by file; base_model names the base
// in adapter_config.json's base_model_name_or_path.
void save_lora_adapter(const LoraAdapters& adapters, const ModelConfig& config, const std::string& dir,
                       const std::string& base_model);
// The adapter_config.json of a folder as LoraOptions (r, lora_alpha, lora_dropout,
// target_modules, use_rslora).
LoraOptions read_lora_config(const std::string& dir);
// Reads an adapter folder for a model of this config, tensors on device.
std::shared_ptr<LoraAdapters> load_lora_adapter(const std::string& dir, const ModelConfig& config,
                                                at::Device device = at::kCPU);
// Copies a folder's adapter tensors into adapters (same modules and shapes; Error otherwise).
void restore_lora_weights(LoraAdapters& adapters, const std::string& dir);
// Runs the model with the adapter folder's adapters, unmerged (on the model's device); an
// empty adapter_dir does nothing.
void attach_lora_adapter(Transformer& model, const std::string& adapter_dir);
// Whether dir holds an adapter (adapter_config.json).
bool is_lora_adapter_folder(const std::string& dir);
// An adapter folder is whole: adapter_config.json reads as LoraOptions and the safetensors
// header of adapter_model.safetensors fits its file (Error naming what is broken).
void check_lora_adapter_whole(const std::string& dir);

// A model given as an HF folder and the adapters merged into its weights, in order: p_t of a
// LoRA run is p_0 with the adapters of iterations 0..t-1, each trained on the model before it.
struct ModelSource {
  std::string folder;                 // config.json, weights and tokenizer files
  std::vector<std::string> adapters;  // adapter folders merged into folder's weights, first to last

  bool operator==(const ModelSource& other) const { return folder == other.folder && adapters == other.adapters; }
  bool operator!=(const ModelSource& other) const { return !(*this == other); }
  // "FOLDER" or "FOLDER + A + B", for logs.
  std::string describe() const;
};

// A path given as a model: an HF folder stands for itself; an adapter folder without a
// config.json stands for its adapter_config.json's base_model_name_or_path with the adapter
// merged (alignment-handbook's convention for model_name_or_path; a relative base path is
// taken from the working directory, as PEFT takes it). Anything else is an Error naming it.
ModelSource resolve_model_source(const std::string& path);

// load_model of source.folder, then each adapter merged in order (merge_lora), so that a
// model rebuilt from its source equals, bit for bit, one merged step by step in memory.
Transformer load_model_source(const ModelSource& source, at::Device device, at::ScalarType dtype);

}  // namespace spinlm
