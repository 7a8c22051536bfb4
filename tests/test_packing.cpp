// data/packing.h + Transformer::forward_packed: packed SPIN pairs (prompt once, then both
// answers), padding-free SFT and token-budget micro-batches. Every packed score, loss,
// metric and gradient is checked against the padded path (collate_pairs / collate_sequences
// + forward_hidden, one sequence per row) and against a Python torch reference that builds
// its own packed row and block mask (tests/reference/spin_reference.py --packed).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/collate.h"
#include "data/packing.h"
#include "data/pairs.h"
#include "eval/loglikelihood.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/hf_model.h"
#include "model/transformer.h"
#include "pipeline/recipe.h"
#include "train/losses.h"
#include "train/reference_logprobs.h"
#include "train/sft_trainer.h"
#include "train/spin_trainer.h"
#include "testkit.h"

using namespace spinlm;
using json = nlohmann::json;

namespace {

constexpr int64_t kVocab = testkit::kTinyVocab;

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

// llama (GQA), qwen2 (q/k/v biases) and mistral with a sliding window shorter than the pairs.
ModelConfig config_of(const std::string& kind) {
  json c = {{"model_type", kind == "qwen2" ? "qwen2" : kind == "mistral" ? "mistral" : "llama"},
            {"vocab_size", kVocab},     {"hidden_size", 32},         {"intermediate_size", 48},
            {"num_hidden_layers", 2},   {"num_attention_heads", 4},  {"num_key_value_heads", 2},
            {"rms_norm_eps", 1e-5},     {"rope_theta", 10000.0},     {"bos_token_id", 1},
            {"eos_token_id", 2},        {"tie_word_embeddings", kind == "qwen2"},
            {"max_position_embeddings", 256}};
  if (kind == "mistral") c["sliding_window"] = 5;
  return ModelConfig::from_json(c, "test config.json");
}

Transformer random_model(const std::string& kind, uint64_t seed) {
  Transformer model(config_of(kind));
  testkit::randomize_parameters(model, seed, 0.2);
  return model;
}

std::vector<int64_t> random_ids(std::mt19937_64& rng, int64_t length) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < length; ++i) ids.push_back(3 + static_cast<int64_t>(rng() % (kVocab - 3)));
  return ids;
}

// Pairs with uneven prompts and answers (one answer a single token).
std::vector<TokenPair> random_pairs(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TokenPair> pairs;
  for (int i = 0; i < count; ++i) {
    TokenPair p;
    p.prompt = random_ids(rng, 1 + static_cast<int64_t>(rng() % 7));
    p.real = random_ids(rng, 1 + static_cast<int64_t>(rng() % 9));
    p.generated = random_ids(rng, i == 1 ? 1 : 1 + static_cast<int64_t>(rng() % 6));
    pairs.push_back(p);
  }
  return pairs;
}

std::vector<const TokenPair*> pointers(const std::vector<TokenPair>& pairs) {
  std::vector<const TokenPair*> out;
  for (const auto& p : pairs) out.push_back(&p);
  return out;
}

// The padded path: 2m right-padded rows (each prompt twice), one forward.
PairScores unpacked_scores(const Transformer& model, const std::vector<const TokenPair*>& pairs) {
  const int64_t m = static_cast<int64_t>(pairs.size());
  SequenceBatch batch = collate_pairs(pairs);
  at::Tensor hidden = model.forward_hidden(batch.input_ids, batch.attention_mask);
  at::Tensor logps = model.target_logprobs(hidden, batch.targets);
  at::Tensor sums = (logps * batch.target_mask).sum(1), counts = batch.target_mask.sum(1);
  PairScores s;
  s.real = sums.slice(0, 0, m);
  s.generated = sums.slice(0, m, 2 * m);
  s.real_tokens = counts.slice(0, 0, m);
  s.generated_tokens = counts.slice(0, m, 2 * m);
  s.tokens = batch.real_tokens;
  return s;
}

// The SPIN loss of spin_trainer.h on the padded path's scores, the loss functions of losses.h.
at::Tensor unpacked_spin_loss(const Transformer& model, const std::vector<const TokenPair*>& pairs,
                              const std::vector<double>& rr, const std::vector<double>& rg, SpinLoss loss,
                              double beta, double sft_weight, double normaliser, MetricMap* metrics) {
  PairScores s = unpacked_scores(model, pairs);
  at::Tensor pr = loss_logprobs(loss, s.real, s.real_tokens), pg = loss_logprobs(loss, s.generated, s.generated_tokens);
  at::Tensor rr_t = loss_logprobs(loss, at::tensor(rr, at::kDouble).to(at::kFloat), s.real_tokens);
  at::Tensor rg_t = loss_logprobs(loss, at::tensor(rg, at::kDouble).to(at::kFloat), s.generated_tokens);
  PairLossOutput out = spin_pair_loss(loss, beta, pr, pg, rr_t, rg_t);
  at::Tensor per_pair = out.losses;
  if (sft_weight != 0) per_pair = per_pair + sft_term(sft_weight, s.real, s.real_tokens);
  auto total = [&](const at::Tensor& t) { return t.detach().to(at::kDouble).sum().item<double>() / normaliser; };
  (*metrics)["loss"] = total(per_pair);
  (*metrics)["rewards/real"] = total(out.rewards_real);
  (*metrics)["rewards/generated"] = total(out.rewards_generated);
  (*metrics)["rewards/accuracies"] = total(reward_accuracy(out.rewards_real, out.rewards_generated));
  (*metrics)["rewards/margins"] = total(out.rewards_real - out.rewards_generated);
  (*metrics)["logps/real"] = total(pr);
  (*metrics)["logps/generated"] = total(pg);
  return per_pair.sum() / normaliser;
}

std::vector<at::Tensor> gradients_of(Transformer& model, const std::function<at::Tensor()>& loss) {
  model.set_requires_grad(true);
  for (auto& p : model.parameters()) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
  loss().backward();
  std::vector<at::Tensor> grads;
  for (auto& p : model.parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  model.set_requires_grad(false);
  return grads;
}

void expect_close(const at::Tensor& got, const at::Tensor& want, double tolerance, const std::string& what) {
  const double scale = 1 + want.abs().max().item<double>();
  EXPECT_LT((got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>(), tolerance * scale) << what;
}

}  // namespace

TEST(Packing, PairLayoutSharesThePromptAndRestartsPositions) {
  TokenPair a{{5, 6, 7}, {8, 9}, {10}};
  TokenPair b{{11}, {12}, {13, 14}};
  PackedBatch batch = pack_pairs({&a, &b});
  auto vec = [](const at::Tensor& t) {
    return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
  };
  EXPECT_EQ(vec(batch.tokens.input_ids), (std::vector<int64_t>{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}));
  EXPECT_EQ(vec(batch.tokens.positions), (std::vector<int64_t>{0, 1, 2, 3, 4, 3, 0, 1, 1, 2}));
  EXPECT_EQ(vec(batch.tokens.branches), (std::vector<int64_t>{0, 0, 0, 1, 1, 2, 0, 1, 2, 2}));
  EXPECT_EQ(batch.tokens.block_starts, (std::vector<int64_t>{0, 6, 10}));
  // Each answer's first token is predicted by its prompt's last token (index 2, then 6).
  EXPECT_EQ(vec(batch.tokens.score_sources), (std::vector<int64_t>{2, 3, 2, 6, 6, 8}));
  EXPECT_EQ(vec(batch.tokens.score_targets), (std::vector<int64_t>{8, 9, 10, 12, 13, 14}));
  EXPECT_EQ(vec(batch.score_outputs), (std::vector<int64_t>{0, 0, 2, 1, 3, 3}));  // real_0, gen_0, real_1, gen_1
  EXPECT_EQ(batch.scored_per_output, (std::vector<int64_t>{2, 1, 1, 2}));
  EXPECT_EQ(batch.stream_tokens, 10);
  // The block mask: an answer sees its prompt and itself, never the other answer.
  at::Tensor allowed = packed_block_allowed(batch.tokens.positions.narrow(0, 0, 6),
                                            batch.tokens.branches.narrow(0, 0, 6), 0);
  EXPECT_TRUE(allowed[5][2].item<bool>());
  EXPECT_FALSE(allowed[5][3].item<bool>());
  EXPECT_FALSE(allowed[5][4].item<bool>());
  EXPECT_TRUE(allowed[4][3].item<bool>());
  EXPECT_FALSE(allowed[2][3].item<bool>());
  // Two equal answers pack once; both outputs take the one sum (an exact tie).
  TokenPair same{{5, 6}, {7, 8}, {7, 8}};
  PackedBatch tie = pack_pairs({&same});
  EXPECT_EQ(tie.stream_tokens, 4);
  EXPECT_EQ(tie.output_source, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(tie.scored_per_output, (std::vector<int64_t>{2, 2}));
  at::Tensor sums = sum_by_output(tie, at::tensor(std::vector<double>{-1.5, -2.0}, at::kDouble));
  EXPECT_EQ(sums[0].item<double>(), -3.5);
  EXPECT_EQ(sums[1].item<double>(), -3.5);
  // Malformed blocks are named.
  EXPECT_NE(error_of([] { pack_sequences({LabeledSequence{{4, 5}, {1, 1}}}); }).find("first token"), std::string::npos);
  PackBlock orphan;
  orphan.branches.push_back({{4}, {1}, 0});
  EXPECT_NE(error_of([&] { pack_blocks({orphan}, 1); }).find("block 0 has a branch but no prefix"), std::string::npos);
}

TEST(Packing, PairScoresEqualThePaddedPath) {
  for (const std::string kind : {"llama", "qwen2", "mistral"}) {
    SCOPED_TRACE(kind);
    Transformer model = random_model(kind, 3);
    std::vector<TokenPair> pairs = random_pairs(5, 17);
    at::NoGradGuard no_grad;
    PairScores want = unpacked_scores(model, pointers(pairs));
    PairScores got = score_pairs(model, pointers(pairs));
    expect_close(got.real, want.real, 1e-5, "real");
    expect_close(got.generated, want.generated, 1e-5, "generated");
    EXPECT_TRUE(at::equal(got.real_tokens, want.real_tokens));
    EXPECT_TRUE(at::equal(got.generated_tokens, want.generated_tokens));
    int64_t useful = 0, prompts = 0;
    for (const auto& p : pairs) {
      useful += packed_pair_tokens(p);
      prompts += static_cast<int64_t>(p.prompt.size());
    }
    EXPECT_EQ(got.tokens, useful);
    EXPECT_EQ(want.tokens, useful + prompts);  // the padded path computes every prompt twice
  }
}

TEST(Packing, SpinLossMetricsAndGradientsEqualThePaddedPath) {
  struct Case { std::string kind; std::string loss; double beta; double sft; bool checkpointing; };
  for (const Case& c : std::vector<Case>{{"llama", "logistic", 0.1, 0.0, false}, {"qwen2", "ipo", 0.2, 0.0, false},
                                         {"mistral", "logistic", 1.0, 0.5, false}, {"llama", "hinge", 0.5, 0.0, true}}) {
    SCOPED_TRACE(c.kind + " " + c.loss);
    Transformer model = random_model(c.kind, 5);
    Transformer opponent = random_model(c.kind, 9);
    std::vector<TokenPair> pairs = random_pairs(4, 23);
    ReferenceLogprobs ref = compute_reference_logprobs(opponent, pairs, MicroBatching{4});
    const SpinLoss loss = parse_spin_loss(c.loss);
    MetricMap want_metrics;
    std::vector<at::Tensor> want = gradients_of(model, [&] {
      return unpacked_spin_loss(model, pointers(pairs), ref.real, ref.generated, loss, c.beta, c.sft, 6.0, &want_metrics);
    });
    model.set_gradient_checkpointing(c.checkpointing);
    SpinMicroOutput out;
    std::vector<at::Tensor> got = gradients_of(model, [&] {
      out = spin_micro_loss(model, pointers(pairs), ref.real, ref.generated, loss, c.beta, c.sft, 6.0);
      return out.loss;
    });
    for (const auto& [key, value] : want_metrics) {
      EXPECT_NEAR(out.metrics[key], value, 1e-5 * (1 + std::abs(value))) << key;
    }
    const auto& named = model.named_parameters();
    for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], want[i], 1e-5, named[i].first);
  }
}

TEST(Packing, SpinLossAndGradientsMatchPackedPythonReference) {
  for (const std::string kind : {"llama", "mistral"}) {
    SCOPED_TRACE(kind);
    const std::string dir = testkit::make_temp_dir("packing-ref");
    save_model(random_model(kind, 7), dir + "/model");
    Transformer model = load_model(dir + "/model");
    std::vector<TokenPair> pairs = random_pairs(3, 29);
    ReferenceLogprobs ref = compute_reference_logprobs(random_model(kind, 8), pairs, MicroBatching{2});
    json batch = {{"loss", "logistic"}, {"beta", 0.5}, {"sft_weight", 0.25}, {"pairs", json::array()}};
    for (size_t i = 0; i < pairs.size(); ++i) {
      batch["pairs"].push_back({{"prompt", pairs[i].prompt}, {"real", pairs[i].real},
                                {"generated", pairs[i].generated}, {"ref_real", ref.real[i]},
                                {"ref_generated", ref.generated[i]}});
    }
    write_file_atomic(dir + "/batch.json", batch.dump());
    auto py = testkit::run_python_reference(
        "spin_reference.py", "--packed --model " + testkit::shell_quote(dir + "/model") + " --input " +
                                 testkit::shell_quote(dir + "/batch.json") + " --output " +
                                 testkit::shell_quote(dir + "/out.safetensors"));
    ASSERT_EQ(py.exit_code, 0) << py.output;
    SafetensorsFile expected(dir + "/out.safetensors");
    SpinMicroOutput out;
    std::vector<at::Tensor> got = gradients_of(model, [&] {
      out = spin_micro_loss(model, pointers(pairs), ref.real, ref.generated, SpinLoss::kLogistic, 0.5, 0.25,
                            static_cast<double>(pairs.size()));
      return out.loss;
    });
    const double want_loss = expected.tensor("loss", at::kDouble).item<double>();
    EXPECT_NEAR(out.metrics["loss"], want_loss, 1e-5 * (1 + std::abs(want_loss)));
    const double want_real = expected.tensor("logps.real", at::kDouble).mean().item<double>();
    EXPECT_NEAR(out.metrics["logps/real"], want_real, 1e-5 * (1 + std::abs(want_real)));
    const double want_gen = expected.tensor("logps.generated", at::kDouble).mean().item<double>();
    EXPECT_NEAR(out.metrics["logps/generated"], want_gen, 1e-5 * (1 + std::abs(want_gen)));
    const auto& named = model.named_parameters();
    for (size_t i = 0; i < got.size(); ++i) {
      expect_close(got[i], expected.tensor("grad." + named[i].first, at::kDouble), 1e-5, named[i].first);
    }
  }
}

TEST(Packing, TokenBudgetMicroBatchesCoverTheBatchWithinTheBudget) {
  std::mt19937_64 rng(3);
  std::vector<int64_t> tokens, lengths, batch;
  for (int64_t i = 0; i < 40; ++i) {
    tokens.push_back(1 + static_cast<int64_t>(rng() % 60));
    lengths.push_back(tokens.back());
    if (i % 3 != 0) batch.push_back(i);
  }
  for (int64_t budget : {1, 50, 64, 200, 10000}) {
    SCOPED_TRACE(budget);
    auto micros = split_micro_batches(batch, lengths, tokens, MicroBatching{8, budget});
    std::multiset<int64_t> seen;
    for (const auto& micro : micros) {
      ASSERT_FALSE(micro.empty());
      int64_t used = 0;
      for (int64_t i : micro) used += tokens[i];
      if (micro.size() > 1) EXPECT_LE(used, budget);
      seen.insert(micro.begin(), micro.end());
    }
    EXPECT_EQ(seen, std::multiset<int64_t>(batch.begin(), batch.end()));
    if (budget == 10000) EXPECT_EQ(micros.size(), 1u);
  }
  EXPECT_NE(error_of([&] { split_micro_batches(batch, lengths, tokens, MicroBatching{8, 0}); }).find("max tokens"),
            std::string::npos);
}

// Micro-batches by token budget accumulate exactly the gradient of the whole batch at once
// (each micro-batch's loss is divided by the batch's pair count).
TEST(Packing, TokenBudgetAccumulatesTheBatchGradient) {
  Transformer model = random_model("llama", 19);
  Transformer opponent = random_model("llama", 20);
  std::vector<TokenPair> pairs = random_pairs(7, 43);
  ReferenceLogprobs ref = compute_reference_logprobs(opponent, pairs, MicroBatching{3});
  auto micro_loss = [&](const std::vector<int64_t>& micro) {
    std::vector<const TokenPair*> ptrs;
    std::vector<double> rr, rg;
    for (int64_t i : micro) {
      ptrs.push_back(&pairs[i]);
      rr.push_back(ref.real[i]);
      rg.push_back(ref.generated[i]);
    }
    return spin_micro_loss(model, ptrs, rr, rg, SpinLoss::kLogistic, 0.7, 0.3, static_cast<double>(pairs.size()));
  };
  std::vector<int64_t> all, lengths, tokens;
  for (size_t i = 0; i < pairs.size(); ++i) {
    all.push_back(static_cast<int64_t>(i));
    lengths.push_back(pair_length(pairs[i]));
    tokens.push_back(packed_pair_tokens(pairs[i]));
  }
  MetricMap whole_metrics;
  std::vector<at::Tensor> whole = gradients_of(model, [&] {
    SpinMicroOutput out = micro_loss(all);
    whole_metrics = out.metrics;
    return out.loss;
  });
  const auto micros = split_micro_batches(all, lengths, tokens, MicroBatching{8, 24});
  ASSERT_GE(micros.size(), 3u);
  MetricMap summed;
  std::vector<at::Tensor> accumulated = gradients_of(model, [&] {
    at::Tensor total;
    for (const auto& micro : micros) {
      SpinMicroOutput out = micro_loss(micro);
      for (const auto& [key, value] : out.metrics) summed[key] += value;
      total = total.defined() ? total + out.loss : out.loss;
    }
    return total;
  });
  for (const auto& [key, value] : whole_metrics) EXPECT_NEAR(summed[key], value, 1e-5 * (1 + std::abs(value))) << key;
  for (size_t i = 0; i < whole.size(); ++i) {
    expect_close(accumulated[i], whole[i], 1e-5, model.named_parameters()[i].first);
  }
}

// `spinlm train` with a token budget: the same first step as fixed micro-batches of 2 pairs.
TEST(Packing, TokenBudgetTrainingMakesTheSameUpdate) {
  const std::string dir = testkit::make_temp_dir("packing-train");
  save_model(random_model("llama", 11), dir + "/model");
  Transformer initial = load_model(dir + "/model");
  std::vector<json> rows;
  for (const TokenPair& p : random_pairs(6, 31)) {
    rows.push_back({{"prompt_ids", p.prompt}, {"real_ids", p.real}, {"generated_ids", p.generated}});
  }
  write_jsonl_atomic(dir + "/pairs.jsonl", rows);
  std::vector<json> logged;
  std::vector<Transformer> trained;
  for (int64_t budget : {kNoLimit, int64_t(20), int64_t(1000)}) {  // fixed count of 2 pairs; ~1-2 pairs; the whole batch
    SpinTrainOptions o;
    o.loop.model_dir = dir + "/model";
    o.loop.output_dir = dir + "/out-" + std::to_string(budget);
    o.data_files = {dir + "/pairs.jsonl"};
    o.loop.batch_size = 6;
    o.loop.micro_batch_size = 2;
    o.loop.max_tokens_per_micro_batch = budget;
    o.loop.epochs = 1;
    o.loop.logging_steps = 1;
    o.loop.learning_rate = 1e-3;
    o.loop.warmup_ratio = 0.0;
    o.loop.max_grad_norm = 0.0;
    o.sft_weight = 0.5;
    o.truncation = {64, 32};
    train_spin(o);
    logged.push_back(read_jsonl(o.loop.output_dir + "/metrics.jsonl").at(0).value);
    trained.push_back(load_model(o.loop.output_dir));
  }
  for (size_t k = 1; k < trained.size(); ++k) {
    SCOPED_TRACE(k);
    // (Not rewards/accuracies: at the first step the policy is the reference, every reward is
    // 0 up to rounding and the accuracy compares rounding noise.)
    for (const char* key : {"loss", "grad_norm", "logps/real", "logps/generated"}) {
      const double want = logged[0][key].get<double>();
      EXPECT_NEAR(logged[k][key].get<double>(), want, 1e-5 * (1 + std::abs(want))) << key;
    }
    // RMSprop's first step is about lr * 10 * sign(g): a gradient entry near zero turns
    // rounding noise into a visible difference, so each update agrees to 0.1% of its L2 norm
    // here (the gradients themselves agree to 1e-5: the test above).
    for (size_t i = 0; i < trained[0].named_parameters().size(); ++i) {
      const at::Tensor w0 = initial.named_parameters()[i].second;
      const at::Tensor want = trained[0].named_parameters()[i].second - w0;
      const at::Tensor got = trained[k].named_parameters()[i].second - w0;
      EXPECT_LT((got - want).norm().item<double>(), 1e-3 * want.norm().item<double>())
          << trained[0].named_parameters()[i].first;
    }
  }
}

TEST(Packing, SftAndReferenceScoringEqualThePaddedPath) {
  Transformer model = random_model("qwen2", 13);
  std::mt19937_64 rng(37);
  std::vector<LabeledSequence> sequences;
  for (int i = 0; i < 5; ++i) {
    LabeledSequence s;
    s.ids = random_ids(rng, 2 + static_cast<int64_t>(rng() % 9));
    for (size_t t = 0; t < s.ids.size(); ++t) s.scored.push_back(t > 0 && rng() % 3 != 0);
    sequences.push_back(s);
  }
  at::Tensor want_nll;
  std::vector<at::Tensor> want = gradients_of(model, [&] {
    SequenceBatch batch = collate_sequences(sequences);
    at::Tensor logps = model.target_logprobs(model.forward_hidden(batch.input_ids, batch.attention_mask), batch.targets);
    want_nll = -(logps * batch.target_mask).sum();
    return want_nll;
  });
  SftScore score;
  std::vector<at::Tensor> got = gradients_of(model, [&] {
    score = sft_score(model, sequences);
    return score.nll_sum;
  });
  expect_close(score.nll_sum.detach(), want_nll.detach(), 1e-5, "nll");
  for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], want[i], 1e-5, model.named_parameters()[i].first);

  // Reference log-probs by token budget equal the padded path pair by pair.
  std::vector<TokenPair> pairs = random_pairs(7, 41);
  ReferenceLogprobs packed = compute_reference_logprobs(model, pairs, MicroBatching{8, 25});
  at::NoGradGuard no_grad;
  PairScores padded = unpacked_scores(model, pointers(pairs));
  expect_close(at::tensor(packed.real, at::kDouble), padded.real, 1e-5, "reference real");
  expect_close(at::tensor(packed.generated, at::kDouble), padded.generated, 1e-5, "reference generated");
}

// The attention the GPU runs on packed streams (causal views, packed_tokens.h: prefix + first
// branch contiguous, prefix + each further branch gathered, plain causal attention each) gives
// the per-block masks' log-probs and gradients: SPIN pairs, lm-eval blocks (one context, four
// continuations) and SFT conversations, with and without gradient checkpointing. A sliding
// window shorter than a block leaves that stream to the masks.
TEST(Packing, CausalViewsEqualTheBlockMasks) {
  std::mt19937_64 rng(43);
  std::vector<TokenPair> pairs = random_pairs(5, 31);
  pairs[2].generated = pairs[2].real;  // identical answers pack once: one view for the pair
  std::vector<PackBlock> contexts;
  int64_t outputs = 0;
  for (int d = 0; d < 3; ++d) {
    PackBlock block;
    block.prefix.ids = random_ids(rng, 2 + static_cast<int64_t>(rng() % 6));
    for (int c = 0; c < 4; ++c) {
      std::vector<int64_t> ids = random_ids(rng, 1 + static_cast<int64_t>(rng() % 3));
      block.branches.push_back({ids, std::vector<uint8_t>(ids.size(), 1), outputs++});
    }
    contexts.push_back(block);
  }
  std::vector<LabeledSequence> sequences;
  for (int i = 0; i < 4; ++i) {
    LabeledSequence q;
    q.ids = random_ids(rng, 2 + static_cast<int64_t>(rng() % 9));
    for (size_t t = 0; t < q.ids.size(); ++t) q.scored.push_back(t > 0);
    sequences.push_back(q);
  }
  struct Stream {
    std::string name;
    PackedBatch batch;
    size_t views;
  };
  const std::vector<Stream> streams = {{"pairs", pack_pairs(pointers(pairs)), 2 * pairs.size() - 1},
                                       {"lm-eval", pack_blocks(contexts, outputs), 4 * contexts.size()},
                                       {"sft", pack_sequences(sequences), sequences.size()}};
  for (const std::string kind : {"llama", "qwen2"}) {
    Transformer model = random_model(kind, 7);
    for (const Stream& stream : streams) {
      const std::vector<CausalView> views = packed_causal_views(stream.batch.tokens, 0);
      ASSERT_EQ(views.size(), stream.views) << stream.name;
      int64_t kept = 0;
      for (const CausalView& view : views) kept += view.keep;
      EXPECT_EQ(kept, stream.batch.tokens.input_ids.numel()) << stream.name;
      const at::Tensor weights = at::rand({stream.batch.tokens.score_targets.numel()}, at::kFloat);
      for (const bool checkpointing : {false, true}) {
        SCOPED_TRACE(kind + " " + stream.name + (checkpointing ? " checkpointed" : ""));
        model.set_gradient_checkpointing(checkpointing);
        at::Tensor masked, viewed;
        model.set_packed_causal_views(false);
        const std::vector<at::Tensor> want = gradients_of(model, [&] {
          masked = model.packed_logprobs(stream.batch.tokens);
          return (masked * weights).sum();
        });
        model.set_packed_causal_views(true);
        const std::vector<at::Tensor> got = gradients_of(model, [&] {
          viewed = model.packed_logprobs(stream.batch.tokens);
          return (viewed * weights).sum();
        });
        expect_close(viewed.detach(), masked.detach(), 1e-5, "log-probs");
        for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], want[i], 1e-5, model.named_parameters()[i].first);
      }
    }
  }
  // Mistral's window of 5 is shorter than these pairs: no views, the masks apply it.
  Transformer mistral = random_model("mistral", 7);
  const PackedBatch batch = pack_pairs(pointers(pairs));
  EXPECT_TRUE(packed_causal_views(batch.tokens, 5).empty());
  at::NoGradGuard no_grad;
  mistral.set_packed_causal_views(true);
  const at::Tensor viewed = mistral.packed_logprobs(batch.tokens);
  mistral.set_packed_causal_views(false);
  EXPECT_TRUE(at::equal(viewed, mistral.packed_logprobs(batch.tokens)));
}

// lm-eval requests sharing a context are one block (context once, each continuation a
// branch): every score and is_greedy equal the padded forward of that request alone, with
// the harness's left truncation, and with sharing on or off.
TEST(Packing, LoglikelihoodWithSharedContextsEqualsEachRequestAlone) {
  Transformer model = random_model("llama", 23);
  std::mt19937_64 rng(47);
  std::vector<LoglikelihoodRequest> requests;
  const std::vector<int64_t> context = random_ids(rng, 12);
  for (int64_t length : {1, 3, 1, 5}) requests.push_back({context, random_ids(rng, length)});
  requests.push_back(requests[1]);                       // a repeated request
  requests.push_back({random_ids(rng, 30), random_ids(rng, 4)});  // truncated to max_length 20
  requests.push_back({random_ids(rng, 3), random_ids(rng, 2)});
  at::NoGradGuard no_grad;
  auto alone = [&](const LoglikelihoodRequest& r, int64_t max_length) {
    std::vector<int64_t> whole = r.context;
    whole.insert(whole.end(), r.continuation.begin(), r.continuation.end());
    const size_t keep = std::min<size_t>(whole.size(), static_cast<size_t>(max_length + 1));
    std::vector<int64_t> cut(whole.end() - static_cast<std::ptrdiff_t>(keep), whole.end());
    const at::Tensor input = at::tensor(std::vector<int64_t>(cut.begin(), cut.end() - 1), at::kLong).unsqueeze(0);
    const at::Tensor targets = at::tensor(std::vector<int64_t>(cut.begin() + 1, cut.end()), at::kLong);
    const at::Tensor logits = model.logits(model.forward_hidden(input, at::ones_like(input)))[0];
    const int64_t n = static_cast<int64_t>(r.continuation.size()), T = targets.size(0);
    const at::Tensor scored = logits.narrow(0, T - n, n);
    const double total = scored.log_softmax(-1).gather(1, targets.narrow(0, T - n, n).unsqueeze(1)).sum().item<double>();
    return std::make_pair(total, scored.argmax(-1).eq(targets.narrow(0, T - n, n)).all().item<bool>());
  };
  for (bool merge : {true, false}) {
    SCOPED_TRACE(merge);
    LoglikelihoodOptions options;
    options.batch_size = 2;
    options.max_length = 20;
    options.merge_identical_inputs = merge;
    const auto results = score_loglikelihood(model, requests, options);
    ASSERT_EQ(results.size(), requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      const auto [want, greedy] = alone(requests[i], 20);
      EXPECT_NEAR(results[i].logprob, want, 1e-5 * (1 + std::abs(want))) << "request " << i;
      EXPECT_EQ(results[i].is_greedy, greedy) << "request " << i;
    }
  }
}

// The recipe key: read at the top level and per iteration, bad values named with key and
// FILE:LINE, null for no budget.
TEST(Packing, RecipeKeyMaxTokensPerMicroBatch) {
  const std::string minimal = "model_name_or_path: m\ndata:\n  train: t.jsonl\n";  // lines 1-3
  const Recipe r = parse_recipe(minimal + "max_tokens_per_micro_batch: 4096\niterations:\n  - {}\n"
                                          "  - {max_tokens_per_micro_batch: null}\n", "r.yaml");
  ASSERT_EQ(r.iterations.size(), 2u);
  EXPECT_EQ(r.iterations[0].max_tokens_per_micro_batch, 4096);
  EXPECT_EQ(r.iterations[1].max_tokens_per_micro_batch, kNoLimit);
  const json written = json::parse(recipe_to_json(r));
  EXPECT_EQ(written["iterations"][0].at("max_tokens_per_micro_batch"), 4096);
  EXPECT_TRUE(written["iterations"][1].at("max_tokens_per_micro_batch").is_null());
  const std::string bad = error_of([&] { parse_recipe(minimal + "max_tokens_per_micro_batch: -5\n", "r.yaml"); });
  EXPECT_NE(bad.find("r.yaml:4"), std::string::npos) << bad;
  EXPECT_NE(bad.find("max_tokens_per_micro_batch"), std::string::npos) << bad;
}

// `spinlm train --max-tokens-per-micro-batch`: a run with a budget trains; a budget that is
// not positive is a clear error.
TEST(Packing, TrainCommandTakesATokenBudget) {
  const std::string dir = testkit::make_temp_dir("packing-cli");
  save_model(random_model("llama", 3), dir + "/model");
  std::vector<json> rows;
  for (const TokenPair& p : random_pairs(4, 53)) {
    rows.push_back({{"prompt_ids", p.prompt}, {"real_ids", p.real}, {"generated_ids", p.generated}});
  }
  write_jsonl_atomic(dir + "/pairs.jsonl", rows);
  const std::string common = "train --model " + testkit::shell_quote(dir + "/model") + " --data " +
                             testkit::shell_quote(dir + "/pairs.jsonl") + " --batch-size 4 --epochs 1 --logging-steps 1";
  auto ok = testkit::run_spinlm(common + " --output " + testkit::shell_quote(dir + "/out") +
                                " --max-tokens-per-micro-batch 30");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(read_jsonl(dir + "/out/metrics.jsonl").size(), 1u);
  auto bad = testkit::run_spinlm(common + " --output " + testkit::shell_quote(dir + "/bad") +
                                 " --max-tokens-per-micro-batch -3");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--max-tokens-per-micro-batch"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("-3"), std::string::npos)
      << bad.output;
}
