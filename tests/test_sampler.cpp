// Sampling: the filters against an independent torch reference of transformers' warpers
// (tests/reference/hf_logits_warpers.py), sampling frequencies against the exactly computed
// filtered distribution (chi-square), greedy tie-breaking, and the counter-based generator.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "generate/engine.h"
#include "generate/host_sampling.h"
#include "generate/sampler.h"
#include "generate/sort_rows.h"
#include "testkit.h"

namespace spinlm {
namespace {

using nlohmann::json;

SamplingOptions make_options(double temperature, int64_t top_k, double top_p, double min_p) {
  SamplingOptions options;
  options.temperature = temperature;
  options.top_k = top_k;
  options.top_p = top_p;
  options.min_p = min_p;
  return options;
}

// Upper critical value of chi-square with k degrees of freedom at significance 1e-3
// (Wilson-Hilferty; z = 3.0902 is the normal 0.999 quantile).
double chi_square_critical(int64_t k) {
  const double z = 3.0902;
  double a = 2.0 / (9.0 * k);
  return k * std::pow(1 - a + z * std::sqrt(a), 3);
}

// Draws n samples for one row of logits [V] with uniforms (seed, row, 0) for rows 0..n-1 and
// checks their frequencies against the exact filtered distribution.
void expect_frequencies_match(const at::Tensor& logits, const SamplingOptions& options, int64_t n,
                              uint64_t seed) {
  const int64_t vocab = logits.size(0);
  at::Tensor batch = logits.unsqueeze(0).expand({n, vocab}).contiguous();  // [N, V]
  std::vector<double> uniforms(n);
  for (int64_t i = 0; i < n; ++i) uniforms[i] = counter_uniform(seed, i, 0);
  std::vector<int64_t> tokens = sample_tokens(batch, options, uniforms);
  std::vector<double> observed(vocab, 0.0);
  for (int64_t token : tokens) {
    ASSERT_GE(token, 0);
    ASSERT_LT(token, vocab);
    observed[token] += 1;
  }
  at::Tensor probs = sampling_distribution(logits.unsqueeze(0), options)[0];  // [V] fp64
  auto p = probs.accessor<double, 1>();
  // Cells with expected count < 5 are pooled (the usual chi-square validity rule); filtered
  // tokens (p == 0) must never be drawn.
  double statistic = 0, pooled_expected = 0, pooled_observed = 0;
  int64_t cells = 0;
  for (int64_t v = 0; v < vocab; ++v) {
    if (p[v] == 0) {
      EXPECT_EQ(observed[v], 0) << "filtered token " << v << " was sampled";
      continue;
    }
    double expected = p[v] * n;
    if (expected < 5) {
      pooled_expected += expected;
      pooled_observed += observed[v];
      continue;
    }
    statistic += (observed[v] - expected) * (observed[v] - expected) / expected;
    ++cells;
  }
  if (pooled_expected > 0) {
    statistic += (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) /
                 std::max(pooled_expected, 1e-9);
    ++cells;
  }
  if (cells <= 1) return;  // one token left: every draw must be it, checked above
  EXPECT_LT(statistic, chi_square_critical(cells - 1))
      << "chi-square " << statistic << " with " << cells - 1 << " degrees of freedom (T="
      << options.temperature << " k=" << options.top_k << " p=" << options.top_p
      << " min_p=" << options.min_p << ")";
}

at::Tensor fixed_logits(int64_t vocab, uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  return at::randn({vocab}, generator, at::kFloat) * 2.0;
}

TEST(Sampler, FrequenciesMatchFilteredDistribution) {
  at::Tensor logits = fixed_logits(40, 1);
  const int64_t n = 40000;
  struct Case { double temperature; int64_t top_k; double top_p; double min_p; };
  for (Case c : {Case{1.0, 0, 1.0, 0.0}, Case{0.6, 0, 1.0, 0.0}, Case{1.7, 0, 1.0, 0.0},
                 Case{1.0, 7, 1.0, 0.0}, Case{1.0, 0, 0.8, 0.0}, Case{1.0, 0, 1.0, 0.05},
                 Case{0.8, 10, 0.9, 0.02}}) {
    expect_frequencies_match(logits, make_options(c.temperature, c.top_k, c.top_p, c.min_p), n, 7);
  }
}

TEST(Sampler, ChiSquareDetectsAWrongDistribution) {
  // The test above must be able to fail: samples at T=1 judged against T=0.6.
  at::Tensor logits = fixed_logits(40, 1);
  const int64_t n = 40000;
  at::Tensor batch = logits.unsqueeze(0).expand({n, 40}).contiguous();
  std::vector<double> uniforms(n);
  for (int64_t i = 0; i < n; ++i) uniforms[i] = counter_uniform(3, i, 0);
  std::vector<int64_t> tokens = sample_tokens(batch, make_options(1.0, 0, 1.0, 0.0), uniforms);
  at::Tensor p = sampling_distribution(logits.unsqueeze(0), make_options(0.6, 0, 1.0, 0.0))[0];
  std::vector<double> observed(40, 0);
  for (int64_t t : tokens) observed[t] += 1;
  double statistic = 0;
  for (int64_t v = 0; v < 40; ++v) {
    double expected = p[v].item<double>() * n;
    if (expected >= 5) statistic += (observed[v] - expected) * (observed[v] - expected) / expected;
  }
  EXPECT_GT(statistic, chi_square_critical(39) * 10);
}

TEST(Sampler, FiltersMatchTransformersReference) {
  // Logits with deliberate ties (rounded to 0.5) and a few -inf, 6 rows x 30 tokens.
  at::Generator generator = at::detail::createCPUGenerator(11);
  at::Tensor logits = (at::randn({6, 30}, generator, at::kFloat) * 4).round() / 2;
  logits[2][3] = -std::numeric_limits<float>::infinity();
  logits[5].fill_(0.25);  // all tied
  logits[4][7] = 9.0;     // one dominant token
  std::vector<SamplingOptions> cases = {
      make_options(1.0, 0, 1.0, 0.0), make_options(0.7, 0, 1.0, 0.0), make_options(1.0, 5, 1.0, 0.0),
      make_options(1.0, 1, 1.0, 0.0), make_options(1.0, 100, 1.0, 0.0), make_options(1.0, 0, 0.9, 0.0),
      make_options(1.0, 0, 0.5, 0.0), make_options(1.0, 0, 0.0, 0.0), make_options(1.0, 0, 1.0, 0.1),
      make_options(1.0, 0, 1.0, 0.5), make_options(1.0, 0, 1.0, 1.0), make_options(0.5, 8, 0.85, 0.05),
      make_options(2.0, 3, 0.3, 0.2)};
  json spec;
  spec["logits"] = json::array();
  for (int64_t b = 0; b < logits.size(0); ++b) {
    json row = json::array();
    for (int64_t v = 0; v < logits.size(1); ++v) {
      float x = logits[b][v].item<float>();
      row.push_back(std::isinf(x) ? json(-1e30) : json(static_cast<double>(x)));
    }
    spec["logits"].push_back(row);
  }
  logits = logits.clamp_min(-1e30);  // the same values the reference reads
  spec["cases"] = json::array();
  for (const SamplingOptions& o : cases) {
    spec["cases"].push_back({{"temperature", o.temperature}, {"top_k", o.top_k}, {"top_p", o.top_p},
                             {"min_p", o.min_p}});
  }
  std::string dir = testkit::make_temp_dir("sampler-reference");
  write_file_atomic(dir + "/cases.json", spec.dump());
  auto result = testkit::run_python_reference("hf_logits_warpers.py",
                                              testkit::shell_quote(dir + "/cases.json") + " " +
                                                  testkit::shell_quote(dir + "/out.json"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  json out = json::parse(read_file(dir + "/out.json"));
  for (size_t c = 0; c < cases.size(); ++c) {
    at::Tensor ours = sampling_distribution(logits, cases[c]);  // [B, V] fp64
    for (int64_t b = 0; b < logits.size(0); ++b) {
      for (int64_t v = 0; v < logits.size(1); ++v) {
        double reference = out["probs"][c][b][v].get<double>();
        double mine = ours[b][v].item<double>();
        // The kept set must be identical; kept probabilities agree to rounding.
        EXPECT_EQ(reference == 0, mine == 0) << "case " << c << " row " << b << " token " << v;
        EXPECT_NEAR(mine, reference, 1e-6) << "case " << c << " row " << b << " token " << v;
      }
    }
  }
}

TEST(Sampler, GreedyTakesTheLowestIdAmongTies) {
  at::Tensor logits = at::tensor({0.5f, 2.0f, -1.0f, 2.0f, 2.0f}).unsqueeze(0);
  SamplingOptions greedy;
  greedy.greedy = true;
  EXPECT_EQ(sample_tokens(logits, greedy, {0.99})[0], 1);
  SamplingOptions zero_temperature = make_options(0.0, 0, 1.0, 0.0);
  EXPECT_EQ(sample_tokens(logits, zero_temperature, {0.5})[0], 1);
}

TEST(Sampler, InverseCdfPicksTheTokenWhoseIntervalHoldsU) {
  // p = (0.1, 0.2, 0.3, 0.4): u in [0, .1) -> 0, [.1, .3) -> 1, [.3, .6) -> 2, [.6, 1) -> 3.
  at::Tensor logits = at::tensor({0.1, 0.2, 0.3, 0.4}, at::kDouble).log().to(at::kFloat).unsqueeze(0);
  SamplingOptions options;
  auto draw = [&](double u) { return sample_tokens(logits, options, {u})[0]; };
  EXPECT_EQ(draw(0.0), 0);
  EXPECT_EQ(draw(0.0999), 0);
  EXPECT_EQ(draw(0.1001), 1);
  EXPECT_EQ(draw(0.2999), 1);
  EXPECT_EQ(draw(0.3001), 2);
  EXPECT_EQ(draw(0.6001), 3);
  EXPECT_EQ(draw(std::nextafter(1.0, 0.0)), 3);
  // Filtered tokens are skipped even at the edges: top-k 2 keeps tokens 2 and 3.
  options.top_k = 2;
  EXPECT_EQ(draw(0.0), 2);
  EXPECT_EQ(draw(std::nextafter(1.0, 0.0)), 3);
}

TEST(Sampler, CounterUniformDependsOnEveryCounter) {
  double base = counter_uniform(42, 3, 5);
  EXPECT_EQ(base, counter_uniform(42, 3, 5));
  EXPECT_NE(base, counter_uniform(43, 3, 5));
  EXPECT_NE(base, counter_uniform(42, 4, 5));
  EXPECT_NE(base, counter_uniform(42, 3, 6));
  EXPECT_NE(counter_uniform(1, 0, 1), counter_uniform(1, 1, 0));  // row and step not symmetric
  // Mean and variance of many draws along steps (the engine's use) match U(0, 1).
  double sum = 0, sum_squares = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double u = counter_uniform(9, i % 97, i / 97);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum_squares += u * u;
  }
  EXPECT_NEAR(sum / n, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(sum_squares / n - (sum / n) * (sum / n), 1.0 / 12, 0.002);
}

TEST(Sampler, OptionsOutOfRangeNameTheOption) {
  auto message = [](SamplingOptions o) {
    try {
      o.validate();
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string();
  };
  EXPECT_NE(message(make_options(-1, 0, 1, 0)).find("--temperature"), std::string::npos);
  EXPECT_NE(message(make_options(1, -2, 1, 0)).find("--top-k"), std::string::npos);
  EXPECT_NE(message(make_options(1, 0, 1.5, 0)).find("--top-p"), std::string::npos);
  EXPECT_NE(message(make_options(1, 0, 1, -0.1)).find("--min-p"), std::string::npos);
  EXPECT_EQ(message(make_options(0.7, 40, 0.95, 0.05)), "");
}

// The engine's first sampled token on a tiny random model follows the model's filtered
// next-token distribution, computed independently by a full forward pass.
TEST(Sampler, TinyModelNextTokenFrequencies) {
  ModelConfig config;
  config.model_type = "llama";
  config.vocab_size = 48;
  config.hidden_size = 32;
  config.intermediate_size = 64;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 8;
  config.max_position_embeddings = 64;
  Transformer model(config);
  model.init_random(5, 0.4);  // large weights: a peaked, far from uniform distribution
  std::vector<int64_t> prompt = {3, 17, 9, 30, 2};
  at::Tensor ids = at::tensor(prompt, at::kLong).unsqueeze(0);
  at::Tensor hidden;
  {
    at::NoGradGuard no_grad;
    hidden = model.forward_hidden(ids, at::ones_like(ids));  // [1, T, C]
  }
  at::Tensor logits = model.logits(hidden[0][-1]).detach();  // [V]
  for (SamplingOptions options : {make_options(1.0, 0, 1.0, 0.0), make_options(0.7, 0, 1.0, 0.0),
                                  make_options(1.0, 6, 1.0, 0.0), make_options(1.0, 0, 0.7, 0.0),
                                  make_options(1.0, 0, 1.0, 0.1)}) {
    EngineOptions engine_options;
    engine_options.sampling = options;
    engine_options.seed = 123;
    engine_options.max_new_tokens = 1;
    engine_options.batch_size = 512;
    engine_options.max_batch_tokens = 4096;
    GenerationEngine engine(model, engine_options);
    const int64_t n = 6000;
    std::vector<GenerationRequest> requests(n);
    for (int64_t i = 0; i < n; ++i) requests[i] = {i, prompt};
    std::vector<double> observed(config.vocab_size, 0);
    engine.generate(requests, [&](GenerationResult&& result) { observed[result.ids.at(0)] += 1; });
    at::Tensor p = sampling_distribution(logits.unsqueeze(0), options)[0];
    double statistic = 0, pooled_expected = 0, pooled_observed = 0;
    int64_t cells = 0;
    for (int64_t v = 0; v < config.vocab_size; ++v) {
      double expected = p[v].item<double>() * n;
      if (expected == 0) {
        EXPECT_EQ(observed[v], 0);
      } else if (expected < 5) {
        pooled_expected += expected;
        pooled_observed += observed[v];
      } else {
        statistic += (observed[v] - expected) * (observed[v] - expected) / expected;
        ++cells;
      }
    }
    if (pooled_expected > 0) {
      statistic += (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) / pooled_expected;
      ++cells;
    }
    ASSERT_GT(cells, 1);
    EXPECT_LT(statistic, chi_square_critical(cells - 1))
        << "T=" << options.temperature << " k=" << options.top_k << " p=" << options.top_p
        << " min_p=" << options.min_p;
  }
}

TEST(HostSampling, ExpMatchesLibmOverTheWholeRange) {
  // Every 8-lane block and the scalar tail: 1003 values from 0 down past the underflow point.
  std::vector<float> x(1003), out(1003);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -0.09f * float(i) + 1.5f;  // 1.5 .. -88.7
  x[7] = -INFINITY;
  x[1001] = -INFINITY;
  x[500] = std::nanf("");
  exp_nonpositive(x.data(), out.data(), int64_t(x.size()), 1.5f);
  for (size_t i = 0; i < x.size(); ++i) {
    const double expected = std::exp(double(x[i]) - 1.5);
    if (i == 7 || i == 1001 || i == 500) {
      EXPECT_EQ(out[i], 0.0f) << i;
    } else if (double(x[i]) - 1.5 < -87.3) {
      // Underflow region: 0, or (just above the floor) the right tiny normal value.
      EXPECT_TRUE(out[i] == 0.0f || std::abs(out[i] / expected - 1.0) < 3e-7) << i << " " << out[i];
    } else {
      EXPECT_NEAR(out[i] / expected, 1.0, 3e-7) << "x " << x[i];
    }
  }
}

TEST(HostSampling, DrawsTheTokenAnFp64InverseCdfDraws) {
  // Independent reference: softmax in fp64 with libtorch, cumulative sum, first index whose
  // cumulative probability exceeds u. Rows span several 1024-token blocks and hold -inf.
  at::manual_seed(11);
  const int64_t rows = 40, vocab = 5000;
  at::Tensor scores = at::randn({rows, vocab}) * 3;
  scores.index_put_({at::indexing::Slice(), at::indexing::Slice(0, 1500)}, -INFINITY);
  scores[3].fill_(-INFINITY);
  scores[3][4999] = 0.0f;  // one finite token: always chosen
  std::vector<double> uniforms(rows);
  for (int64_t b = 0; b < rows; ++b) uniforms[b] = counter_uniform(5, b, 0);
  uniforms[0] = 0.0;
  uniforms[1] = std::nextafter(1.0, 0.0);
  std::vector<int64_t> drawn = sample_rows_on_host(scores, uniforms);
  at::Tensor cdf = scores.to(at::kDouble).softmax(-1).cumsum(-1);  // [rows, vocab]
  for (int64_t b = 0; b < rows; ++b) {
    const double u = uniforms[b];
    at::Tensor above = (cdf[b] > u).nonzero();
    int64_t expected = above.size(0) > 0 ? above[0][0].item<int64_t>() : vocab - 1;
    // A different rounding order may move a boundary by ~1e-15: accept the neighbour only
    // when u sits that close to the boundary between them.
    if (drawn[b] != expected) {
      double boundary = cdf[b][std::min(drawn[b], expected)].item<double>();
      EXPECT_NEAR(boundary, u, 1e-12) << "row " << b;
    }
    EXPECT_GT(scores[b][drawn[b]].item<float>(), -INFINITY) << "row " << b << " drew a filtered token";
  }
  EXPECT_EQ(drawn[3], 4999);
  EXPECT_EQ(drawn[0], (scores[0] > -INFINITY).nonzero()[0][0].item<int64_t>());  // u = 0: first token with mass
}

// sample_ids (the device-side draw the GPU decode loop uses, run here on CPU tensors) picks
// what an fp64 inverse CDF over the filtered distribution picks, for every filter, and at the
// edges u = 0 and u just below 1 (where rounding can push u * total to the very end).
TEST(Sampler, TensorDrawMatchesAnFp64InverseCdf) {
  at::Generator generator = at::detail::createCPUGenerator(23);
  const int64_t rows = 48, vocab = 300;
  at::Tensor logits = at::randn({rows, vocab}, generator, at::kFloat) * 3;  // [rows, V]
  logits[4].narrow(0, 0, 299).fill_(-INFINITY);  // only the last token has mass
  logits[5].narrow(0, 1, 299).fill_(-INFINITY);  // only the first
  std::vector<double> uniforms(rows);
  for (int64_t b = 0; b < rows; ++b) uniforms[b] = counter_uniform(9, b, 3);
  uniforms[0] = 0.0;
  uniforms[1] = std::nextafter(1.0, 0.0);
  uniforms[4] = std::nextafter(1.0, 0.0);
  uniforms[5] = std::nextafter(1.0, 0.0);
  for (const SamplingOptions& options :
       {make_options(1.0, 0, 1.0, 0.0), make_options(0.7, 20, 1.0, 0.0), make_options(1.0, 0, 0.8, 0.0),
        make_options(1.3, 0, 1.0, 0.05), make_options(0.0, 0, 1.0, 0.0)}) {
    at::Tensor ids = sample_ids(logits, options, at::tensor(uniforms, at::kDouble));  // [rows]
    ASSERT_EQ(ids.scalar_type(), at::kLong);
    at::Tensor probs = sampling_distribution(logits, options);  // [rows, V] fp64
    for (int64_t b = 0; b < rows; ++b) {
      const int64_t drawn = ids[b].item<int64_t>();
      ASSERT_GE(drawn, 0);
      ASSERT_LT(drawn, vocab);
      EXPECT_GT(probs[b][drawn].item<double>(), 0) << "row " << b << " drew a filtered token";
      // Independent: walk the row's probabilities in order until the sum exceeds u.
      auto p = probs[b].contiguous();
      const double* values = p.data_ptr<double>();
      double total = 0, cumulative = 0;
      for (int64_t v = 0; v < vocab; ++v) total += values[v];
      int64_t expected = -1;
      for (int64_t v = 0; v < vocab && expected < 0; ++v) {
        cumulative += values[v];
        if (cumulative > uniforms[b] * total) expected = v;
      }
      if (expected < 0) expected = (probs[b] > 0).nonzero().max().item<int64_t>();
      if (drawn != expected) {  // only a summation-order difference at a boundary may differ
        double boundary = probs[b].cumsum(0)[std::min(drawn, expected)].item<double>();
        EXPECT_NEAR(boundary, uniforms[b] * total, 1e-12) << "row " << b;
      }
    }
    EXPECT_EQ(ids[4].item<int64_t>(), 299);
    EXPECT_EQ(ids[5].item<int64_t>(), 0);
    // The host path (sample_tokens on CPU) draws the same tokens.
    std::vector<int64_t> host = sample_tokens(logits, options, uniforms);
    for (int64_t b = 0; b < rows; ++b) EXPECT_EQ(host[b], ids[b].item<int64_t>()) << "row " << b;
  }
}

// The radix sort top-p uses on the CPU orders rows exactly as libtorch's stable sort does:
// many ties (values rounded to a coarse grid), -inf, -0.0 next to +0.0, a large vocabulary,
// and rows whose keys share digits (the skipped passes).
TEST(SortRows, OrdersAsTheStableSort) {
  at::Generator generator = at::detail::createCPUGenerator(31);
  at::Tensor scores = (at::randn({6, 70001}, generator, at::kFloat) * 8).round() / 4;  // [6, V]
  scores[0].narrow(0, 0, 5000).fill_(-INFINITY);
  scores[1].narrow(0, 100, 2000).fill_(0.0f);
  scores[1].narrow(0, 3000, 2000).fill_(-0.0f);
  scores[2].fill_(1.5f);                               // every key equal
  scores[3] = at::arange(70001, at::kFloat) * 1e-3f;   // already sorted
  scores[4] = at::arange(70001, at::kFloat).neg();     // reversed
  auto [values, indices] = sort_rows_ascending(scores);
  auto [expected_values, expected_indices] = at::sort(scores, /*stable=*/true, -1, /*descending=*/false);
  EXPECT_TRUE(at::equal(indices, expected_indices));
  EXPECT_TRUE(at::equal(values, expected_values));
  EXPECT_FALSE(sort_rows_applies(scores.to(at::kDouble)));
}

TEST(HostSampling, RowWithoutFiniteScoreIsAnError) {
  at::Tensor scores = at::full({2, 10}, -INFINITY);
  scores[0][3] = 1.0f;
  EXPECT_THROW(sample_rows_on_host(scores, {0.5, 0.5}), Error);
}

}  // namespace
}  // namespace spinlm
