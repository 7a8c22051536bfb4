// Generation: conversation parsing, the batched engine against argmax decoding by full
// forward passes without a cache, per-row determinism across batch shapes, stop strings,
// EOS lists and length limits, and the `spinlm generate` command (output rows, prompt
// formats, resume after SIGKILL, bad input, --skip-bad, --limit and --shard).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>
#include <set>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/conversation.h"
#include "generate/engine.h"
#include "generate/generate_file.h"
#include "io/jsonl.h"
#include "model/stop_tokens.h"
#include "model/hf_model.h"
#include "testkit.h"
#include "text/text_codec.h"

namespace spinlm {
namespace {

using nlohmann::json;
using testkit::shell_quote;

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

// ---------------------------------------------------------------- conversations

TEST(Conversation, ParsesTheThreeFormats) {
  json messages = json::parse(R"({"prompt":"ignored","messages":[{"role":"system","content":"S"},
      {"role":"user","content":"Q1"},{"role":"user","content":"Q2"},{"role":"assistant","content":"A"}]})");
  Conversation c = parse_conversation(messages, "f:1");
  EXPECT_EQ(c.format, ConversationFormat::kMessages);
  ASSERT_EQ(c.messages.size(), 4u);
  Exchange e = first_exchange(c, "f:1");
  EXPECT_EQ(e.prompt.content, "Q1");
  ASSERT_TRUE(e.answer.has_value());
  EXPECT_EQ(e.answer->content, "A");

  Conversation p = parse_conversation(json::parse(R"({"prompt":"P","response":"R"})"), "f:2");
  EXPECT_EQ(p.format, ConversationFormat::kPromptResponse);
  EXPECT_EQ(first_exchange(p, "f:2").prompt.content, "P");
  EXPECT_EQ(first_exchange(p, "f:2").answer->content, "R");
  Conversation only = parse_conversation(json::parse(R"({"prompt":"P"})"), "f:3");
  EXPECT_FALSE(first_exchange(only, "f:3").answer.has_value());

  Conversation pair = parse_conversation(json::parse(R"({"real":[{"role":"user","content":"U"},
      {"role":"assistant","content":"Y"}],"generated":[{"role":"user","content":"U"},{"role":"assistant","content":"G"}]})"),
                                         "f:4");
  EXPECT_EQ(pair.format, ConversationFormat::kSpinPair);
  EXPECT_EQ(first_exchange(pair, "f:4").answer->content, "Y");
  ASSERT_EQ(pair.generated.size(), 2u);
  EXPECT_EQ(pair.generated[1].content, "G");
  EXPECT_EQ(messages_to_json(pair.generated).dump(),
            R"([{"content":"U","role":"user"},{"content":"G","role":"assistant"}])");
}

TEST(Conversation, ErrorsNameTheLineAndField) {
  auto parse = [](const std::string& text) {
    return error_of([&] { first_exchange(parse_conversation(json::parse(text), "in.jsonl:7"), "in.jsonl:7"); });
  };
  EXPECT_EQ(parse(R"({"messages":[{"role":"user","content":5}]})"),
            "in.jsonl:7: field \"messages\"[0].content must be a string, got number");
  EXPECT_EQ(parse(R"({"messages":[{"role":"assistant","content":"x"}]})"),
            "in.jsonl:7: no user turn (a message with \"role\": \"user\")");
  EXPECT_EQ(parse(R"({"messages":{"role":"user"}})"),
            "in.jsonl:7: field \"messages\" must be an array of messages, got object");
  EXPECT_EQ(parse(R"({"real":[{"role":"user"}]})"), "in.jsonl:7: field \"real\"[0] has no \"content\"");
  EXPECT_EQ(parse(R"({"prompt":["x"]})"), "in.jsonl:7: field \"prompt\" must be a string, got array");
  EXPECT_NE(parse(R"({"text":"x"})").find("in.jsonl:7: not a conversation"), std::string::npos);
}

// ---------------------------------------------------------------- engine on a tiny model

Transformer tiny_model(int64_t max_positions = 256) {
  ModelConfig config;
  config.model_type = "llama";
  config.vocab_size = 64;
  config.hidden_size = 32;
  config.intermediate_size = 64;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 8;
  config.max_position_embeddings = max_positions;
  Transformer model(config);
  model.init_random(17, 0.3);  // larger than HF's 0.02: clear argmax gaps, varied samples
  return model;
}

std::vector<GenerationRequest> tiny_requests() {
  std::vector<GenerationRequest> requests;
  for (int64_t i = 0; i < 11; ++i) {
    GenerationRequest request{i * 7 + 3, {}};  // rows need not be 0..N-1
    for (int64_t t = 0; t < 1 + (i * 5) % 17; ++t) request.prompt_ids.push_back((i * 13 + t * 7) % 64);
    requests.push_back(request);
  }
  return requests;
}

std::map<int64_t, GenerationResult> run_engine(const Transformer& model, EngineOptions options,
                                               const std::vector<GenerationRequest>& requests) {
  GenerationEngine engine(model, options);
  std::map<int64_t, GenerationResult> results;
  engine.generate(requests, [&](GenerationResult&& result) {
    EXPECT_EQ(results.count(result.row), 0u);
    EXPECT_EQ(requests[result.request].row, result.row);
    results[result.row] = std::move(result);
  });
  EXPECT_EQ(results.size(), requests.size());
  return results;
}

// Argmax decoding by a full forward pass over the whole sequence at every step.
std::vector<int64_t> reference_greedy(const Transformer& model, std::vector<int64_t> ids, int64_t steps) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> out;
  for (int64_t s = 0; s < steps; ++s) {
    at::Tensor input = at::tensor(ids, at::kLong).unsqueeze(0);        // [1, T]
    at::Tensor hidden = model.forward_hidden(input, at::ones_like(input));  // [1, T, C]
    int64_t next = model.logits(hidden[0][-1]).argmax().item<int64_t>();
    out.push_back(next);
    ids.push_back(next);
  }
  return out;
}

TEST(Engine, GreedyEqualsArgmaxOfFullForwardPasses) {
  Transformer model = tiny_model();
  std::vector<GenerationRequest> requests = tiny_requests();
  for (auto [batch, tokens] : {std::pair<int64_t, int64_t>{3, 4}, {8, 2048}}) {
    EngineOptions options;
    options.sampling.greedy = true;
    options.max_new_tokens = 12;
    options.batch_size = batch;
    options.max_batch_tokens = tokens;  // 4: prompts are prefilled in several chunks
    auto results = run_engine(model, options, requests);
    for (const GenerationRequest& request : requests) {
      const GenerationResult& result = results.at(request.row);
      EXPECT_EQ(result.ids, reference_greedy(model, request.prompt_ids, 12)) << "row " << request.row;
      EXPECT_EQ(result.finish_reason, FinishReason::kLength);
    }
  }
}

// Sampling with every filter on, 24 new tokens, two EOS ids so rows end at different steps.
EngineOptions filtered_sampling(uint64_t seed, int64_t batch_size) {
  EngineOptions options;
  options.sampling.temperature = 0.9;
  options.sampling.top_p = 0.95;
  options.sampling.min_p = 0.01;
  options.seed = seed;
  options.max_new_tokens = 24;
  options.eos_ids = {5, 40};
  options.batch_size = batch_size;
  return options;
}

TEST(Engine, SamplesDoNotDependOnBatchShapeOrFinishOrder) {
  Transformer model = tiny_model();
  std::vector<GenerationRequest> requests = tiny_requests();
  EngineOptions options = filtered_sampling(2024, 1);
  auto expected = run_engine(model, options, requests);
  std::set<size_t> lengths;
  for (auto& [row, result] : expected) lengths.insert(result.ids.size());
  EXPECT_GE(lengths.size(), 3u) << "rows should finish at different steps for this test to mean much";
  for (auto [batch, tokens] : {std::pair<int64_t, int64_t>{3, 2048}, {8, 5}, {8, 64}, {16, 1}, {4, 9}}) {
    options.batch_size = batch;
    options.max_batch_tokens = tokens;
    auto results = run_engine(model, options, requests);
    for (auto& [row, result] : expected) {
      EXPECT_EQ(results.at(row).ids, result.ids) << "row " << row << ", batch " << batch << ", tokens " << tokens;
      EXPECT_EQ(results.at(row).finish_reason, result.finish_reason);
    }
  }
  // Another seed gives other samples.
  options.seed = 2025;
  auto other = run_engine(model, options, requests);
  int differing = 0;
  for (auto& [row, result] : expected) differing += other.at(row).ids != result.ids;
  EXPECT_GT(differing, 5);
}

// The device decoding loop (every slot steps on the device, tokens read back once per
// window; what runs on a GPU) draws what the host loop draws: same uniforms, same rows, same
// finish reasons, for any number of steps per window and any batch size.
TEST(Engine, DeviceLoopDrawsWhatTheHostLoopDraws) {
  Transformer model = tiny_model();
  std::vector<GenerationRequest> requests = tiny_requests();
  EngineOptions options = filtered_sampling(99, 4);
  options.device_loop = EngineOptions::DeviceLoop::kOff;
  auto expected = run_engine(model, options, requests);
  options.device_loop = EngineOptions::DeviceLoop::kOn;
  // Key buckets of 8 positions: windows read 8, 16, ... keys as rows grow (the default 128
  // covers these short rows in one bucket); 1000: always the whole cache.
  for (auto [batch, steps, bucket] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 8}, {3, 4, 8}, {8, 16, 8},
                                      {16, 5, 128}, {4, 64, 1000}, {5, 3, 1}}) {
    options.batch_size = batch;
    options.steps_per_sync = steps;
    options.decode_key_bucket = bucket;
    GenerationEngine engine(model, options);
    std::map<int64_t, GenerationResult> results;
    engine.generate(requests, [&](GenerationResult&& result) { results[result.row] = std::move(result); });
    ASSERT_EQ(results.size(), requests.size());
    for (auto& [row, result] : expected) {
      EXPECT_EQ(results.at(row).ids, result.ids)
          << "row " << row << ", batch " << batch << ", steps " << steps << ", key bucket " << bucket;
      EXPECT_EQ(results.at(row).finish_reason, result.finish_reason) << "row " << row;
    }
    EXPECT_GT(engine.stats().decode_windows, 0);
    EXPECT_LE(engine.stats().decode_windows, engine.stats().decode_forwards);
    EXPECT_EQ(engine.stats().cuda_graphs, 0);  // CPU: never a graph
  }
  options.steps_per_sync = 0;
  EXPECT_NE(error_of([&] { GenerationEngine bad(model, options); }).find("--steps-per-sync must be >= 1"),
            std::string::npos);
  // Greedy through the device loop is argmax of full forward passes.
  options.sampling = SamplingOptions();
  options.sampling.greedy = true;
  options.eos_ids.clear();
  options.max_new_tokens = 10;
  options.batch_size = 5;
  options.steps_per_sync = 3;
  auto greedy = run_engine(model, options, requests);
  for (const GenerationRequest& request : requests) {
    EXPECT_EQ(greedy.at(request.row).ids, reference_greedy(model, request.prompt_ids, 10)) << "row " << request.row;
  }
}

std::string letters(const std::vector<int64_t>& ids) {
  std::string text;
  for (int64_t id : ids) text += static_cast<char>('a' + id % 26);
  return text;
}

TEST(Engine, StopStringsEosListsAndLengthLimits) {
  Transformer model = tiny_model(64);
  GenerationRequest request{0, {1, 2, 3, 4, 5, 6}};
  // Both decoding loops: the host one and the device one (windows of 8 steps).
  for (auto loop : {EngineOptions::DeviceLoop::kOff, EngineOptions::DeviceLoop::kOn}) {
  SCOPED_TRACE(loop == EngineOptions::DeviceLoop::kOn ? "device loop" : "host loop");
  EngineOptions options;
  options.device_loop = loop;
  options.steps_per_sync = 8;
  options.sampling.greedy = true;
  options.max_new_tokens = 30;
  options.decode = letters;
  const std::vector<int64_t> full = run_engine(model, options, {request}).at(0).ids;
  ASSERT_EQ(full.size(), 30u);
  const std::string full_text = letters(full);

  {  // Stop string: cut before its first occurrence; tokens up to the one completing it.
    std::string stop = full_text.substr(9, 2);
    size_t at = full_text.find(stop);
    EngineOptions o = options;
    o.stop_strings = StopStrings({"zzzzzz", stop});
    GenerationResult result = run_engine(model, o, {request}).at(0);
    EXPECT_EQ(result.finish_reason, FinishReason::kStop);
    EXPECT_EQ(result.text, full_text.substr(0, at));
    EXPECT_EQ(result.ids, std::vector<int64_t>(full.begin(), full.begin() + at + stop.size()));
  }
  {  // EOS list: the first token from the list ends the row and is kept.
    EngineOptions o = options;
    o.eos_ids = {1000, full[7]};
    size_t first = std::find(full.begin(), full.end(), full[7]) - full.begin();
    GenerationResult result = run_engine(model, o, {request}).at(0);
    EXPECT_EQ(result.finish_reason, FinishReason::kEos);
    EXPECT_EQ(result.ids, std::vector<int64_t>(full.begin(), full.begin() + first + 1));
  }
  {  // Max new tokens.
    EngineOptions o = options;
    o.max_new_tokens = 4;
    GenerationResult result = run_engine(model, o, {request}).at(0);
    EXPECT_EQ(result.finish_reason, FinishReason::kLength);
    EXPECT_EQ(result.ids, std::vector<int64_t>(full.begin(), full.begin() + 4));
    EXPECT_EQ(result.text, full_text.substr(0, 4));
  }
  {  // The context (64 positions) bounds prompt + answer.
    GenerationRequest long_prompt{1, std::vector<int64_t>(60, 7)};
    GenerationResult result = run_engine(model, options, {long_prompt}).at(1);
    EXPECT_EQ(result.finish_reason, FinishReason::kLength);
    EXPECT_EQ(result.ids.size(), 4u);
    GenerationRequest too_long{9, std::vector<int64_t>(64, 7)};
    GenerationEngine engine(model, options);
    EXPECT_NE(error_of([&] { engine.generate({too_long}, [](GenerationResult&&) {}); }).find("row 9"),
              std::string::npos);
  }
  }
}

// ---------------------------------------------------------------- spinlm generate

class GenerateCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testkit::make_temp_dir("generate");
    model_dir_ = dir_ + "/model";
    auto made = testkit::run_spinlm("init-model --arch llama --hidden-size 32 --intermediate-size 64 --layers 2 "
                                    "--heads 4 --kv-heads 2 --vocab byte --seed 3 --max-position-embeddings 256 --out " +
                                    shell_quote(model_dir_));
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }

  static std::string write_input(const std::string& name, const std::vector<std::string>& lines) {
    std::string path = dir_ + "/" + name;
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    write_file_atomic(path, text);
    return path;
  }

  static std::vector<std::string> mixed_rows(int count) {
    std::vector<std::string> lines;
    for (int i = 0; i < count; ++i) {
      std::string q = "Question " + std::to_string(i) + ": what is " + std::to_string(i * 7) + "?";
      std::string a = "Answer " + std::to_string(i);
      json row;
      if (i % 3 == 0) {
        row = {{"messages", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}}}};
      } else if (i % 3 == 1) {
        row = {{"prompt", q}, {"response", a}};
      } else {
        row = {{"real", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}}},
               {"generated", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", "old"}}}}};
      }
      lines.push_back(row.dump());
    }
    return lines;
  }

  // The command through the CLI (a process; about 2 s of libtorch start-up each).
  static testkit::CommandResult generate_cli(const std::string& input, const std::string& output,
                                             const std::string& extra) {
    return testkit::run_spinlm("generate --no-progress --threads 1 --model " + shell_quote(model_dir_) +
                               " --input " + shell_quote(input) + " --output " + shell_quote(output) + " " + extra);
  }

  // The same job in-process, as `spinlm run` calls it.
  static GenerateSummary generate(const std::string& input, const std::string& output,
                                  const std::function<void(GenerateOptions&)>& tweak) {
    GenerateOptions options;
    options.model_dir = model_dir_;
    options.input_path = input;
    options.output_path = output;
    options.show_progress = false;
    tweak(options);
    return generate_file(options);
  }

  static std::vector<json> rows_of(const std::string& path) {
    std::vector<json> rows;
    for (JsonlRow& row : read_jsonl(path)) rows.push_back(std::move(row.value));
    return rows;
  }

  static std::string dir_;
  static std::string model_dir_;
};

std::string GenerateCommand::dir_;
std::string GenerateCommand::model_dir_;

TEST_F(GenerateCommand, WritesOneRowPerInputRowInOrder) {
  std::vector<std::string> lines = mixed_rows(7);
  lines.insert(lines.begin() + 2, "");  // blank lines are not rows
  std::string input = write_input("mixed.jsonl", lines);
  std::string output = dir_ + "/mixed-out.jsonl";
  auto result = generate_cli(input, output, "--max-new-tokens 40 --batch-size 3 --seed 1 --temperature 1.0");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_FALSE(std::filesystem::exists(output + ".partial"));
  TextCodec codec = TextCodec::load(model_dir_);
  std::vector<json> rows = rows_of(output);
  ASSERT_EQ(rows.size(), 7u);
  std::set<std::string> reasons;
  for (int i = 0; i < 7; ++i) {
    const json& row = rows[i];
    EXPECT_EQ(row["index"], i);
    std::string q = "Question " + std::to_string(i) + ": what is " + std::to_string(i * 7) + "?";
    EXPECT_EQ(row["real"], json::parse(R"([{"role":"user","content":")" + q +
                                       R"("},{"role":"assistant","content":"Answer )" + std::to_string(i) + "\"}]"));
    EXPECT_EQ(row["generated"][0], row["real"][0]);
    EXPECT_EQ(row["generated"][1]["role"], "assistant");
    auto prompt_ids = row["prompt_ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(prompt_ids, codec.encode_chat({{"user", q}}, true));
    auto ids = row["generated_ids"].get<std::vector<int64_t>>();
    std::string reason = row["finish_reason"];
    reasons.insert(reason);
    if (reason == "eos") {
      EXPECT_EQ(ids.back(), 257);  // the byte vocabulary's <|eos|>, kept in generated_ids
    } else {
      EXPECT_EQ(reason, "length");
      EXPECT_EQ(ids.size(), 40u);
    }
    // The content is the decoded ids (the JSON writer replaces invalid UTF-8, as json_line does).
    EXPECT_EQ(row["generated"][1]["content"].dump(),
              json(codec.tokenizer().decode(ids, true)).dump(-1, ' ', false, json::error_handler_t::replace));
  }
  // --system and spin-legacy change only the prompt.
  output = dir_ + "/system-out.jsonl";
  generate(input, output, [](GenerateOptions& o) {
    o.max_new_tokens = 4;
    o.system = "Be brief.";
    o.limit = 2;
  });
  rows = rows_of(output);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["prompt_ids"].get<std::vector<int64_t>>(),
            codec.encode_chat({{"system", "Be brief."}, {"user", "Question 1: what is 7?"}}, true));
  output = dir_ + "/legacy-out.jsonl";
  generate(input, output, [](GenerateOptions& o) {
    o.max_new_tokens = 4;
    o.prompt_format = "spin-legacy";
    o.limit = 2;
  });
  rows = rows_of(output);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["prompt_ids"].get<std::vector<int64_t>>(),
            codec.tokenizer().encode("### Instruction: Question 1: what is 7?\n\n### Response: ", true));
}

TEST_F(GenerateCommand, StopStringsCutTheText) {
  std::string input = write_input("stop.jsonl", mixed_rows(6));
  std::string plain = dir_ + "/stop-plain.jsonl";
  auto greedy = [](GenerateOptions& o) {
    o.sampling.greedy = true;
    o.max_new_tokens = 48;
  };
  generate(input, plain, greedy);
  std::vector<json> before = rows_of(plain);
  // An ASCII stop string taken from the first answer.
  std::string stop;
  for (const json& row : before) {
    std::string text = row["generated"][1]["content"];
    for (size_t i = 0; i + 1 < text.size() && stop.empty(); ++i) {
      if (std::isalnum(static_cast<unsigned char>(text[i])) && std::isalnum(static_cast<unsigned char>(text[i + 1]))) {
        stop = text.substr(i, 2);
      }
    }
    if (!stop.empty()) break;
  }
  ASSERT_FALSE(stop.empty()) << "no two ASCII letters in the answers";
  std::string cut = dir_ + "/stop-cut.jsonl";
  generate(input, cut, [&](GenerateOptions& o) {
    greedy(o);
    o.stop = {stop, "@@@"};
  });
  std::vector<json> after = rows_of(cut);
  ASSERT_EQ(after.size(), before.size());
  int stopped = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    std::string text = before[i]["generated"][1]["content"];
    auto ids = before[i]["generated_ids"].get<std::vector<int64_t>>();
    auto cut_ids = after[i]["generated_ids"].get<std::vector<int64_t>>();
    size_t at = text.find(stop);
    if (at == std::string::npos) {
      EXPECT_EQ(after[i], before[i]);
      continue;
    }
    ++stopped;
    EXPECT_EQ(after[i]["finish_reason"], "stop");
    EXPECT_EQ(after[i]["generated"][1]["content"], text.substr(0, at));
    ASSERT_LE(cut_ids.size(), ids.size());
    EXPECT_TRUE(std::equal(cut_ids.begin(), cut_ids.end(), ids.begin()));
  }
  EXPECT_GE(stopped, 1);
}

TEST_F(GenerateCommand, EosIdsComeFromGenerationConfig) {
  // A copy of the model whose generation_config.json lists a second EOS id: a token the
  // greedy answer of row 0 contains.
  std::string input = write_input("eos.jsonl", mixed_rows(3));
  std::string plain = dir_ + "/eos-plain.jsonl";
  auto greedy = [](GenerateOptions& o) {
    o.sampling.greedy = true;
    o.max_new_tokens = 30;
  };
  generate(input, plain, greedy);
  auto ids = rows_of(plain)[0]["generated_ids"].get<std::vector<int64_t>>();
  ASSERT_GE(ids.size(), 10u);
  int64_t extra_eos = ids[6];
  size_t first = std::find(ids.begin(), ids.end(), extra_eos) - ids.begin();

  std::string copy = dir_ + "/model-eos";
  std::filesystem::copy(model_dir_, copy);
  json generation = json::parse(read_file(copy + "/generation_config.json"));
  generation["eos_token_id"] = {257, extra_eos};
  write_file_atomic(copy + "/generation_config.json", generation.dump());
  Transformer model = load_model(copy);
  TextCodec codec = TextCodec::load(copy);
  EXPECT_EQ(load_stop_tokens(copy, model.config(), &codec).ids, (std::vector<int64_t>{257, extra_eos}));
  std::filesystem::remove(copy + "/generation_config.json");
  EXPECT_EQ(load_stop_tokens(copy, model.config(), &codec).ids, std::vector<int64_t>{257});  // config.json's
  write_file_atomic(copy + "/generation_config.json", generation.dump());

  std::string output = dir_ + "/eos-out.jsonl";
  generate(input, output, [&](GenerateOptions& o) {
    greedy(o);
    o.model_dir = copy;
  });
  json row = rows_of(output)[0];
  EXPECT_EQ(row["finish_reason"], "eos");
  EXPECT_EQ(row["generated_ids"].get<std::vector<int64_t>>(),
            std::vector<int64_t>(ids.begin(), ids.begin() + first + 1));
}

TEST_F(GenerateCommand, ResumeAfterSigkillEqualsAnUninterruptedRun) {
  std::string input = write_input("resume.jsonl", mixed_rows(60));
  const std::string options = "--max-new-tokens 48 --batch-size 2 --temperature 0.9 --top-p 0.95 --seed 5";
  auto same_options = [](GenerateOptions& o) {
    o.max_new_tokens = 48;
    o.batch_size = 2;
    o.sampling.temperature = 0.9;
    o.sampling.top_p = 0.95;
    o.seed = 5;
  };
  std::string reference = dir_ + "/resume-reference.jsonl";
  generate(input, reference, same_options);

  // Start the same job, kill it with SIGKILL once some rows are in the partial file.
  std::string output = dir_ + "/resume-out.jsonl";
  std::string partial = output + ".partial";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string command = "exec " + shell_quote(testkit::spinlm_binary()) + " generate --no-progress --threads 1 --model " +
                          shell_quote(model_dir_) + " --input " + shell_quote(input) + " --output " +
                          shell_quote(output) + " " + options + " >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto lines_in = [](const std::string& path) {
    if (!std::filesystem::exists(path)) return 0;
    std::string text = read_file(path);
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (lines_in(partial) < 8 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the job ended before it could be killed";
  ASSERT_FALSE(std::filesystem::exists(output));
  int kept = lines_in(partial);
  ASSERT_GE(kept, 8);
  ASSERT_LT(kept, 60);
  // A line torn by the kill is dropped on resume.
  { std::ofstream(partial, std::ios::app) << R"({"finish_reason":"len)"; }

  GenerateSummary resumed = generate(input, output, same_options);
  EXPECT_EQ(resumed.rows_resumed, kept);
  EXPECT_EQ(resumed.rows_generated, 60 - kept);
  EXPECT_FALSE(std::filesystem::exists(partial));
  EXPECT_EQ(read_file(output), read_file(reference));  // byte for byte

  // A partial file from other options is refused, not mixed in.
  std::filesystem::copy_file(reference, output + ".partial");
  std::string mixed = error_of([&] {
    generate(input, output, [&](GenerateOptions& o) {
      same_options(o);
      o.prompt_format = "spin-legacy";
    });
  });
  EXPECT_NE(mixed.find("does not match"), std::string::npos) << mixed;
}

TEST_F(GenerateCommand, BadRowsNameTheLineOrAreSkipped) {
  std::vector<std::string> good = mixed_rows(3);
  std::string long_prompt(300, 'x');  // byte tokens: longer than the 256-position context
  std::vector<std::vector<std::string>> cases = {
      {good[0], good[1], "{not json", good[2]},
      {good[0], R"({"messages":[{"role":"assistant","content":"hi"}]})", good[1]},
      {good[0], good[1], good[2], json({{"prompt", long_prompt}}).dump()}};
  std::vector<std::pair<std::string, std::string>> expected = {
      {":3:", "not valid JSON"}, {":2:", "no user turn"}, {":4:", "context"}};
  for (size_t c = 0; c < cases.size(); ++c) {
    std::string input = write_input("bad" + std::to_string(c) + ".jsonl", cases[c]);
    std::string output = dir_ + "/bad-out" + std::to_string(c) + ".jsonl";
    std::string message = error_of([&] { generate(input, output, [](GenerateOptions& o) { o.max_new_tokens = 4; }); });
    EXPECT_EQ(message.rfind(input + expected[c].first, 0), 0u) << message;
    EXPECT_NE(message.find(expected[c].second), std::string::npos) << message;
    EXPECT_FALSE(std::filesystem::exists(output));
    EXPECT_FALSE(std::filesystem::exists(output + ".partial"));
  }
  {  // Through the CLI: `error: FILE:LINE: ...` and a non-zero exit.
    std::string input = dir_ + "/bad0.jsonl";
    auto result = generate_cli(input, dir_ + "/bad-cli.jsonl", "--max-new-tokens 4");
    EXPECT_NE(result.exit_code, 0);
    EXPECT_NE(result.output.find("error: " + input + ":3: not valid JSON"), std::string::npos) << result.output;
  }
  // --skip-bad: all three kinds in one file, skipped and counted.
  std::string input = write_input("bad-all.jsonl", {good[0], "{not json", R"({"messages":[]})", good[1],
                                                    json({{"prompt", long_prompt}}).dump(), good[2]});
  std::string output = dir_ + "/bad-all-out.jsonl";
  auto result = generate_cli(input, output, "--max-new-tokens 4 --skip-bad");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("3 bad rows skipped"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("warning: " + input + ":2:"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("warning: " + input + ":5:"), std::string::npos) << result.output;
  std::vector<json> rows = rows_of(output);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["index"], 0);
  EXPECT_EQ(rows[1]["index"], 3);
  EXPECT_EQ(rows[2]["index"], 5);
}

TEST_F(GenerateCommand, LimitAndShardsSelectRowsAndMergeToTheFullRun) {
  std::string input = write_input("shard.jsonl", mixed_rows(9));
  auto options = [](int64_t batch, int64_t shard) {
    return [batch, shard](GenerateOptions& o) {
      o.max_new_tokens = 16;
      o.seed = 11;
      o.sampling.top_k = 50;
      o.limit = 7;
      o.batch_size = batch;
      if (shard >= 0) {
        o.shard_index = shard;
        o.shard_count = 3;
      }
    };
  };
  std::string full = dir_ + "/shard-full.jsonl";
  generate(input, full, options(5, -1));
  std::vector<json> all = rows_of(full);
  ASSERT_EQ(all.size(), 7u);
  std::map<int64_t, json> merged;
  for (int shard = 0; shard < 3; ++shard) {
    std::string output = dir_ + "/shard-" + std::to_string(shard) + ".jsonl";
    GenerateSummary summary = generate(input, output, options(2, shard));
    EXPECT_EQ(summary.rows_selected, shard == 0 ? 3 : 2);
    for (json& row : rows_of(output)) {
      EXPECT_EQ(row["index"].get<int64_t>() % 3, shard);
      merged[row["index"].get<int64_t>()] = row;
    }
  }
  ASSERT_EQ(merged.size(), 7u);
  for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(merged[i], all[i]) << "row " << i;
  EXPECT_EQ(parse_shard("2/3"), (std::pair<int64_t, int64_t>{2, 3}));
  EXPECT_NE(error_of([] { parse_shard("3/3"); }).find("--shard"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shard("1-3"); }).find("--shard"), std::string::npos);
}

}  // namespace
}  // namespace spinlm
