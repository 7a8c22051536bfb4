// train/optimizer and train/schedule against torch.optim (Debian's Python torch) and
// transformers' schedule formulas (tests/reference/optim_reference.py).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "testkit.h"

using namespace spinlm;
using json = nlohmann::json;

namespace {

std::vector<double> values(const at::Tensor& t) {
  at::Tensor flat = t.detach().reshape(-1).to(at::kDouble).contiguous();
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

struct OptimCase {
  std::vector<at::Tensor> params;
  std::vector<std::vector<at::Tensor>> grads;  // [step][param]
  std::vector<double> lrs;
};

OptimCase make_setup(int steps) {
  at::Generator gen = at::detail::createCPUGenerator(7);
  OptimCase s;
  s.params.push_back(at::randn({3, 4}, gen, at::kFloat));
  s.params.push_back(at::randn({5}, gen, at::kFloat));
  for (int t = 0; t < steps; ++t) {
    std::vector<at::Tensor> g;
    for (auto& p : s.params) g.push_back(at::randn(p.sizes(), gen, at::kFloat) * (t % 3 == 0 ? 0.01 : 1.0));
    s.grads.push_back(g);
    s.lrs.push_back(0.05 * (1.0 + 0.3 * std::sin(t)));
  }
  return s;
}

// Runs steps [from, to) on the parameters.
void run(Optimizer& opt, std::vector<at::Tensor>& params, const OptimCase& s, int from, int to,
         std::vector<std::vector<std::vector<double>>>* history) {
  for (int t = from; t < to; ++t) {
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = s.grads[t][i].clone();
    opt.step(s.lrs[t]);
    if (history) {
      std::vector<std::vector<double>> snapshot;
      for (auto& p : params) snapshot.push_back(values(p));
      history->push_back(snapshot);
    }
  }
}

void compare_with_torch(const std::string& kind, double weight_decay) {
  const int steps = 8;
  OptimCase s = make_setup(steps);
  json spec = {{"kind", kind}, {"weight_decay", weight_decay}, {"lrs", s.lrs}};
  for (auto& p : s.params) {
    spec["params"].push_back(values(p));
    spec["shapes"].push_back(p.sizes().vec());
  }
  for (auto& g : s.grads) {
    json step = json::array();
    for (auto& t : g) step.push_back(values(t));
    spec["grads"].push_back(step);
  }
  spec["schedules"] = json::array();
  const std::string dir = testkit::make_temp_dir("optim-" + kind);
  write_file_atomic(dir + "/in.json", spec.dump());
  auto result = testkit::run_python_reference("optim_reference.py", dir + "/in.json " + dir + "/out.json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  json expected = json::parse(read_file(dir + "/out.json"));

  std::vector<at::Tensor> params;
  for (auto& p : s.params) params.push_back(p.clone().requires_grad_(true));
  OptimizerOptions options;
  options.kind = kind;
  options.weight_decay = weight_decay;
  Optimizer opt(params, options);
  std::vector<std::vector<std::vector<double>>> history;
  run(opt, params, s, 0, steps, &history);
  for (int t = 0; t < steps; ++t) {
    for (size_t i = 0; i < params.size(); ++i) {
      auto want = expected["params"][t][i].get<std::vector<double>>();
      ASSERT_EQ(want.size(), history[t][i].size());
      for (size_t k = 0; k < want.size(); ++k) {
        EXPECT_NEAR(history[t][i][k], want[k], 1e-6 * (1 + std::abs(want[k])))
            << kind << " step " << t << " param " << i << " element " << k;
      }
    }
  }
}

TEST(Optimizer, RmspropMatchesTorch) { compare_with_torch("rmsprop", 0.0); }
TEST(Optimizer, RmspropWithWeightDecayMatchesTorch) { compare_with_torch("rmsprop", 0.1); }
TEST(Optimizer, AdamwMatchesTorch) { compare_with_torch("adamw", 0.01); }
TEST(Optimizer, AdamwNoDecayMatchesTorch) { compare_with_torch("adamw", 0.0); }

TEST(Optimizer, StateSaveLoadContinuesBitExactly) {
  for (std::string kind : {"rmsprop", "adamw"}) {
    OptimCase s = make_setup(6);
    OptimizerOptions options;
    options.kind = kind;
    std::vector<at::Tensor> straight;
    for (auto& p : s.params) straight.push_back(p.clone().requires_grad_(true));
    Optimizer a(straight, options);
    run(a, straight, s, 0, 6, nullptr);

    std::vector<at::Tensor> first;
    for (auto& p : s.params) first.push_back(p.clone().requires_grad_(true));
    Optimizer b(first, options);
    run(b, first, s, 0, 3, nullptr);
    const std::string path = testkit::make_temp_dir("optim-state") + "/optimizer.safetensors";
    b.save_state(path);
    std::vector<at::Tensor> second;
    for (auto& p : first) second.push_back(p.detach().clone().requires_grad_(true));
    Optimizer c(second, options);
    c.load_state(path);
    EXPECT_EQ(c.steps_taken(), 3);
    run(c, second, s, 3, 6, nullptr);
    for (size_t i = 0; i < straight.size(); ++i) EXPECT_TRUE(at::equal(straight[i], second[i])) << kind;

    OptimizerOptions other = options;
    other.kind = kind == "adamw" ? "rmsprop" : "adamw";
    Optimizer wrong(second, other);
    EXPECT_THROW(wrong.load_state(path), Error);
  }
}

TEST(Optimizer, UnknownKindIsAnError) {
  OptimizerOptions options;
  options.kind = "sgd";
  EXPECT_THROW(Optimizer(std::vector<at::Tensor>{at::zeros({2})}, options), Error);
}

TEST(Schedule, MatchesTransformersFormulas) {
  json spec = {{"kind", "rmsprop"}, {"weight_decay", 0.0}, {"params", json::array()}, {"shapes", json::array()},
               {"grads", json::array()}, {"lrs", json::array()}, {"schedules", json::array()}};
  struct Case { std::string kind; int64_t total; double warmup; };
  std::vector<Case> cases = {{"linear", 10, 0.1}, {"linear", 7, 0.0}, {"linear", 20, 0.25},
                             {"cosine", 10, 0.1}, {"cosine", 13, 0.0}, {"cosine", 9, 0.5},
                             {"constant", 10, 0.0}, {"constant", 10, 0.3}, {"linear", 1, 0.1}};
  for (auto& c : cases) {
    spec["schedules"].push_back({{"kind", c.kind}, {"total", c.total}, {"warmup_ratio", c.warmup}, {"base_lr", 5e-7}});
  }
  const std::string dir = testkit::make_temp_dir("schedule");
  write_file_atomic(dir + "/in.json", spec.dump());
  auto result = testkit::run_python_reference("optim_reference.py", dir + "/in.json " + dir + "/out.json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  json expected = json::parse(read_file(dir + "/out.json"));
  for (size_t i = 0; i < cases.size(); ++i) {
    LrSchedule schedule(parse_schedule(cases[i].kind), 5e-7, cases[i].total, cases[i].warmup);
    auto want = expected["schedules"][i].get<std::vector<double>>();
    for (int64_t step = 0; step <= cases[i].total; ++step) {
      EXPECT_NEAR(schedule.lr(step), want[step], 1e-18) << cases[i].kind << " total " << cases[i].total
                                                        << " warmup " << cases[i].warmup << " step " << step;
    }
  }
  // The uclaml/SPIN recipe shape: 10% warmup from 0, peak, then linear decay to 0.
  LrSchedule linear(ScheduleKind::kLinear, 1.0, 100, 0.1);
  EXPECT_EQ(linear.warmup_steps(), 10);
  EXPECT_DOUBLE_EQ(linear.lr(0), 0.0);
  EXPECT_DOUBLE_EQ(linear.lr(10), 1.0);
  EXPECT_DOUBLE_EQ(linear.lr(100), 0.0);
  EXPECT_THROW(parse_schedule("polynomial"), Error);
}

}  // namespace
