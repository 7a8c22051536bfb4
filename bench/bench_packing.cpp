// Packed, padding-free SPIN steps, reference scoring and lm-eval multiple-choice scoring
// (data/packing.h) against today's padded path in the same run.
//
// Today's path, kept here as the baseline: a micro-batch of m pairs is 2m right-padded rows
// (prompt + real, prompt + generated; collate_pairs + forward_hidden), micro-batches of
// --micro pairs grouped by length; lm-eval requests are padded rows of context +
// continuation[:-1], identical rows merged, --eval-batch rows per forward. Packed: the
// micro-batches of split_micro_batches with --budget tokens, spin_micro_loss /
// compute_reference_logprobs / score_loglikelihood as spinlm runs them.
//
// Useful tokens: prompt once + real + generated per pair (context once + continuations per
// lm-eval document); computed positions: what the forward runs (rows x padded length, or
// the packed stream); wasted share = 1 - useful / computed.
//
// Pair lengths (seeded, --seed): "ultrachat-like": prompts uniform in 20..512 tokens, real
// answers log-normal (median 220, sigma 0.9) cut to 1..1024, generated answers log-normal
// (median 150, sigma 0.6) cut to 1..256, then TRL's truncation to 1024 / 512; "demo-like":
// every pair 40 prompt tokens and two 24-token answers.
// Model: Qwen2-0.5B's widths (hidden 896, MLP 4864, 14 heads over 2 KV heads, head 64,
// vocabulary 151936, tied, q/k/v biases) with --layers decoder layers (24 in the real model).
// Usage: bench_packing [--threads 2] [--layers 4] [--pairs 8] [--micro 2] [--budget 4096]
//                      [--seed 17] [--docs 8] [--eval-batch 4] [--parts step,reference,mc]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "core/threads.h"
#include "data/collate.h"
#include "data/packing.h"
#include "eval/loglikelihood.h"
#include "model/config.h"
#include "model/transformer.h"
#include "train/losses.h"
#include "train/reference_logprobs.h"
#include "train/spin_trainer.h"

using namespace spinlm;

namespace {

constexpr int64_t kVocab = 151936;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<int64_t> random_ids(std::mt19937_64& rng, int64_t n) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(3 + static_cast<int64_t>(rng() % (kVocab - 3)));
  return ids;
}

int64_t log_normal_length(std::mt19937_64& rng, double median, double sigma, int64_t cap) {
  std::lognormal_distribution<double> dist(std::log(median), sigma);
  return std::clamp<int64_t>(std::llround(dist(rng)), 1, cap);
}

std::vector<TokenPair> ultrachat_like(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> prompt(20, 512);
  std::vector<TokenPair> pairs;
  for (int64_t i = 0; i < n; ++i) {
    TokenPair p;
    p.prompt = random_ids(rng, prompt(rng));
    p.real = random_ids(rng, log_normal_length(rng, 220, 0.9, 1024));
    p.generated = random_ids(rng, log_normal_length(rng, 150, 0.6, 256));
    pairs.push_back(truncate_pair(p, TruncationOptions{1024, 512}));
  }
  return pairs;
}

std::vector<TokenPair> demo_like(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TokenPair> pairs;
  for (int64_t i = 0; i < n; ++i) pairs.push_back({random_ids(rng, 40), random_ids(rng, 24), random_ids(rng, 24)});
  return pairs;
}

struct Measure {
  double seconds = 0;
  int64_t computed = 0;
};

// Today's micro-batch: 2m padded rows, summed response log-probs.
PairScores padded_scores(const Transformer& model, const std::vector<const TokenPair*>& pairs, int64_t* computed) {
  const int64_t m = static_cast<int64_t>(pairs.size());
  SequenceBatch batch = collate_pairs(pairs);
  *computed += batch.input_ids.numel();
  at::Tensor logps = model.target_logprobs(model.forward_hidden(batch.input_ids, batch.attention_mask), batch.targets);
  at::Tensor sums = (logps * batch.target_mask).sum(1), counts = batch.target_mask.sum(1);
  PairScores s;
  s.real = sums.slice(0, 0, m);
  s.generated = sums.slice(0, m, 2 * m);
  s.real_tokens = counts.slice(0, 0, m);
  s.generated_tokens = counts.slice(0, m, 2 * m);
  return s;
}

struct Setup {
  int64_t micro = 2;
  int64_t budget = 4096;
};

std::vector<int64_t> all_of(const std::vector<TokenPair>& pairs) {
  std::vector<int64_t> all(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) all[i] = static_cast<int64_t>(i);
  return all;
}

// One SPIN step (forward + backward of the whole batch, logistic loss, beta 0.1) each way.
std::pair<Measure, Measure> spin_step(Transformer& model, const std::vector<TokenPair>& pairs, const Setup& setup) {
  std::vector<int64_t> all = all_of(pairs), lengths, tokens;
  for (const auto& p : pairs) {
    lengths.push_back(pair_length(p));
    tokens.push_back(packed_pair_tokens(p));
  }
  const std::vector<double> ref_real(pairs.size(), -1000.0), ref_generated(pairs.size(), -1000.0);
  const double n = static_cast<double>(pairs.size());
  model.set_requires_grad(true);
  Measure today, packed;
  auto start = std::chrono::steady_clock::now();
  for (const auto& micro : group_by_length(all, lengths, setup.micro)) {
    std::vector<const TokenPair*> ptrs;
    for (int64_t i : micro) ptrs.push_back(&pairs[i]);
    PairScores s = padded_scores(model, ptrs, &today.computed);
    const at::Tensor ref = at::full({static_cast<int64_t>(micro.size())}, -1000.0, s.real.options());
    PairLossOutput out = spin_pair_loss(SpinLoss::kLogistic, 0.1, s.real, s.generated, ref, ref);
    (out.losses.sum() / n).backward();
  }
  today.seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  for (const auto& micro : split_micro_batches(all, lengths, tokens, MicroBatching{setup.micro, setup.budget})) {
    std::vector<const TokenPair*> ptrs;
    std::vector<double> rr, rg;
    for (int64_t i : micro) {
      ptrs.push_back(&pairs[i]);
      rr.push_back(ref_real[i]);
      rg.push_back(ref_generated[i]);
    }
    SpinMicroOutput out = spin_micro_loss(model, ptrs, rr, rg, SpinLoss::kLogistic, 0.1, 0.0, n);
    out.loss.backward();
    packed.computed += static_cast<int64_t>(out.metrics["tokens"]);
  }
  packed.seconds = seconds_since(start);
  model.set_requires_grad(false);
  return {today, packed};
}

std::pair<Measure, Measure> reference_scoring(const Transformer& model, const std::vector<TokenPair>& pairs,
                                              const Setup& setup) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> all = all_of(pairs), lengths;
  for (const auto& p : pairs) lengths.push_back(pair_length(p));
  Measure today, packed;
  auto start = std::chrono::steady_clock::now();
  for (const auto& micro : group_by_length(all, lengths, setup.micro)) {
    std::vector<const TokenPair*> ptrs;
    for (int64_t i : micro) ptrs.push_back(&pairs[i]);
    padded_scores(model, ptrs, &today.computed);
  }
  today.seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  compute_reference_logprobs(model, pairs, MicroBatching{setup.micro, setup.budget});
  packed.seconds = seconds_since(start);
  for (const auto& p : pairs) packed.computed += packed_pair_tokens(p);
  return {today, packed};
}

// Today's lm-eval scorer: padded rows of (context + continuation)[:-1], identical rows
// merged, longest first, batch rows per forward; scored positions through the LM head.
Measure padded_loglikelihood(const Transformer& model, const std::vector<LoglikelihoodRequest>& requests,
                             int64_t batch) {
  at::NoGradGuard no_grad;
  std::map<std::vector<int64_t>, int> seen;
  std::vector<std::vector<int64_t>> rows;
  for (const auto& r : requests) {
    std::vector<int64_t> input = r.context;
    input.insert(input.end(), r.continuation.begin(), r.continuation.end() - 1);
    if (seen.emplace(input, 1).second) rows.push_back(input);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  Measure m;
  const auto start = std::chrono::steady_clock::now();
  for (size_t begin = 0; begin < rows.size(); begin += static_cast<size_t>(batch)) {
    const size_t end = std::min(rows.size(), begin + static_cast<size_t>(batch));
    const int64_t B = static_cast<int64_t>(end - begin), T = static_cast<int64_t>(rows[begin].size());
    at::Tensor ids = at::zeros({B, T}, at::kLong), mask = at::zeros({B, T}, at::kLong);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& row = rows[begin + b];
      for (size_t t = 0; t < row.size(); ++t) {
        ids_a[b][static_cast<int64_t>(t)] = row[t];
        mask_a[b][static_cast<int64_t>(t)] = 1;
      }
    }
    m.computed += B * T;
    at::Tensor hidden = model.forward_hidden(ids, mask);
    // The last 4 positions of each row through the LM head (the continuations' share).
    model.logits(hidden.narrow(1, std::max<int64_t>(0, T - 4), std::min<int64_t>(T, 4))).log_softmax(-1);
  }
  m.seconds = seconds_since(start);
  return m;
}

void report(const char* what, int64_t useful, const Measure& today, const Measure& packed) {
  auto waste = [&](const Measure& m) { return 100.0 * (1.0 - double(useful) / double(m.computed)); };
  std::printf("%-34s useful %6lld | today %7lld computed (%4.1f%% wasted) %7.2f s %7.1f useful tok/s | "
              "packed %7lld computed (%4.1f%% wasted) %7.2f s %7.1f useful tok/s | %.2fx\n",
              what, (long long)useful, (long long)today.computed, waste(today), today.seconds, useful / today.seconds,
              (long long)packed.computed, waste(packed), packed.seconds, useful / packed.seconds,
              today.seconds / packed.seconds);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t layers = 4, pairs_n = 8, docs = 8, eval_batch = 4;
  uint64_t seed = 17;
  Setup setup;
  std::string parts = "step,reference,mc";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--parts") {
      parts = argv[i + 1];
      continue;
    }
    const int64_t value = std::atoll(argv[i + 1]);
    if (arg == "--threads") threads = static_cast<int>(value);
    else if (arg == "--layers") layers = value;
    else if (arg == "--pairs") pairs_n = value;
    else if (arg == "--micro") setup.micro = value;
    else if (arg == "--budget") setup.budget = value;
    else if (arg == "--seed") seed = static_cast<uint64_t>(value);
    else if (arg == "--docs") docs = value;
    else if (arg == "--eval-batch") eval_batch = value;
    else { std::fprintf(stderr, "unknown option %s\n", arg.c_str()); return 2; }
  }
  setup_threads(threads);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  nlohmann::json config = {{"model_type", "qwen2"},        {"vocab_size", kVocab},          {"hidden_size", 896},
                           {"intermediate_size", 4864},    {"num_hidden_layers", layers},   {"num_attention_heads", 14},
                           {"num_key_value_heads", 2},     {"max_position_embeddings", 32768},
                           {"rope_theta", 1000000.0},      {"tie_word_embeddings", true},   {"rms_norm_eps", 1e-6}};
  Transformer model(ModelConfig::from_json(config, "bench shape"));
  model.init_random(0);
  std::printf("Qwen2-0.5B widths, %lld layers, fp32, %d threads; %lld pairs per batch, today %lld pairs per "
              "micro-batch, packed budget %lld tokens; seed %llu\n",
              (long long)layers, threads, (long long)pairs_n, (long long)setup.micro, (long long)setup.budget,
              (unsigned long long)seed);
  {
    at::NoGradGuard no_grad;  // warm-up
    std::vector<TokenPair> warm = demo_like(2, 1);
    compute_reference_logprobs(model, warm, MicroBatching{2});
  }
  for (const auto& [name, pairs] : {std::pair<const char*, std::vector<TokenPair>>{"ultrachat-like", ultrachat_like(pairs_n, seed)},
                                    {"demo-like", demo_like(pairs_n, seed)}}) {
    int64_t useful = 0, prompt = 0, real = 0, generated = 0;
    for (const auto& p : pairs) {
      useful += packed_pair_tokens(p);
      prompt += static_cast<int64_t>(p.prompt.size());
      real += static_cast<int64_t>(p.real.size());
      generated += static_cast<int64_t>(p.generated.size());
    }
    std::printf("%s: mean prompt %.0f, real %.0f, generated %.0f tokens\n", name, double(prompt) / pairs.size(),
                double(real) / pairs.size(), double(generated) / pairs.size());
    if (parts.find("step") != std::string::npos) {
      const auto [step_today, step_packed] = spin_step(model, pairs, setup);
      report((std::string(name) + " SPIN step (fwd+bwd)").c_str(), useful, step_today, step_packed);
    }
    if (parts.find("reference") != std::string::npos) {
      const auto [ref_today, ref_packed] = reference_scoring(model, pairs, setup);
      report((std::string(name) + " reference scoring").c_str(), useful, ref_today, ref_packed);
    }
  }
  // lm-eval multiple choice: one context (300-400 tokens), 4 continuations.
  std::mt19937_64 rng(seed);
  for (int64_t continuation : {1, 20}) {
    if (parts.find("mc") == std::string::npos) break;
    std::vector<LoglikelihoodRequest> requests;
    // Useful: the model inputs the scores need, each context once and each continuation but
    // its last token; the packed stream also holds each continuation's last token.
    int64_t useful = 0, stream = 0;
    for (int64_t d = 0; d < docs; ++d) {
      const auto context = random_ids(rng, 300 + static_cast<int64_t>(rng() % 100));
      useful += static_cast<int64_t>(context.size());
      stream += static_cast<int64_t>(context.size());
      for (int c = 0; c < 4; ++c) {
        requests.push_back({context, random_ids(rng, continuation)});
        useful += continuation - 1;
        stream += continuation;
      }
    }
    const Measure today = padded_loglikelihood(model, requests, eval_batch);
    LoglikelihoodOptions options;
    options.batch_size = eval_batch;
    Measure packed;
    const auto start = std::chrono::steady_clock::now();
    score_loglikelihood(model, requests, options);
    packed.seconds = seconds_since(start);
    packed.computed = stream;
    const std::string label = "lm-eval MC, 4 x " + std::to_string(continuation) + "-token continuations";
    report(label.c_str(), useful, today, packed);
  }
  return 0;
}
