// model/target_logprobs: the paths of the chunked, scored-positions-only LM-head log-probs
// against plain log_softmax + gather in double precision — every position scored (no
// gather), none scored, a kept single chunk versus recomputed chunks, a second backward
// through a retained graph, a weight-only gradient, and no-grad use (nothing kept).
#include <gtest/gtest.h>

#include "model/target_logprobs.h"

using namespace spinlm;

namespace {

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct Case {
  at::Tensor hidden;   // [N, C] double, requires grad
  at::Tensor weight;   // [V, C] double, requires grad
  at::Tensor targets;  // [N]
  at::Tensor scale;    // [N] upstream weights
};

Case make_case(uint64_t seed, int64_t N, bool ignore_some) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  Case c;
  c.hidden = at::randn({N, 8}, generator, at::kDouble).requires_grad_(true);
  c.weight = at::randn({29, 8}, generator, at::kDouble).requires_grad_(true);
  c.targets = at::randint(29, {N}, generator, at::kLong);
  if (ignore_some) {
    for (int64_t i = 0; i < N; i += 3) c.targets[i] = -1;
  }
  c.scale = at::randn({N}, generator, at::kDouble);
  return c;
}

// Plain full-vocabulary reference, 0 where the target is negative.
at::Tensor plain(const Case& c) {
  at::Tensor valid = c.targets.ge(0);
  return at::log_softmax(at::mm(c.hidden, c.weight.t()), -1)
      .gather(1, c.targets.clamp_min(0).unsqueeze(1))
      .squeeze(1)
      .masked_fill(valid.logical_not(), 0);
}

}  // namespace

TEST(TargetLogprobs, EveryPathMatchesLogSoftmax) {
  for (bool ignore_some : {false, true}) {
    Case c = make_case(7, 12, ignore_some);
    at::Tensor want = plain(c);
    auto want_grads = torch::autograd::grad({(want * c.scale).sum()}, {c.hidden, c.weight});
    // 12 scored rows (or 8): chunk 100 and 12 keep one chunk, 5 and 1 recompute.
    for (int64_t chunk : {1, 5, 12, 100}) {
      SCOPED_TRACE("ignore " + std::to_string(ignore_some) + " chunk " + std::to_string(chunk));
      at::Tensor got = chunked_target_logprobs(c.hidden, c.weight, c.targets, chunk);
      EXPECT_LT(max_abs_diff(got, want), 1e-12);
      auto grads = torch::autograd::grad({(got * c.scale).sum()}, {c.hidden, c.weight});
      EXPECT_LT(max_abs_diff(grads[0], want_grads[0]), 1e-12);
      EXPECT_LT(max_abs_diff(grads[1], want_grads[1]), 1e-12);
      if (ignore_some) EXPECT_EQ(grads[0][0].abs().max().item<double>(), 0.0);
    }
  }
}

TEST(TargetLogprobs, SecondBackwardThroughARetainedGraphRecomputes) {
  Case c = make_case(9, 6, true);
  auto want = torch::autograd::grad({(plain(c) * c.scale).sum()}, {c.hidden, c.weight});
  at::Tensor loss = (chunked_target_logprobs(c.hidden, c.weight, c.targets, 1024) * c.scale).sum();
  auto first = torch::autograd::grad({loss}, {c.hidden, c.weight}, {}, /*retain_graph=*/true);
  auto second = torch::autograd::grad({loss}, {c.hidden, c.weight});
  for (int i = 0; i < 2; ++i) {
    EXPECT_LT(max_abs_diff(first[i], want[i]), 1e-12) << i;
    EXPECT_LT(max_abs_diff(second[i], want[i]), 1e-12) << i;
  }
}

TEST(TargetLogprobs, NoScoredPositionGivesZerosAndZeroGradients) {
  Case c = make_case(11, 5, false);
  c.targets.fill_(-1);
  at::Tensor got = chunked_target_logprobs(c.hidden, c.weight, c.targets, 4);
  EXPECT_EQ(got.abs().max().item<double>(), 0.0);
  auto grads = torch::autograd::grad({(got * c.scale).sum()}, {c.hidden, c.weight}, {}, false, false,
                                     /*allow_unused=*/true);
  for (const at::Tensor& g : grads) {
    if (g.defined()) EXPECT_EQ(g.abs().max().item<double>(), 0.0);
  }
}

TEST(TargetLogprobs, WeightOnlyGradientAndNoGradUse) {
  Case c = make_case(13, 9, true);
  at::Tensor frozen = c.hidden.detach();  // e.g. a frozen trunk under a trained head
  at::Tensor want_value = plain(c);
  auto want = torch::autograd::grad({(want_value * c.scale).sum()}, {c.weight});
  for (int64_t chunk : {2, 64}) {
    at::Tensor got = chunked_target_logprobs(frozen, c.weight, c.targets, chunk);
    auto grads = torch::autograd::grad({(got * c.scale).sum()}, {c.weight});
    EXPECT_LT(max_abs_diff(grads[0], want[0]), 1e-12) << chunk;
  }
  at::NoGradGuard no_grad;
  at::Tensor got = chunked_target_logprobs(c.hidden, c.weight, c.targets, 64);
  EXPECT_FALSE(got.requires_grad());
  EXPECT_LT(max_abs_diff(got, want_value.detach()), 1e-12);
}
