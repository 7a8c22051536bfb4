// train/losses: the SPIN pair losses, checked against their formulas and against the
// paper's theory on a tabular policy.
//
// Theory (arXiv 2401.01335, section 5; derived here). Tabular policy p_theta(.|x) =
// softmax(theta_x) over a finite answer set, opponent p_t, data p_data, both with full
// support. The expected logistic loss over pairs y ~ p_data, y' ~ p_t,
//   L(f) = sum_x sum_{y,y'} p_data(y|x) p_t(y'|x) log(1 + exp(-(f(x,y) - f(x,y')))),
// with f = beta log(p_theta/p_t), is convex in f (hence in theta, the log-normaliser cancels
// in f(y) - f(y')), and its gradient vanishes at f = log(p_data/p_t) + c(x):
//   dL/df(a) = -p(a) sum_y' q(y') q(a)p(y') / (q(a)p(y') + p(a)q(y'))
//              + q(a) sum_y p(y) p(a)q(y) / (p(a)q(y) + q(a)p(y)) = 0     (p = p_data, q = p_t).
// So the exact minimiser over the unconstrained tabular policy is
//   p_{t+1}(y|x) = p_t(y|x) (p_data(y|x) / p_t(y|x))^(1/beta) / Z(x)     (the paper's Thm 5.4)
// The regime: logistic loss (hinge has no such minimiser), full support of p_data and p_t
// (a zero in p_data has no finite minimiser; a zero in p_t never appears as y'), exact
// expectation over ALL pairs (including y = y'), and a policy class that can represent
// any log-ratio (tabular). p_data is a fixed point for every beta. Iterating, the centred
// log-ratio e_t = log p_t - log p_data obeys e_{t+1} = (1 - 1/beta) e_t: it converges to
// p_data iff beta > 1/2 (monotonically for beta >= 1; beta = 1 lands on p_data in one step),
// and moves away from p_data for beta < 1/2 (e.g. the paper's beta = 0.1 multiplies the
// error by -9 per exact iteration; in practice training stops far from the exact minimiser).
// The tests assert exactly these statements.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "train/losses.h"

using namespace spinlm;

namespace {

at::Tensor d(const std::vector<double>& v) { return at::tensor(v, at::kDouble); }

TEST(Losses, FormulasAtKnownPoints) {
  // policy/ref chosen so that h = (pr - rr) - (pg - rg) takes the values below.
  const std::vector<double> h = {-3.0, -0.5, 0.0, 0.7, 4.0};
  at::Tensor pr = d(h), zeros = at::zeros({5}, at::kDouble);
  const double beta = 0.5;
  for (SpinLoss loss : {SpinLoss::kLogistic, SpinLoss::kHinge, SpinLoss::kExponential, SpinLoss::kIpo}) {
    PairLossOutput out = spin_pair_loss(loss, beta, pr, zeros, zeros, zeros);
    for (size_t i = 0; i < h.size(); ++i) {
      const double u = beta * h[i];
      double expected = 0;
      switch (loss) {
        case SpinLoss::kLogistic: expected = std::log1p(std::exp(-u)); break;
        case SpinLoss::kHinge: expected = std::max(0.0, 1.0 - u); break;
        case SpinLoss::kExponential: expected = std::exp(-u); break;
        case SpinLoss::kIpo: expected = std::pow(h[i] - 1.0 / (2 * beta), 2); break;
      }
      EXPECT_NEAR(out.losses[i].item<double>(), expected, 1e-12) << spin_loss_name(loss) << " h=" << h[i];
      EXPECT_NEAR(out.rewards_real[i].item<double>(), beta * h[i], 1e-12);
    }
  }
  PairLossOutput at_zero = spin_pair_loss(SpinLoss::kLogistic, 0.1, zeros, zeros, zeros, zeros);
  EXPECT_NEAR(at_zero.losses[0].item<double>(), std::log(2.0), 1e-15);
  // Stable far in the tails.
  PairLossOutput tails = spin_pair_loss(SpinLoss::kLogistic, 1.0, d({-800.0, 800.0}), d({0.0, 0.0}),
                                        d({0.0, 0.0}), d({0.0, 0.0}));
  EXPECT_NEAR(tails.losses[0].item<double>(), 800.0, 1e-9);
  EXPECT_NEAR(tails.losses[1].item<double>(), 0.0, 1e-12);
}

TEST(Losses, NamesParseAndUnknownIsAnError) {
  EXPECT_EQ(parse_spin_loss("sigmoid"), SpinLoss::kLogistic);
  EXPECT_EQ(parse_spin_loss("ipo"), SpinLoss::kIpo);
  EXPECT_THROW(parse_spin_loss("kto"), Error);
}

// Expected logistic loss of the tabular policy theta [X, K] against data p and opponent q
// ([X, K] probabilities), driving the real loss code over every (x, y, y') triple.
at::Tensor expected_loss(const at::Tensor& theta, const at::Tensor& p, const at::Tensor& q, double beta) {
  const int64_t X = theta.size(0), K = theta.size(1);
  at::Tensor logp = at::log_softmax(theta, 1);  // [X, K]
  at::Tensor logq = q.log();
  // Index grids: y over dim 1, y' over dim 2.
  at::Tensor policy_real = logp.unsqueeze(2).expand({X, K, K}).reshape(-1);
  at::Tensor policy_gen = logp.unsqueeze(1).expand({X, K, K}).reshape(-1);
  at::Tensor ref_real = logq.unsqueeze(2).expand({X, K, K}).reshape(-1);
  at::Tensor ref_gen = logq.unsqueeze(1).expand({X, K, K}).reshape(-1);
  at::Tensor weight = (p.unsqueeze(2) * q.unsqueeze(1)).reshape(-1);  // p(y) q(y')
  PairLossOutput out = spin_pair_loss(SpinLoss::kLogistic, beta, policy_real, policy_gen, ref_real, ref_gen);
  return (out.losses * weight).sum() / static_cast<double>(X);
}

// Minimises expected_loss by Newton's method (Hessian by double backward, pseudo-inverse for
// the per-prompt shift invariance) with backtracking; returns the policy probabilities.
at::Tensor minimise(const at::Tensor& p, const at::Tensor& q, double beta) {
  at::Tensor theta = q.log().clone().requires_grad_(true);  // SPIN starts from p_t
  const int64_t size = theta.numel();
  for (int iter = 0; iter < 200; ++iter) {
    at::Tensor loss = expected_loss(theta, p, q, beta);
    at::Tensor grad = torch::autograd::grad({loss}, {theta}, {}, true, true)[0].reshape(-1);
    if (grad.abs().max().item<double>() < 1e-14) break;
    at::Tensor hessian = at::zeros({size, size}, at::kDouble);
    for (int64_t i = 0; i < size; ++i) {
      hessian[i] = torch::autograd::grad({grad[i]}, {theta}, {}, true, false)[0].reshape(-1);
    }
    at::Tensor step = at::matmul(at::linalg_pinv(hessian, 1e-10, true), grad.detach()).reshape(theta.sizes());
    const double current = loss.item<double>();
    double scale = 1.0;
    at::NoGradGuard no_grad;
    at::Tensor base = theta.detach().clone();
    while (scale > 1e-6) {
      at::Tensor candidate = base - scale * step;
      if (expected_loss(candidate, p, q, beta).item<double>() <= current + 1e-16) {
        base = candidate;
        break;
      }
      scale *= 0.5;
    }
    theta = base.requires_grad_(true);
    if (scale <= 1e-6) break;
  }
  return at::softmax(theta.detach(), 1);
}

at::Tensor closed_form(const at::Tensor& p, const at::Tensor& q, double beta) {
  at::Tensor unnormalised = q * (p / q).pow(1.0 / beta);
  return unnormalised / unnormalised.sum(1, true);
}

double total_variation(const at::Tensor& a, const at::Tensor& b) {
  return 0.5 * (a - b).abs().sum(1).mean().item<double>();
}

// Two prompts, four answers each; full support everywhere.
at::Tensor data_distribution() {
  return at::tensor({0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.4, 0.1}, at::kDouble).reshape({2, 4});
}
at::Tensor start_distribution() {
  return at::tensor({0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4}, at::kDouble).reshape({2, 4});
}

TEST(SpinTheory, DataDistributionIsAFixedPoint) {
  const at::Tensor kData = data_distribution(), kStart = start_distribution();
  for (double beta : {0.1, 0.5, 2.0}) {
    at::Tensor theta = kData.log().clone().requires_grad_(true);
    at::Tensor loss = expected_loss(theta, kData, kData, beta);
    at::Tensor grad = torch::autograd::grad({loss}, {theta})[0];
    EXPECT_LT(grad.abs().max().item<double>(), 1e-12) << "beta " << beta;
    at::Tensor next = minimise(kData, kData, beta);
    EXPECT_LT((next - kData).abs().max().item<double>(), 1e-9) << "beta " << beta;
  }
}

TEST(SpinTheory, OneIterationLandsOnTheClosedForm) {
  const at::Tensor kData = data_distribution(), kStart = start_distribution();
  for (double beta : {0.25, 0.5, 1.0, 2.0, 5.0}) {
    at::Tensor next = minimise(kData, kStart, beta);
    at::Tensor expected = closed_form(kData, kStart, beta);
    EXPECT_LT((next - expected).abs().max().item<double>(), 1e-4)
        << "beta " << beta << "\nminimiser " << next << "\nclosed form " << expected;
  }
  // beta = 1: one exact iteration reaches p_data itself.
  EXPECT_LT((minimise(kData, kStart, 1.0) - kData).abs().max().item<double>(), 1e-6);
}

TEST(SpinTheory, IterationsApproachDataForBetaAboveOneHalf) {
  const at::Tensor kData = data_distribution(), kStart = start_distribution();
  // beta = 2: e_{t+1} = e_t / 2, so total variation to p_data falls at every iteration.
  at::Tensor p = kStart.clone();
  double tv = total_variation(p, kData);
  for (int t = 0; t < 8; ++t) {
    at::Tensor next = minimise(kData, p, 2.0);
    const double next_tv = total_variation(next, kData);
    EXPECT_LT(next_tv, tv) << "iteration " << t;
    // The centred log-ratio halves (the derivation above).
    at::Tensor e = p.log() - kData.log(), e_next = next.log() - kData.log();
    e = e - e.mean(1, true);
    e_next = e_next - e_next.mean(1, true);
    EXPECT_LT((e_next - 0.5 * e).abs().max().item<double>(), 1e-5) << "iteration " << t;
    p = next;
    tv = next_tv;
  }
  EXPECT_LT(tv, 2e-3);
}

TEST(SpinTheory, ExactIterationsMoveAwayFromDataForBetaBelowOneHalf) {
  // beta = 0.4: e_{t+1} = -1.5 e_t; the exact minimiser overshoots p_data further each time.
  at::Tensor p = at::tensor({0.3, 0.25, 0.25, 0.2, 0.2, 0.3, 0.3, 0.2}, at::kDouble).reshape({2, 4});
  at::Tensor data = at::tensor({0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25}, at::kDouble).reshape({2, 4});
  double tv = total_variation(p, data);
  for (int t = 0; t < 2; ++t) {
    at::Tensor next = minimise(data, p, 0.4);
    EXPECT_LT((next - closed_form(data, p, 0.4)).abs().max().item<double>(), 1e-4);
    const double next_tv = total_variation(next, data);
    EXPECT_GT(next_tv, tv) << "iteration " << t;
    p = next;
    tv = next_tv;
  }
}

}  // namespace
