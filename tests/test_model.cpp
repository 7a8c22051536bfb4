// model/: the Llama-family transformer against an independent Python twin
// (tests/reference/llama_reference.py, written from transformers' semantics), finite
// differences, and self-consistency of padding, the KV cache and chunked log-probs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/hf_model.h"
#include "model/kv_cache.h"
#include "model/target_logprobs.h"
#include "model/transformer.h"
#include "testkit.h"

using namespace spinlm;
using json = nlohmann::json;

namespace {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

// A tiny config of the given architecture; extra keys override.
ModelConfig tiny_config(const std::string& model_type, const json& extra = json::object()) {
  json config = {{"model_type", model_type}, {"vocab_size", 37},        {"hidden_size", 32},
                 {"intermediate_size", 48},   {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                 {"num_key_value_heads", 2},  {"rms_norm_eps", 1e-5},   {"rope_theta", 10000.0},
                 {"bos_token_id", 1},         {"eos_token_id", 2}};
  if (model_type == "qwen3") config["head_dim"] = 8;
  for (auto& [key, value] : extra.items()) config[key] = value;
  return ModelConfig::from_json(config, "test config.json");
}

// Random weights large enough that attention and the MLP matter (std 0.02 would make every
// prediction nearly uniform); norms around 1, biases non-zero so they are tested too.
Transformer random_model(const ModelConfig& config, uint64_t seed, at::ScalarType dtype = at::kFloat) {
  Transformer model(config, at::kCPU, dtype);
  testkit::randomize_parameters(model, seed, 0.25);
  return model;
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

// Left- or right-padded batch: ids [B, T] (padding id 0), mask [B, T].
std::pair<at::Tensor, at::Tensor> pad_rows(const std::vector<std::vector<int64_t>>& rows, bool left) {
  int64_t T = 0;
  for (const auto& row : rows) T = std::max<int64_t>(T, row.size());
  at::Tensor ids = at::zeros({int64_t(rows.size()), T}, at::kLong);
  at::Tensor mask = at::zeros({int64_t(rows.size()), T}, at::kLong);
  for (size_t b = 0; b < rows.size(); ++b) {
    int64_t offset = left ? T - int64_t(rows[b].size()) : 0;
    for (size_t t = 0; t < rows[b].size(); ++t) {
      ids[b][offset + t] = rows[b][t];
      mask[b][offset + t] = 1;
    }
  }
  return {ids, mask};
}

// The log-probs of row b's tokens 1.. from a padded [B, T] result.
at::Tensor row_logprobs(const at::Tensor& logprobs, const at::Tensor& mask, int64_t b) {
  at::Tensor real = mask[b].to(at::kBool);
  at::Tensor values = logprobs[b].masked_select(real);
  return values.narrow(0, 1, values.size(0) - 1);
}

struct ReferenceResult {
  std::vector<at::Tensor> logprobs;       // per row, [len - 1]
  std::map<std::string, at::Tensor> grads;  // parameter name -> gradient of the total
};

ReferenceResult run_reference(const std::string& model_dir, const std::vector<std::vector<int64_t>>& rows,
                              bool grad, const std::string& dtype = "float32") {
  std::string input = model_dir + "/rows.json", output = model_dir + "/reference.safetensors";
  write_file_atomic(input, json({{"rows", rows}}).dump());
  auto result = testkit::run_python_reference(
      "llama_reference.py", "--model " + testkit::shell_quote(model_dir) + " --input " + testkit::shell_quote(input) +
                                " --output " + testkit::shell_quote(output) + (grad ? " --grad" : "") + " --dtype " + dtype);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  SafetensorsFile file(output);
  ReferenceResult reference;
  at::ScalarType type = dtype == "float64" ? at::kDouble : at::kFloat;
  for (size_t i = 0; i < rows.size(); ++i) reference.logprobs.push_back(file.tensor("logprobs." + std::to_string(i), type));
  for (const auto& [name, entry] : file.entries()) {
    if (name.rfind("grad.", 0) == 0) reference.grads[name.substr(5)] = file.tensor(name, type);
  }
  return reference;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.numel() == 0) return 0.0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Sum of the batch's log-probs and the gradient of every parameter.
std::map<std::string, at::Tensor> spinlm_grads(Transformer& model, const at::Tensor& ids, const at::Tensor& mask) {
  model.set_requires_grad(true);
  at::Tensor total = model.token_logprobs(ids, mask, /*chunk_positions=*/7).sum();
  auto params = model.parameters();
  auto grads = torch::autograd::grad({total}, params);
  std::map<std::string, at::Tensor> result;
  for (size_t i = 0; i < params.size(); ++i) result[model.named_parameters()[i].first] = grads[i];
  model.set_requires_grad(false);
  return result;
}

void expect_reference_match(const ModelConfig& config, const std::string& label) {
  std::string dir = testkit::make_temp_dir("model-" + label);
  save_model(random_model(config, 11), dir);
  Transformer model = load_model(dir);
  auto rows = sample_rows(config.vocab_size, {9, 5, 12}, 3);
  ReferenceResult reference = run_reference(dir, rows, /*grad=*/true);

  // Log-probs of a left-padded batch, row by row, within 1e-4 of the reference.
  auto [ids, mask] = pad_rows(rows, /*left=*/true);
  at::Tensor logprobs;
  {
    at::NoGradGuard no_grad;
    logprobs = model.token_logprobs(ids, mask);
  }
  for (size_t b = 0; b < rows.size(); ++b) {
    at::Tensor ours = row_logprobs(logprobs, mask, b);
    ASSERT_EQ(ours.size(0), reference.logprobs[b].size(0));
    EXPECT_LT(max_abs_diff(ours, reference.logprobs[b]), 1e-4) << label << " row " << b;
  }

  // Gradients of the summed log-prob w.r.t. every parameter (right-padded this time).
  auto [right_ids, right_mask] = pad_rows(rows, /*left=*/false);
  auto grads = spinlm_grads(model, right_ids, right_mask);
  ASSERT_EQ(grads.size(), reference.grads.size()) << label;
  for (const auto& [name, ours] : grads) {
    ASSERT_TRUE(reference.grads.count(name)) << name;
    const at::Tensor& theirs = reference.grads.at(name);
    double scale = std::max(1.0, theirs.abs().max().item<double>());
    EXPECT_LT(max_abs_diff(ours, theirs), 2e-4 * scale) << label << " grad " << name;
  }
}

}  // namespace

TEST(ModelReference, LlamaGroupedQueryAttention) { expect_reference_match(tiny_config("llama"), "llama"); }

TEST(ModelReference, LlamaTiedEmbeddingsLlama3RopeAndBiases) {
  json scaling = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                  {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}};
  ModelConfig config = tiny_config("llama", {{"tie_word_embeddings", true}, {"rope_scaling", scaling},
                                             {"attention_bias", true}, {"rope_theta", 500000.0}});
  EXPECT_EQ(config.rope_scaling.kind, "llama3");
  expect_reference_match(config, "llama3");
}

TEST(ModelReference, MistralSlidingWindow) {
  expect_reference_match(tiny_config("mistral", {{"sliding_window", 4}}), "mistral");
}

TEST(ModelReference, Qwen2Biases) {
  expect_reference_match(tiny_config("qwen2", {{"tie_word_embeddings", true}}), "qwen2");
}

TEST(ModelReference, Qwen3QkNorm) {
  expect_reference_match(tiny_config("qwen3", {{"num_key_value_heads", 1}}), "qwen3");
}

// Double precision on both sides: every gradient agrees to ~1e-10, so a small
// systematic error (a wrong eps, a missing term) cannot hide inside fp32 tolerance.
TEST(ModelReference, GradientsMatchInDoublePrecision) {
  ModelConfig config = tiny_config("qwen3", {{"num_key_value_heads", 2}, {"attention_bias", true}});
  std::string dir = testkit::make_temp_dir("model-f64");
  Transformer model = random_model(config, 5, at::kDouble);
  save_model(model, dir);
  auto rows = sample_rows(config.vocab_size, {8, 6}, 9);
  ReferenceResult reference = run_reference(dir, rows, /*grad=*/true, "float64");
  auto [ids, mask] = pad_rows(rows, /*left=*/true);
  auto grads = spinlm_grads(model, ids, mask);
  ASSERT_EQ(grads.size(), reference.grads.size());
  for (const auto& [name, ours] : grads) {
    EXPECT_LT(max_abs_diff(ours, reference.grads.at(name)), 1e-9) << name;
  }
}

TEST(Model, PaddedBatchEqualsSingleRows) {
  ModelConfig config = tiny_config("llama");
  Transformer model = random_model(config, 2);
  auto rows = sample_rows(config.vocab_size, {7, 3, 10, 1}, 4);
  at::NoGradGuard no_grad;
  for (bool left : {true, false}) {
    auto [ids, mask] = pad_rows(rows, left);
    at::Tensor batch = model.token_logprobs(ids, mask);
    for (size_t b = 0; b < rows.size(); ++b) {
      auto [one_ids, one_mask] = pad_rows({rows[b]}, left);
      at::Tensor single = model.token_logprobs(one_ids, one_mask);
      EXPECT_LT(max_abs_diff(row_logprobs(batch, mask, b), row_logprobs(single, one_mask, 0)), 1e-5)
          << (left ? "left" : "right") << " row " << b;
    }
  }
}

// Central differences in double precision on a very small model: d(sum log p)/d(theta)
// for a sample of entries of every parameter.
TEST(Model, GradientsMatchFiniteDifferences) {
  json extra = {{"vocab_size", 11}, {"hidden_size", 8}, {"intermediate_size", 12}, {"num_hidden_layers", 1},
                {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"head_dim", 4}, {"attention_bias", true}};
  Transformer model = random_model(tiny_config("qwen3", extra), 8, at::kDouble);
  auto rows = sample_rows(11, {6, 4}, 1);
  auto [ids, mask] = pad_rows(rows, /*left=*/true);
  auto grads = spinlm_grads(model, ids, mask);
  auto loss = [&] {
    at::NoGradGuard no_grad;
    return model.token_logprobs(ids, mask).sum().item<double>();
  };
  at::Generator generator = at::detail::createCPUGenerator(3);
  const double h = 1e-6;
  for (const auto& [name, parameter] : model.named_parameters()) {
    at::Tensor flat = parameter.view({-1});
    for (int k = 0; k < 4; ++k) {
      int64_t index = at::randint(flat.size(0), {1}, generator, at::kLong).item<int64_t>();
      double original = flat[index].item<double>();
      flat[index].fill_(original + h);
      double plus = loss();
      flat[index].fill_(original - h);
      double minus = loss();
      flat[index].fill_(original);
      double numeric = (plus - minus) / (2 * h);
      double analytic = grads.at(name).view({-1})[index].item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << name << "[" << index << "]";
    }
  }
}

// Prefill three slots with prompts of different lengths (one right-padded batch), then
// decode step by step with different numbers of tokens per row and a slot reused after
// reset: every position's log-probs equal those of the full forward.
TEST(Model, KVCacheDecodingEqualsFullForward) {
  ModelConfig config = tiny_config("qwen2", {{"num_key_value_heads", 1}});
  Transformer model = random_model(config, 6);
  auto rows = sample_rows(config.vocab_size, {9, 6, 11}, 12);
  std::vector<int64_t> prompt = {3, 1, 5};
  at::NoGradGuard no_grad;

  // Full-forward log-probs of each row's whole vocabulary at each position: [T, V].
  auto full = [&](const std::vector<int64_t>& row) {
    auto [ids, mask] = pad_rows({row}, false);
    return at::log_softmax(model.logits(model.forward_hidden(ids, mask)[0]), -1);
  };
  KVCache cache(config, /*num_slots=*/4, /*max_tokens=*/16, at::kCPU, at::kFloat);
  // Rows go to slots 2, 0, 3 (not consecutive: exercises the gathering path).
  std::vector<int64_t> slots = {2, 0, 3};
  std::vector<std::vector<at::Tensor>> cached(3);  // per row, per position: [V]
  auto run = [&](const std::vector<int64_t>& row_ids, const std::vector<std::vector<int64_t>>& tokens) {
    int64_t T = 0;
    for (const auto& t : tokens) T = std::max<int64_t>(T, t.size());
    at::Tensor ids = at::full({int64_t(tokens.size()), T}, 0, at::kLong);
    std::vector<int64_t> counts, batch_slots;
    for (size_t b = 0; b < tokens.size(); ++b) {
      for (size_t t = 0; t < tokens[b].size(); ++t) ids[b][t] = tokens[b][t];
      counts.push_back(tokens[b].size());
      batch_slots.push_back(slots[row_ids[b]]);
    }
    at::Tensor logprobs = at::log_softmax(model.logits(model.forward_cached(ids, counts, batch_slots, cache)), -1);
    for (size_t b = 0; b < tokens.size(); ++b) {
      for (size_t t = 0; t < tokens[b].size(); ++t) cached[row_ids[b]].push_back(logprobs[b][t]);
    }
  };
  std::vector<int64_t> next(3);
  std::vector<std::vector<int64_t>> prefill;
  for (int r = 0; r < 3; ++r) {
    prefill.emplace_back(rows[r].begin(), rows[r].begin() + prompt[r]);
    next[r] = prompt[r];
  }
  run({0, 1, 2}, prefill);
  EXPECT_EQ(cache.length(2), 3);
  EXPECT_EQ(cache.length(0), 1);
  // Steps: rows advance 1 or 2 tokens at a time; finished rows drop out of the batch.
  for (int step = 0; step < 12; ++step) {
    std::vector<int64_t> row_ids;
    std::vector<std::vector<int64_t>> tokens;
    for (int r = 0; r < 3; ++r) {
      int64_t take = std::min<int64_t>((step + r) % 3 == 0 ? 2 : 1, rows[r].size() - next[r]);
      if (take <= 0) continue;
      row_ids.push_back(r);
      tokens.emplace_back(rows[r].begin() + next[r], rows[r].begin() + next[r] + take);
      next[r] += take;
    }
    if (!row_ids.empty()) run(row_ids, tokens);
  }
  for (int r = 0; r < 3; ++r) {
    at::Tensor expected = full(rows[r]);
    ASSERT_EQ(int64_t(cached[r].size()), expected.size(0));
    EXPECT_LT(max_abs_diff(at::stack(cached[r]), expected), 1e-5) << "row " << r;
    EXPECT_EQ(cache.length(slots[r]), int64_t(rows[r].size()));
  }

  // A reset slot is reused for a new sequence without seeing the old one.
  cache.reset(0);
  cached[1].clear();
  run({1}, {rows[2]});
  EXPECT_LT(max_abs_diff(at::stack(cached[1]), full(rows[2])), 1e-5);
}

TEST(Model, ChunkedTargetLogprobsAndGradient) {
  at::Generator generator = at::detail::createCPUGenerator(4);
  at::Tensor hidden = at::randn({3, 5, 16}, generator, at::kDouble).requires_grad_(true);
  at::Tensor weight = at::randn({23, 16}, generator, at::kDouble).requires_grad_(true);
  at::Tensor targets = at::randint(23, {3, 5}, generator, at::kLong);
  targets[0][1] = -1;
  targets[2][4] = -100;
  at::Tensor valid = targets.ge(0);

  // Plain log_softmax + gather, masked.
  at::Tensor plain = at::log_softmax(at::matmul(hidden, weight.t()), -1)
                         .gather(2, targets.clamp_min(0).unsqueeze(2)).squeeze(2)
                         .masked_fill(valid.logical_not(), 0);
  at::Tensor weights_per_position = at::randn({3, 5}, generator, at::kDouble);
  auto plain_grads = torch::autograd::grad({(plain * weights_per_position).sum()}, {hidden, weight});

  for (int64_t chunk : {1, 4, 15, 1000}) {
    at::Tensor chunked = chunked_target_logprobs(hidden.view({15, 16}), weight, targets.view({15}), chunk).view({3, 5});
    EXPECT_LT(max_abs_diff(chunked, plain), 1e-12) << chunk;
    EXPECT_EQ(chunked[0][1].item<double>(), 0.0);
    auto grads = torch::autograd::grad({(chunked * weights_per_position).sum()}, {hidden, weight});
    EXPECT_LT(max_abs_diff(grads[0], plain_grads[0]), 1e-6) << chunk;
    EXPECT_LT(max_abs_diff(grads[1], plain_grads[1]), 1e-6) << chunk;
    // An ignored position passes no gradient to its hidden state.
    EXPECT_EQ(grads[0][0][1].abs().max().item<double>(), 0.0);
  }
}

TEST(Model, ConfigErrorsNameTheField) {
  json good = tiny_config("llama").to_json();
  auto message_for = [&](const std::function<void(json&)>& edit) {
    json config = good;
    edit(config);
    return error_of([&] { ModelConfig::from_json(config, "m/config.json"); });
  };
  EXPECT_NE(message_for([](json& c) { c["model_type"] = "gpt2"; }).find("m/config.json: unknown model_type \"gpt2\""),
            std::string::npos);
  EXPECT_NE(message_for([](json& c) { c.erase("hidden_size"); }).find("missing field \"hidden_size\""), std::string::npos);
  EXPECT_NE(message_for([](json& c) { c["num_hidden_layers"] = "two"; }).find("field \"num_hidden_layers\" must be a positive integer"),
            std::string::npos);
  EXPECT_NE(message_for([](json& c) { c["num_key_value_heads"] = 3; }).find("num_key_value_heads"), std::string::npos);
  EXPECT_NE(message_for([](json& c) { c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}}; }).find("rope_scaling"),
            std::string::npos);
  // Defaults as transformers: kv heads = heads, head_dim = hidden / heads, eos as a list.
  json minimal = {{"model_type", "mistral"}, {"vocab_size", 10}, {"hidden_size", 16}, {"intermediate_size", 8},
                  {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"eos_token_id", {2, 3}},
                  {"rope_parameters", {{"rope_theta", 1e6}, {"rope_type", "default"}}}};
  ModelConfig config = ModelConfig::from_json(minimal, "x");
  EXPECT_EQ(config.num_key_value_heads, 2);
  EXPECT_EQ(config.head_dim, 8);
  EXPECT_EQ(config.rope_theta, 1e6);
  EXPECT_EQ(config.eos_token_ids, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "y").to_json(), config.to_json());
}

TEST(Model, SaveLoadRoundTripAndWeightErrors) {
  ModelConfig config = tiny_config("qwen2");
  Transformer model = random_model(config, 1);
  std::string source = testkit::make_temp_dir("model-tokenizer-source");
  write_file_atomic(source + "/tokenizer.json", "{\"tok\": 1}");
  std::string dir = testkit::make_temp_dir("model-roundtrip");
  save_model(model, dir, source, /*max_shard_bytes=*/20000);  // forces shards
  EXPECT_TRUE(file_exists(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(read_file(dir + "/tokenizer.json"), "{\"tok\": 1}");
  json generation = json::parse(read_file(dir + "/generation_config.json"));
  EXPECT_EQ(generation["bos_token_id"], 1);
  EXPECT_EQ(generation["eos_token_id"], 2);
  Transformer loaded = load_model(dir);
  EXPECT_EQ(loaded.config().num_parameters(), config.num_parameters());
  int64_t counted = 0;
  for (const auto& [name, tensor] : model.named_parameters()) {
    EXPECT_TRUE(at::equal(tensor, loaded.parameter(name))) << name;
    counted += tensor.numel();
  }
  EXPECT_EQ(counted, config.num_parameters());

  // A config that disagrees with the weights: shape mismatch, then a missing tensor.
  std::string bad = testkit::make_temp_dir("model-bad");
  save_model(model, bad);
  json edited = json::parse(read_file(bad + "/config.json"));
  edited["intermediate_size"] = 40;
  write_file_atomic(bad + "/config.json", edited.dump());
  std::string message = error_of([&] { load_model(bad); });
  EXPECT_NE(message.find("model.safetensors: tensor \"model.layers.0.mlp.gate_proj.weight\" has shape [48, 32]"),
            std::string::npos) << message;
  edited["intermediate_size"] = 48;
  edited["num_hidden_layers"] = 3;
  write_file_atomic(bad + "/config.json", edited.dump());
  message = error_of([&] { load_model(bad); });
  EXPECT_NE(message.find("missing tensor \"model.layers.2.self_attn.q_proj.weight\""), std::string::npos) << message;
  edited["num_hidden_layers"] = 1;
  write_file_atomic(bad + "/config.json", edited.dump());
  message = error_of([&] { load_model(bad); });
  EXPECT_NE(message.find("unexpected tensor \"model.layers.1."), std::string::npos) << message;
}

namespace {

std::string init_model(const std::string& dir, const std::string& extra = "") {
  auto result = testkit::run_spinlm("init-model --arch qwen3 --hidden-size 32 --intermediate-size 48 --layers 2 "
                                    "--heads 4 --kv-heads 2 --head-dim 8 --tie-embeddings --vocab byte --seed 7 --out " +
                                    testkit::shell_quote(dir) + " " + extra);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return result.output;
}

// One init-model folder shared by the CLI tests (each spinlm start costs seconds here).
const std::string& cli_model() {
  static const std::string dir = [] {
    std::string path = testkit::make_temp_dir("model-cli-shared") + "/model";
    init_model(path);
    return path;
  }();
  return dir;
}

}  // namespace

TEST(ModelCli, InitModelInspectAndScore) {
  std::string root = testkit::make_temp_dir("model-cli");
  const std::string& dir = cli_model();
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                           "generation_config.json"}) {
    EXPECT_TRUE(file_exists(dir + "/" + file)) << file;
  }
  // The seed fixes the weights; the model loads and has the requested shape.
  Transformer model = load_model(dir);
  Transformer same_seed(model.config());
  same_seed.init_random(7, 0.02);
  for (const auto& [name, tensor] : model.named_parameters()) EXPECT_TRUE(at::equal(tensor, same_seed.parameter(name))) << name;
  EXPECT_EQ(model.config().num_key_value_heads, 2);
  EXPECT_TRUE(model.config().tie_word_embeddings);
  double std = model.parameter("model.layers.0.mlp.up_proj.weight").std().item<double>();
  EXPECT_NEAR(std, 0.02, 0.002);

  auto inspect = testkit::run_spinlm("inspect " + testkit::shell_quote(dir));
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  for (const std::string& expected : std::vector<std::string>{"architecture: Qwen3ForCausalLM (model_type qwen3)", "layers: 2", "kv_heads: 2",
                               "head_dim: 8", "dtype: F32", "vocab_size: 262",
                               "parameters: " + std::to_string(model.config().num_parameters()) + " ",
                               "chat_template: yes"}) {
    EXPECT_NE(inspect.output.find(expected), std::string::npos) << expected << "\n" << inspect.output;
  }

  // score: ids rows against the reference; a text row goes through the tokenizer.
  std::vector<std::vector<int64_t>> rows = {{258, 72, 105, 33, 257}, {10, 20}, {5}};
  std::string input = root + "/input.jsonl", output = root + "/scores.jsonl";
  std::string lines;
  for (const auto& row : rows) lines += json({{"ids", row}}).dump() + "\n";
  lines += "{\"text\": \"Hi!\"}\n";
  write_file_atomic(input, lines);
  auto score = testkit::run_spinlm("score --model " + testkit::shell_quote(dir) + " --input " + testkit::shell_quote(input) +
                                   " --output " + testkit::shell_quote(output) + " --batch-size 2");
  ASSERT_EQ(score.exit_code, 0) << score.output;
  auto scored = nlohmann::json::array();
  std::istringstream scored_lines(read_file(output));
  for (std::string line; std::getline(scored_lines, line);) scored.push_back(json::parse(line));
  ASSERT_EQ(scored.size(), 4u);
  ReferenceResult reference = run_reference(dir, rows, /*grad=*/false);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<double> ours = scored[i]["logprobs"];
    ASSERT_EQ(ours.size(), rows[i].size() - 1);
    double sum = 0;
    for (size_t t = 0; t < ours.size(); ++t) {
      EXPECT_NEAR(ours[t], reference.logprobs[i][t].item<double>(), 1e-4);
      sum += ours[t];
    }
    EXPECT_NEAR(scored[i]["sum"].get<double>(), sum, 1e-9);
  }
  // "Hi!" with add_special_tokens: <|bos|> H i ! -> 3 log-probs, the same as the ids row.
  EXPECT_EQ(scored[3]["logprobs"].size(), 3u);
  EXPECT_NEAR(scored[3]["sum"].get<double>(), scored[0]["logprobs"][0].get<double>() +
                                                  scored[0]["logprobs"][1].get<double>() +
                                                  scored[0]["logprobs"][2].get<double>(), 1e-5);

  // Errors name the file and line; no output file appears.
  write_file_atomic(input, "{\"ids\": [1, 2]}\n{\"ids\": [3, 999]}\n");
  std::string bad_output = root + "/bad.jsonl";
  auto bad = testkit::run_spinlm("score --model " + testkit::shell_quote(dir) + " --input " + testkit::shell_quote(input) +
                                 " --output " + testkit::shell_quote(bad_output));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("error: " + input + ":2: token id 999 is outside the vocabulary (size 262)"),
            std::string::npos) << bad.output;
  EXPECT_FALSE(file_exists(bad_output));
  write_file_atomic(input, "{\"ids\": []}\n");
  bad = testkit::run_spinlm("score --model " + testkit::shell_quote(dir) + " --input " + testkit::shell_quote(input));
  EXPECT_NE(bad.output.find(input + ":1: the row has no tokens"), std::string::npos) << bad.output;
}

TEST(ModelCli, ConfigErrorsNameFieldAndModelType) {
  std::string dir = testkit::make_temp_dir("model-cli-errors") + "/model";
  std::filesystem::copy(cli_model(), dir);
  json config = json::parse(read_file(dir + "/config.json"));
  json edited = config;
  edited["model_type"] = "gpt_neox";
  write_file_atomic(dir + "/config.json", edited.dump());
  auto result = testkit::run_spinlm("inspect " + testkit::shell_quote(dir));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("error: " + dir + "/config.json: unknown model_type \"gpt_neox\""), std::string::npos)
      << result.output;
  edited = config;
  edited["num_attention_heads"] = "four";
  write_file_atomic(dir + "/config.json", edited.dump());
  result = testkit::run_spinlm("score --model " + testkit::shell_quote(dir) + " --input /dev/null");
  EXPECT_NE(result.output.find("config.json: field \"num_attention_heads\" must be a positive integer"),
            std::string::npos) << result.output;
  auto usage = testkit::run_spinlm("init-model --arch gpt2 --hidden-size 8 --intermediate-size 8 --layers 1 --heads 2 "
                                   "--vocab byte --seed 1 --out " + testkit::shell_quote(dir + "2"));
  EXPECT_NE(usage.exit_code, 0);
  EXPECT_NE(usage.output.find("--arch"), std::string::npos) << usage.output;
}
