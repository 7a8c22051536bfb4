// model/lora.h: LoRA adapters against the PEFT twin (tests/reference/lora_reference.py,
// written from PEFT's semantics): target-module matching, forward log-probs and gradients
// with respect to A and B, merging, rsLoRA scaling, PEFT-written adapter folders; plus the
// closed forms and properties (Kaiming-uniform bounds, B = 0 leaves the base exact, no
// gradient reaches the base, bit-exact round trip, dropout replayed under checkpointing).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "pipeline/recipe.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/hf_model.h"
#include "model/kv_cache.h"
#include "model/lora.h"
#include "model/transformer.h"
#include "testkit.h"
#include "train/spin_trainer.h"

using namespace spinlm;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

ModelConfig config_of(const std::string& model_type, const json& extra = json::object()) {
  json config = {{"model_type", model_type}, {"vocab_size", 37},        {"hidden_size", 32},
                 {"intermediate_size", 48},   {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                 {"num_key_value_heads", 2},  {"rms_norm_eps", 1e-5},   {"rope_theta", 10000.0},
                 {"bos_token_id", 1},         {"eos_token_id", 2},      {"tie_word_embeddings", false}};
  if (model_type == "qwen3") config["head_dim"] = 8;
  for (auto& [key, value] : extra.items()) config[key] = value;
  return ModelConfig::from_json(config, "test config.json");
}

std::string save_random_model(const ModelConfig& config, const std::string& label, uint64_t seed) {
  Transformer model(config);
  testkit::randomize_parameters(model, seed, 0.25);
  const std::string dir = testkit::make_temp_dir(label);
  save_model(model, dir);
  return dir;
}

// Adapters with A from PEFT's init and B drawn from Normal(0, 0.2), so they change the model.
std::shared_ptr<LoraAdapters> random_adapters(const ModelConfig& config, LoraOptions options, uint64_t seed) {
  auto adapters = std::make_shared<LoraAdapters>(config, options);
  adapters->init(seed);
  at::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed + 1);
  for (const LoraModule& m : adapters->modules()) {
    const_cast<at::Tensor&>(m.B).copy_(at::empty(m.B.sizes(), at::kFloat).normal_(0.0, 0.2, generator));
  }
  return adapters;
}

LoraOptions lora_options(int64_t r, double alpha, const std::string& targets, bool rslora = false) {
  LoraOptions o;
  o.r = r;
  o.alpha = alpha;
  o.dropout = 0.0;
  o.targets = LoraTargets::parse(targets);
  o.use_rslora = rslora;
  return o;
}

std::vector<std::vector<int64_t>> sample_rows(int64_t vocab, const std::vector<int64_t>& lengths, uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  std::vector<std::vector<int64_t>> rows;
  for (int64_t length : lengths) {
    at::Tensor ids = at::randint(vocab, {length}, generator, at::kLong);
    rows.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
  }
  return rows;
}

// Right-padded batch: ids [B, T] (padding 0), mask [B, T].
std::pair<at::Tensor, at::Tensor> pad_rows(const std::vector<std::vector<int64_t>>& rows) {
  int64_t T = 0;
  for (const auto& row : rows) T = std::max<int64_t>(T, row.size());
  at::Tensor ids = at::zeros({int64_t(rows.size()), T}, at::kLong);
  at::Tensor mask = at::zeros({int64_t(rows.size()), T}, at::kLong);
  for (size_t b = 0; b < rows.size(); ++b) {
    for (size_t t = 0; t < rows[b].size(); ++t) {
      ids[b][t] = rows[b][t];
      mask[b][t] = 1;
    }
  }
  return {ids, mask};
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.numel() == 0) return 0.0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

struct TwinResult {
  std::vector<at::Tensor> logprobs;          // per row [len - 1]
  std::map<std::string, at::Tensor> tensors;  // every other output by name
};

TwinResult run_twin_forward(const std::string& model_dir, const std::string& adapter_dir,
                            const std::vector<std::vector<int64_t>>& rows, const std::string& flags) {
  const std::string input = adapter_dir + "/rows.json", output = adapter_dir + "/twin.safetensors";
  write_file_atomic(input, json({{"rows", rows}}).dump());
  auto result = testkit::run_python_reference(
      "lora_reference.py", "forward --model " + testkit::shell_quote(model_dir) + " --adapter " +
                               testkit::shell_quote(adapter_dir) + " --input " + testkit::shell_quote(input) +
                               " --output " + testkit::shell_quote(output) + " " + flags);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  SafetensorsFile file(output);
  TwinResult twin;
  for (size_t i = 0; i < rows.size(); ++i) twin.logprobs.push_back(file.tensor("logprobs." + std::to_string(i)));
  for (const auto& [name, entry] : file.entries()) twin.tensors[name] = file.tensor(name);
  return twin;
}

// Row b's log-probs of tokens 1.. from a right-padded [B, T] result.
at::Tensor row_logprobs(const at::Tensor& logprobs, size_t length, int64_t b) {
  return logprobs[b].narrow(0, 1, static_cast<int64_t>(length) - 1);
}

}  // namespace

// Every matching case agrees with PEFT's rules run on torch's named_modules(); where PEFT
// finds an entry that matches nothing (or a module it cannot adapt), spinlm's error names it
// and lists the model's modules.
TEST(LoraTargets, MatchLikePeft) {
  for (const std::string type : {"llama", "qwen3"}) {
    const ModelConfig config = config_of(type);
    const std::string dir = testkit::make_temp_dir("lora-match-" + type);
    write_file_atomic(dir + "/config.json", config.to_json().dump());
    const json cases = json::array({json::array({"q_proj", "v_proj"}),
                                    json::array({"self_attn.o_proj", "mlp.down_proj"}),
                                    json::array({"model.layers.1.mlp.up_proj", "k_proj"}),
                                    ".*\\.(q|k)_proj",
                                    "model\\.layers\\.0\\..*_proj",
                                    "all-linear",
                                    json::array({"nonexistent"}),
                                    json::array({"q_proj", "nonexistent"}),
                                    "nothing.*",
                                    json::array({"input_layernorm"}),
                                    ".*layers\\.1\\.self_attn"});
    auto twin = testkit::run_python_reference(
        "lora_reference.py", "match --config " + testkit::shell_quote(dir + "/config.json") + " --targets " +
                                 testkit::shell_quote(cases.dump()) + " --output " +
                                 testkit::shell_quote(dir + "/match.json"));
    ASSERT_EQ(twin.exit_code, 0) << twin.output;
    const json results = read_json_file(dir + "/match.json");
    ASSERT_EQ(results.size(), cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      const LoraTargets targets = LoraTargets::from_json(cases[i], "case");
      const json& expected = results[i];
      const bool twin_fails = expected.contains("error") || !expected["unmatched"].empty();
      std::vector<std::string> modules;
      const std::string error = error_of([&] { modules = resolve_lora_targets(config, targets); });
      if (!twin_fails) {
        EXPECT_EQ(error, "") << cases[i].dump();
        EXPECT_EQ(json(modules), expected["modules"]) << type << " " << cases[i].dump();
        continue;
      }
      EXPECT_NE(error, "") << type << " " << cases[i].dump();
      for (const auto& name : expected["unmatched"]) {
        EXPECT_NE(error.find("\"" + name.get<std::string>() + "\""), std::string::npos) << error;
      }
      EXPECT_NE(error.find("model.layers.{0-1}.self_attn.q_proj"), std::string::npos) << error;
      EXPECT_NE(error.find("lm_head"), std::string::npos) << error;
    }
  }
  // The LM head is a linear layer PEFT can adapt; spinlm cannot, and says so.
  const std::string head = error_of([] { resolve_lora_targets(config_of("llama"), LoraTargets::parse("lm_head")); });
  EXPECT_NE(head.find("LM head"), std::string::npos) << head;
  // The command-line forms: a plain comma list, a regex, all-linear.
  EXPECT_EQ(LoraTargets::parse("q_proj,v_proj").kind, LoraTargets::Kind::list);
  EXPECT_EQ(LoraTargets::parse(".*proj").kind, LoraTargets::Kind::regex);
  EXPECT_EQ(LoraTargets::parse("all-linear").kind, LoraTargets::Kind::all_linear);
  EXPECT_NE(error_of([] { LoraTargets::parse("(unclosed"); }).find("regular expression"), std::string::npos);
}

// PEFT's init: A ~ U(-1/sqrt(in), 1/sqrt(in)) from the seed, B = 0, so the adapted model's
// forward is the base's exactly.
// A hostile target pattern is refused before std::regex builds it: its length and its
// counted repetitions are bounded, and the error names the recipe key and line.
TEST(LoraTargets, HostilePatternsAreRefused) {
  const std::string minimal = "model_name_or_path: m\ndata:\n  train: t.jsonl\nuse_peft: true\n";
  for (const std::string& pattern : {std::string("(a{1000}){1000}"), std::string("x{0,5000}"),
                                     std::string("(") + std::string(600, 'a') + ")"}) {
    std::string error;
    try {
      parse_recipe(minimal + "lora_target_modules: \"" + pattern + "\"\n", "r.yaml");
    } catch (const Error& e) {
      error = e.what();
    }
    EXPECT_NE(error.find("r.yaml:5"), std::string::npos) << pattern << " -> " << error;
    EXPECT_NE(error.find("lora_target_modules"), std::string::npos) << error;
  }
  // Bounds within the limit are fine.
  EXPECT_EQ(LoraTargets::parse("model\\.layers\\.[0-9]{1,2}\\.self_attn\\.q_proj").kind, LoraTargets::Kind::regex);
}

TEST(LoraAdapters, InitIsKaimingUniformAndLeavesTheBaseExact) {
  const ModelConfig config = config_of("llama", {{"hidden_size", 128}, {"intermediate_size", 256}});
  LoraAdapters a(config, lora_options(16, 32, "all-linear"));
  a.init(5);
  int64_t count = 0;
  for (const LoraModule& m : a.modules()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(m.A.size(1)));
    EXPECT_LE(m.A.abs().max().item<double>(), bound);
    // Uniform on [-b, b]: variance b^2 / 3.
    EXPECT_NEAR(m.A.to(at::kDouble).var().item<double>() / (bound * bound / 3.0), 1.0, 0.1) << m.name;
    EXPECT_EQ(m.B.abs().max().item<double>(), 0.0);
    EXPECT_EQ(m.A.scalar_type(), at::kFloat);
    ++count;
  }
  EXPECT_EQ(count, 14);
  LoraAdapters same(config, lora_options(16, 32, "all-linear")), other(config, lora_options(16, 32, "all-linear"));
  same.init(5);
  other.init(6);
  EXPECT_TRUE(at::equal(a.modules()[3].A, same.modules()[3].A));
  EXPECT_FALSE(at::equal(a.modules()[3].A, other.modules()[3].A));

  Transformer model(config);
  testkit::randomize_parameters(model, 2, 0.25);
  auto [ids, mask] = pad_rows(sample_rows(config.vocab_size, {7, 4}, 1));
  at::NoGradGuard no_grad;
  at::Tensor base = model.token_logprobs(ids, mask);
  auto adapters = std::make_shared<LoraAdapters>(config, lora_options(4, 8, "all-linear"));
  adapters->init(1);
  model.set_lora(adapters);
  EXPECT_TRUE(at::equal(base, model.token_logprobs(ids, mask)));
}

// Forward log-probs (fp32, 1e-5) and d(sum of log-probs)/d(A, B) (1e-5 of the gradient's
// largest entry) of base + adapter against the twin, on adapters over part of the fused q/k/v and gate/up products, with q/k/v biases
// (qwen2) and without; no gradient reaches the base; gradient checkpointing gives the same.
TEST(LoraAdapters, ForwardAndGradientsMatchPeftTwin) {
  struct Case {
    std::string type, targets;
    bool rslora;
  };
  for (const Case& c : {Case{"llama", "q_proj,v_proj,up_proj", false}, Case{"qwen2", "k_proj,gate_proj,o_proj", false},
                        Case{"llama", "all-linear", true}}) {
    SCOPED_TRACE(c.type + " " + c.targets);
    const ModelConfig config = config_of(c.type);
    const std::string model_dir = save_random_model(config, "lora-fwd-" + c.type, 7);
    auto adapters = random_adapters(config, lora_options(4, 12, c.targets, c.rslora), 3);
    const std::string adapter_dir = testkit::make_temp_dir("lora-fwd-adapter");
    save_lora_adapter(*adapters, config, adapter_dir, model_dir);
    const auto rows = sample_rows(config.vocab_size, {9, 5, 12}, 4);
    const TwinResult twin = run_twin_forward(model_dir, adapter_dir, rows, "--grad");
    EXPECT_EQ(twin.tensors.at("base_grads").item<double>(), 0.0);

    Transformer model = load_model(model_dir);
    model.set_lora(load_lora_adapter(adapter_dir, config));
    EXPECT_DOUBLE_EQ(model.lora()->scaling(), c.rslora ? 12.0 / 2.0 : 12.0 / 4.0);
    auto [ids, mask] = pad_rows(rows);
    for (bool checkpointing : {false, true}) {
      model.set_gradient_checkpointing(checkpointing);
      std::vector<at::Tensor> params = model.trainable_parameters();
      ASSERT_EQ(params.size(), 2 * model.lora()->modules().size());
      at::Tensor logprobs = model.token_logprobs(ids, mask, /*chunk_positions=*/5);
      for (size_t b = 0; b < rows.size(); ++b) {
        EXPECT_LT(max_abs_diff(row_logprobs(logprobs.detach(), rows[b].size(), b), twin.logprobs[b]), 1e-5);
      }
      at::Tensor total = (logprobs * mask.to(at::kFloat)).sum();
      for (const at::Tensor& p : params) {
        if (p.grad().defined()) const_cast<at::Tensor&>(p).mutable_grad().zero_();
      }
      total.backward();
      for (const auto& [name, tensor] : model.lora()->named_parameters()) {
        ASSERT_TRUE(tensor.grad().defined()) << name;
        // fp32 sums of a few hundred terms: 1e-5 relative to the gradient's largest entry.
        const at::Tensor& theirs = twin.tensors.at("grad." + name);
        const double scale = std::max(1.0, theirs.abs().max().item<double>());
        EXPECT_LT(max_abs_diff(tensor.grad(), theirs), 1e-5 * scale) << name << " (scale " << scale << ")";
      }
      for (const auto& [name, tensor] : model.named_parameters()) {
        EXPECT_FALSE(tensor.requires_grad()) << name;
        EXPECT_FALSE(tensor.grad().defined()) << name;
      }
    }
  }
}

// Merging W + s B A: the twin's merged weights, and the merged model's forward equals the
// unmerged one's within 1e-5; a bf16 base stays bf16.
TEST(LoraAdapters, MergeEqualsTheUnmergedForward) {
  const ModelConfig config = config_of("qwen2");
  const std::string model_dir = save_random_model(config, "lora-merge", 9);
  auto adapters = random_adapters(config, lora_options(8, 16, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"), 4);
  const std::string adapter_dir = testkit::make_temp_dir("lora-merge-adapter");
  save_lora_adapter(*adapters, config, adapter_dir, model_dir);
  const auto rows = sample_rows(config.vocab_size, {8, 11}, 6);
  const TwinResult twin = run_twin_forward(model_dir, adapter_dir, rows, "--merge");

  Transformer unmerged = load_model(model_dir);
  unmerged.set_lora(adapters);
  Transformer merged = load_model(model_dir);
  merge_lora(merged, *adapters);
  for (const LoraModule& m : adapters->modules()) {
    EXPECT_LT(max_abs_diff(merged.parameter(m.name + ".weight"), twin.tensors.at("merged." + m.name + ".weight")), 1e-6)
        << m.name;
  }
  auto [ids, mask] = pad_rows(rows);
  at::NoGradGuard no_grad;
  at::Tensor a = unmerged.token_logprobs(ids, mask), b = merged.token_logprobs(ids, mask);
  EXPECT_LT(max_abs_diff(a, b), 1e-5);
  for (size_t r = 0; r < rows.size(); ++r) {
    EXPECT_LT(max_abs_diff(row_logprobs(b, rows[r].size(), r), twin.logprobs[r]), 1e-5);
  }
  // The merged layers actually changed.
  Transformer base = load_model(model_dir);
  EXPECT_GT(max_abs_diff(base.token_logprobs(ids, mask), b), 1e-3);

  Transformer half = load_model(model_dir, at::kCPU, at::kBFloat16);
  merge_lora(half, *adapters);
  EXPECT_EQ(half.parameter("model.layers.0.self_attn.q_proj.weight").scalar_type(), at::kBFloat16);
}

// The folder as PEFT writes it, read back bit for bit; errors name the tensor or key.
TEST(LoraFolder, RoundTripsBitExactlyAndNamesBadTensors) {
  const ModelConfig config = config_of("llama");
  auto adapters = random_adapters(config, lora_options(4, 8, "all-linear", true), 8);
  const std::string dir = testkit::make_temp_dir("lora-folder");
  save_lora_adapter(*adapters, config, dir + "/a", "/models/base");
  const json written = read_json_file(dir + "/a/adapter_config.json");
  EXPECT_EQ(written["peft_type"], "LORA");
  EXPECT_EQ(written["task_type"], "CAUSAL_LM");
  EXPECT_EQ(written["r"], 4);
  EXPECT_EQ(written["lora_alpha"], 8.0);
  EXPECT_EQ(written["use_rslora"], true);
  EXPECT_EQ(written["bias"], "none");
  EXPECT_EQ(written["fan_in_fan_out"], false);
  EXPECT_EQ(written["init_lora_weights"], true);
  EXPECT_TRUE(written["modules_to_save"].is_null());
  EXPECT_EQ(written["base_model_name_or_path"], "/models/base");
  // all-linear is saved as PEFT saves it: the linear layers' last name components.
  EXPECT_EQ(written["target_modules"],
            json::array({"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}));
  SafetensorsFile file(dir + "/a/adapter_model.safetensors");
  EXPECT_TRUE(file.contains("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"));
  EXPECT_EQ(file.entries().at("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").dtype, "F32");
  EXPECT_EQ(file.metadata().at("format"), "pt");

  auto loaded = load_lora_adapter(dir + "/a", config);
  ASSERT_EQ(loaded->named_parameters().size(), adapters->named_parameters().size());
  for (size_t i = 0; i < loaded->named_parameters().size(); ++i) {
    EXPECT_EQ(loaded->named_parameters()[i].first, adapters->named_parameters()[i].first);
    EXPECT_TRUE(at::equal(loaded->named_parameters()[i].second, adapters->named_parameters()[i].second));
  }
  EXPECT_DOUBLE_EQ(loaded->scaling(), 8.0 / 2.0);

  // A missing tensor, a misshapen one, an unexpected one, a setting spinlm cannot honour.
  auto tensors = adapters->named_parameters();
  auto write_variant = [&](const std::string& name, std::vector<std::pair<std::string, at::Tensor>> t) {
    fs::create_directories(dir + "/" + name);
    fs::copy_file(dir + "/a/adapter_config.json", dir + "/" + name + "/adapter_config.json");
    write_safetensors(dir + "/" + name + "/adapter_model.safetensors", t);
    return dir + "/" + name;
  };
  auto missing = tensors;
  missing.erase(missing.begin() + 5);
  const std::string missing_error = error_of([&] { load_lora_adapter(write_variant("missing", missing), config); });
  EXPECT_NE(missing_error.find(tensors[5].first), std::string::npos) << missing_error;
  auto shaped = tensors;
  shaped[2].second = at::zeros({3, shaped[2].second.size(1)});
  const std::string shape_error = error_of([&] { load_lora_adapter(write_variant("shape", shaped), config); });
  EXPECT_NE(shape_error.find(tensors[2].first), std::string::npos) << shape_error;
  EXPECT_NE(shape_error.find("shape"), std::string::npos) << shape_error;
  auto extra = tensors;
  extra.emplace_back("base_model.model.lm_head.lora_A.weight", at::zeros({4, 32}));
  const std::string extra_error = error_of([&] { load_lora_adapter(write_variant("extra", extra), config); });
  EXPECT_NE(extra_error.find("lm_head.lora_A"), std::string::npos) << extra_error;
  json dora = written;
  dora["use_dora"] = true;
  const std::string dora_dir = write_variant("dora", tensors);
  write_file_atomic(dora_dir + "/adapter_config.json", dora.dump());
  const std::string dora_error = error_of([&] { load_lora_adapter(dora_dir, config); });
  EXPECT_NE(dora_error.find("use_dora"), std::string::npos) << dora_error;
}

// A folder the twin writes as a newer PEFT does (keys spinlm does not use, fp32 tensors)
// loads, and its forward equals the twin's.
TEST(LoraFolder, PeftWrittenFolderLoads) {
  const ModelConfig config = config_of("llama");
  const std::string model_dir = save_random_model(config, "lora-peft-base", 12);
  const std::string adapter_dir = testkit::make_temp_dir("lora-peft-adapter");
  auto made = testkit::run_python_reference(
      "lora_reference.py", "make-adapter --model " + testkit::shell_quote(model_dir) + " --output " +
                               testkit::shell_quote(adapter_dir) + " --r 4 --alpha 16 --targets " +
                               testkit::shell_quote(R"(["q_proj","v_proj","down_proj"])") + " --seed 3");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto adapters = load_lora_adapter(adapter_dir, config);
  EXPECT_EQ(adapters->modules().size(), 6u);
  EXPECT_DOUBLE_EQ(adapters->options().dropout, 0.05);
  const auto rows = sample_rows(config.vocab_size, {10, 6}, 8);
  const TwinResult twin = run_twin_forward(model_dir, adapter_dir, rows, "");
  Transformer model = load_model(model_dir);
  model.set_lora(adapters);
  auto [ids, mask] = pad_rows(rows);
  at::NoGradGuard no_grad;
  at::Tensor logprobs = model.token_logprobs(ids, mask);
  for (size_t b = 0; b < rows.size(); ++b) {
    EXPECT_LT(max_abs_diff(row_logprobs(logprobs, rows[b].size(), b), twin.logprobs[b]), 1e-5);
  }
}

// Dropout acts only while the adapters train, and a layer recomputed by gradient
// checkpointing draws the masks its forward drew: the same gradients either way.
TEST(LoraAdapters, DropoutIsReplayedUnderCheckpointing) {
  const ModelConfig config = config_of("llama");
  Transformer model(config);
  testkit::randomize_parameters(model, 4, 0.25);
  LoraOptions o = lora_options(4, 8, "all-linear");
  o.dropout = 0.3;
  model.set_lora(random_adapters(config, o, 2));
  auto [ids, mask] = pad_rows(sample_rows(config.vocab_size, {9, 6}, 2));
  std::vector<at::Tensor> params = model.trainable_parameters();
  auto grads_with = [&](bool checkpointing) {
    model.set_gradient_checkpointing(checkpointing);
    model.lora()->seed_dropout(77);
    at::Tensor total = (model.token_logprobs(ids, mask) * mask.to(at::kFloat)).sum();
    std::vector<at::Tensor> grads = torch::autograd::grad({total}, params);
    return std::make_pair(total.detach(), grads);
  };
  auto [plain_total, plain] = grads_with(false);
  auto [checkpointed_total, checkpointed] = grads_with(true);
  EXPECT_TRUE(at::equal(plain_total, checkpointed_total));
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_LT(max_abs_diff(plain[i], checkpointed[i]), 1e-6) << i;
  // Another dropout stream gives another loss; without grad there is no dropout at all.
  model.lora()->seed_dropout(78);
  const at::Tensor other = (model.token_logprobs(ids, mask) * mask.to(at::kFloat)).sum().detach();
  EXPECT_GT(std::abs(other.item<double>() - plain_total.item<double>()), 1e-6);
  at::NoGradGuard no_grad;
  model.lora()->seed_dropout(1);
  const at::Tensor eval_a = model.token_logprobs(ids, mask);
  model.lora()->seed_dropout(2);
  EXPECT_TRUE(at::equal(eval_a, model.token_logprobs(ids, mask)));
}

namespace {

// SPIN pairs in the generation output format (token ids), ids in [3, 37).
std::string write_pairs(const std::string& dir, int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto ids = [&](int64_t length) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < length; ++i) v.push_back(3 + static_cast<int64_t>(rng() % 34));
    return v;
  };
  std::vector<json> rows;
  for (int i = 0; i < count; ++i) {
    std::vector<int64_t> prompt = ids(3 + static_cast<int64_t>(rng() % 4));
    prompt.insert(prompt.begin(), 1);
    const json turn = json::array({json::object({{"role", "user"}, {"content", "q"}})});
    rows.push_back({{"real", turn}, {"generated", turn}, {"prompt_ids", prompt},
                    {"real_ids", ids(2 + static_cast<int64_t>(rng() % 5))},
                    {"generated_ids", ids(2 + static_cast<int64_t>(rng() % 5))}});
  }
  write_jsonl_atomic(dir + "/pairs.jsonl", rows);
  return dir + "/pairs.jsonl";
}

SpinTrainOptions lora_train_options(const std::string& model, const std::string& data, const std::string& out) {
  SpinTrainOptions o;
  o.loop.model_dir = model;
  o.loop.output_dir = out;
  o.data_files = {data};
  o.loop.batch_size = 4;
  o.loop.micro_batch_size = 2;
  o.loop.epochs = 1;
  o.loop.logging_steps = 1;
  o.loop.optimizer.kind = "adamw";
  o.loop.warmup_ratio = 0.0;
  o.truncation = {64, 32};
  o.loop.lora = lora_options(4, 8, "all-linear");
  return o;
}

}  // namespace

// SPIN with a fresh adapter: the first loss is ln 2 with zero rewards (B = 0: the policy is
// the reference), a short run separates the pairs, only the adapters are optimised, the base
// stays as it was, and the output is an adapter folder.
TEST(LoraTraining, StartsAtLn2SeparatesPairsAndSavesAnAdapter) {
  const ModelConfig config = config_of("llama");
  const std::string model = save_random_model(config, "lora-train-base", 21);
  const std::string dir = testkit::make_temp_dir("lora-train");
  const std::string data = write_pairs(dir, 8, 23);
  SpinTrainOptions o = lora_train_options(model, data, dir + "/out");
  o.eval_data = data;
  o.loop.learning_rate = 2e-2;
  o.loop.epochs = 12;
  o.loop.batch_size = 8;
  o.loop.micro_batch_size = 4;
  o.loop.lr_scheduler = "constant";
  const std::string base_before = read_file(model + "/model.safetensors");
  SpinTrainResult result = train_spin(o);

  std::vector<json> metrics;
  for (auto& row : read_jsonl(dir + "/out/metrics.jsonl")) {
    if (row.value.contains("loss")) metrics.push_back(row.value);
  }
  ASSERT_FALSE(metrics.empty());
  EXPECT_NEAR(metrics[0]["loss"].get<double>(), std::log(2.0), 1e-6);
  EXPECT_NEAR(metrics[0]["rewards/real"].get<double>(), 0.0, 1e-6);
  EXPECT_NEAR(metrics[0]["rewards/generated"].get<double>(), 0.0, 1e-6);
  EXPECT_GT(metrics[0]["grad_norm"].get<double>(), 0.0);
  EXPECT_GT(result.last_eval["rewards/accuracies"], 0.9);
  EXPECT_GT(result.last_eval["rewards/margins"], 0.0);
  EXPECT_LT(result.last_eval["loss"], std::log(2.0));

  EXPECT_TRUE(fs::exists(dir + "/out/adapter_config.json"));
  EXPECT_TRUE(fs::exists(dir + "/out/adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/out/model.safetensors"));
  EXPECT_TRUE(fs::exists(dir + "/out/epoch-12/adapter_model.safetensors"));
  EXPECT_EQ(read_file(model + "/model.safetensors"), base_before);
  // The optimizer holds state for the 2 x 14 adapter tensors only.
  SafetensorsFile state(dir + "/out/epoch-12/optimizer.safetensors");
  int64_t highest = -1;
  for (const auto& [name, entry] : state.entries()) {
    if (name.rfind("state.", 0) == 0) highest = std::max<int64_t>(highest, std::stoll(name.substr(6)));
  }
  EXPECT_EQ(highest, 2 * 14 - 1);
  // The saved adapter on the base reproduces the final evaluation (reference: the base).
  Transformer base = load_model(model);
  StopTokens stop;
  stop.ids = {2};
  stop.eos = 2;
  const auto pairs = load_training_pairs({data}, nullptr, stop, o.truncation, config.vocab_size);
  const ReferenceLogprobs reference = compute_reference_logprobs(base, pairs, MicroBatching{4});
  base.set_lora(load_lora_adapter(dir + "/out", config));
  const MetricMap eval = evaluate_spin(base, pairs, reference, parse_spin_loss("logistic"), o.beta, 0.0, MicroBatching{4});
  EXPECT_NEAR(eval.at("loss"), result.last_eval["loss"], 1e-6);
  EXPECT_NEAR(eval.at("rewards/margins"), result.last_eval["rewards/margins"], 1e-6);
}

// A LoRA training killed mid-way and resumed ends with the adapter an uninterrupted run
// gives, bit for bit (dropout on: its masks follow the step).
TEST(LoraTraining, ResumeReachesTheSameAdapter) {
  const ModelConfig config = config_of("llama");
  const std::string model = save_random_model(config, "lora-resume-base", 31);
  const std::string dir = testkit::make_temp_dir("lora-resume");
  const std::string data = write_pairs(dir, 10, 33);
  auto options = [&](const std::string& out) {
    SpinTrainOptions o = lora_train_options(model, data, out);
    o.loop.epochs = 2;
    o.loop.save_steps = 2;
    o.loop.learning_rate = 5e-3;
    o.loop.lora = lora_options(4, 8, "q_proj,v_proj,down_proj");
    o.loop.lora.dropout = 0.1;
    return o;
  };
  train_spin(options(dir + "/straight"));
  SpinTrainOptions o = options(dir + "/resumed");
  o.loop.stop_after_steps = 3;
  train_spin(o);
  o.loop.resume = true;
  o.loop.stop_after_steps = 0;
  EXPECT_EQ(train_spin(o).steps, 6);
  SafetensorsFile a(dir + "/straight/adapter_model.safetensors"), b(dir + "/resumed/adapter_model.safetensors");
  ASSERT_EQ(a.entries().size(), 12u);
  for (const auto& [name, entry] : a.entries()) EXPECT_TRUE(at::equal(a.tensor(name), b.tensor(name))) << name;
  // Another rank is refused on resume.
  o.loop.lora.r = 8;
  EXPECT_NE(error_of([&] { train_spin(o); }).find("lora"), std::string::npos);

  // A latest adapter checkpoint cut short is named, and the newest whole one resumed from.
  SpinTrainOptions cut = options(dir + "/cut");
  cut.loop.stop_after_steps = 5;  // epoch-1 at step 3, checkpoint-4 the latest
  train_spin(cut);
  const std::string weights = dir + "/cut/checkpoint-4/adapter_model.safetensors";
  const std::string bytes = read_file(weights);
  write_file_atomic(weights, bytes.substr(0, bytes.size() / 2));
  cut.loop.resume = true;
  cut.loop.stop_after_steps = 0;
  EXPECT_EQ(train_spin(cut).steps, 6);
  SafetensorsFile c(dir + "/cut/adapter_model.safetensors");
  for (const auto& [name, entry] : a.entries()) EXPECT_TRUE(at::equal(a.tensor(name), c.tensor(name))) << name;
}

// `spinlm score --adapter` runs base + a PEFT-written adapter unmerged, `spinlm merge` writes
// the merged HF folder (tokenizer files copied, the base's dtype kept): both give the twin's
// log-probs.
TEST(LoraCommands, ScoreWithAdapterAndMergeMatchTheTwin) {
  const ModelConfig config = config_of("llama");
  const std::string base = save_random_model(config, "lora-cli-base", 41);
  write_file_atomic(base + "/tokenizer_config.json", "{\"model_max_length\": 64}\n");
  const std::string dir = testkit::make_temp_dir("lora-cli");
  auto made = testkit::run_python_reference(
      "lora_reference.py", "make-adapter --model " + testkit::shell_quote(base) + " --output " +
                               testkit::shell_quote(dir + "/adapter") + " --r 4 --alpha 8 --targets " +
                               testkit::shell_quote("\".*\\\\.(q|v|up)_proj\"") + " --seed 5");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const auto rows = sample_rows(config.vocab_size, {8, 5, 10}, 9);
  const TwinResult twin = run_twin_forward(base, dir + "/adapter", rows, "");
  std::vector<json> input;
  for (const auto& row : rows) input.push_back({{"ids", row}});
  write_jsonl_atomic(dir + "/rows.jsonl", input);
  auto score = [&](const std::string& args, const std::string& out) {
    auto result = testkit::run_spinlm("score " + args + " --input " + testkit::shell_quote(dir + "/rows.jsonl") +
                                      " --output " + testkit::shell_quote(out) + " --device cpu --dtype fp32");
    EXPECT_EQ(result.exit_code, 0) << result.output;
    std::vector<at::Tensor> values;
    for (auto& row : read_jsonl(out)) values.push_back(at::tensor(row.value["logprobs"].get<std::vector<double>>()));
    return values;
  };
  const auto adapted = score("--model " + testkit::shell_quote(base) + " --adapter " +
                                 testkit::shell_quote(dir + "/adapter"),
                             dir + "/adapted.jsonl");
  auto merged_run = testkit::run_spinlm("merge --model " + testkit::shell_quote(base) + " --adapter " +
                                        testkit::shell_quote(dir + "/adapter") + " --output " +
                                        testkit::shell_quote(dir + "/merged"));
  ASSERT_EQ(merged_run.exit_code, 0) << merged_run.output;
  EXPECT_EQ(read_file(dir + "/merged/tokenizer_config.json"), read_file(base + "/tokenizer_config.json"));
  const auto merged = score("--model " + testkit::shell_quote(dir + "/merged"), dir + "/merged.jsonl");
  ASSERT_EQ(adapted.size(), rows.size());
  ASSERT_EQ(merged.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_LT(max_abs_diff(adapted[i], twin.logprobs[i]), 1e-5) << i;
    EXPECT_LT(max_abs_diff(merged[i], twin.logprobs[i]), 1e-5) << i;
  }

  // A bf16 base merges into a bf16 folder: the fp32 sum rounded once.
  Transformer half = load_model(base, at::kCPU, at::kBFloat16);
  save_model(half, dir + "/half");
  ASSERT_EQ(testkit::run_spinlm("merge --model " + testkit::shell_quote(dir + "/half") + " --adapter " +
                                testkit::shell_quote(dir + "/adapter") + " --output " +
                                testkit::shell_quote(dir + "/half-merged"))
                .exit_code,
            0);
  EXPECT_EQ(read_json_file(dir + "/half-merged/config.json")["torch_dtype"], "bfloat16");
  SafetensorsFile merged_half(dir + "/half-merged/model.safetensors");
  const std::string q = "model.layers.1.self_attn.q_proj.weight";
  EXPECT_EQ(merged_half.entries().at(q).dtype, "BF16");
  merge_lora(half, *load_lora_adapter(dir + "/adapter", config));
  EXPECT_TRUE(at::equal(merged_half.tensor(q, at::kBFloat16), half.parameter(q)));
  // A missing adapter folder is a clear error.
  auto bad = testkit::run_spinlm("merge --model " + testkit::shell_quote(base) + " --adapter " +
                                 testkit::shell_quote(dir + "/nope") + " --output " + testkit::shell_quote(dir + "/x"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("adapter_config.json"), std::string::npos) << bad.output;
}

// `spinlm sft --lora-r`: the loss falls with only the adapter trained, the output is an
// adapter folder, and the base with that adapter gives the run's final evaluation.
TEST(LoraTraining, SftGivesAnAdapter) {
  const ModelConfig config = config_of("llama");
  const std::string model = save_random_model(config, "lora-sft-base", 61);
  const std::string dir = testkit::make_temp_dir("lora-sft");
  std::mt19937_64 rng(63);
  std::vector<json> rows;
  for (int i = 0; i < 8; ++i) {
    std::vector<int64_t> prompt = {1}, response;
    for (int k = 0; k < 4; ++k) prompt.push_back(3 + static_cast<int64_t>(rng() % 34));
    for (int k = 0; k < 4; ++k) response.push_back(3 + static_cast<int64_t>(rng() % 34));
    rows.push_back({{"prompt_ids", prompt}, {"response_ids", response}});
  }
  write_jsonl_atomic(dir + "/sft.jsonl", rows);
  auto result = testkit::run_spinlm("sft --model " + testkit::shell_quote(model) + " --data " +
                                    testkit::shell_quote(dir + "/sft.jsonl") + " --eval-data " +
                                    testkit::shell_quote(dir + "/sft.jsonl") + " --output " +
                                    testkit::shell_quote(dir + "/out") +
                                    " --learning-rate 3e-2 --epochs 6 --batch-size 4 --micro-batch-size 2 "
                                    "--warmup-ratio 0 --lora-r 8 --lora-alpha 16 --lora-target-modules all-linear "
                                    "--lora-dropout 0 --device cpu --dtype fp32");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(fs::exists(dir + "/out/adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/out/model.safetensors"));
  std::vector<double> eval_losses;
  for (auto& row : read_jsonl(dir + "/out/metrics.jsonl")) {
    if (row.value.contains("eval_loss")) eval_losses.push_back(row.value["eval_loss"].get<double>());
  }
  ASSERT_EQ(eval_losses.size(), 6u);
  EXPECT_LT(eval_losses.back(), 0.7 * eval_losses.front());
  EXPECT_EQ(read_json_file(dir + "/out/adapter_config.json")["r"], 8);
}

// Generation's cached paths (prefill through the KV cache, one-token decoding of every slot)
// add the adapters as the full forward does.
TEST(LoraAdapters, CachedDecodingMatchesTheFullForward) {
  const ModelConfig config = config_of("qwen2");
  Transformer model(config);
  testkit::randomize_parameters(model, 5, 0.25);
  model.set_lora(random_adapters(config, lora_options(4, 8, "k_proj,o_proj,up_proj,down_proj"), 6));
  const auto rows = sample_rows(config.vocab_size, {9}, 3);
  at::NoGradGuard no_grad;
  auto [ids, mask] = pad_rows(rows);
  const at::Tensor full = model.forward_hidden(ids, mask);  // [1, 9, C]
  KVCache cache(config, 1, 16, at::kCPU, at::kFloat);
  const at::Tensor prefill = model.forward_cached(ids.narrow(1, 0, 8), {8}, {0}, cache);
  EXPECT_LT(max_abs_diff(prefill[0], full[0].narrow(0, 0, 8)), 1e-5);
  const at::Tensor step = model.forward_decode_slots(ids.narrow(1, 8, 1), at::tensor({int64_t(8)}, at::kLong), cache);
  EXPECT_LT(max_abs_diff(step[0][0], full[0][8]), 1e-5);
  // And the adapters matter on this path.
  model.set_lora(nullptr);
  KVCache plain(config, 1, 16, at::kCPU, at::kFloat);
  EXPECT_GT(max_abs_diff(model.forward_cached(ids.narrow(1, 0, 8), {8}, {0}, plain)[0], prefill[0]), 1e-3);
}
