// Device and precision options of training (issue 9), checked on the CPU:
//   - gradient checkpointing (model/recompute.h): gradients equal those without it, and the
//     peak memory of a training run on long sequences is lower (the child's max RSS);
//   - --device / --dtype / --optimizer-state-dtype: defaults, clear errors on a CPU-only
//     build, explicit cpu/fp32 equal to the default, bf16 on the CPU with fp32 log-prob sums
//     and fp32 master weights (closed-form RMSprop updates below bf16's spacing).
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/device_choice.h"
#include "model/hf_model.h"
#include "model/recompute.h"
#include "model/transformer.h"
#include "train/optimizer.h"
#include "train/spin_trainer.h"
#include "train/train_device.h"
#include "testkit.h"

using namespace spinlm;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kVocab = testkit::kTinyVocab;
constexpr int64_t kEos = testkit::kTinyEos;

ModelConfig tiny_config(int64_t hidden = 32, int64_t layers = 2) {
  return testkit::tiny_llama_config(hidden, layers, /*max_positions=*/4096);
}

// Random weights large enough that predictions are far from uniform.
Transformer random_model(uint64_t seed, at::ScalarType dtype = at::kFloat, int64_t hidden = 32,
                         int64_t layers = 2) {
  Transformer model(tiny_config(hidden, layers), at::kCPU, dtype);
  testkit::randomize_parameters(model, seed, 0.2);
  return model;
}

// A right-padded batch of random ids: rows of lengths, padded to the longest.
std::pair<at::Tensor, at::Tensor> random_batch(const std::vector<int64_t>& lengths, uint64_t seed) {
  const int64_t B = static_cast<int64_t>(lengths.size());
  const int64_t T = *std::max_element(lengths.begin(), lengths.end());
  at::Generator generator = at::detail::createCPUGenerator(seed);
  at::Tensor ids = at::randint(3, kVocab, {B, T}, generator, at::kLong);
  at::Tensor mask = at::zeros({B, T}, at::kLong);
  for (int64_t b = 0; b < B; ++b) mask[b].narrow(0, 0, lengths[b]).fill_(1);
  return {ids, mask};
}

// Gradients of sum(token_logprobs) with respect to every parameter, in a fixed order.
std::vector<at::Tensor> parameter_gradients(Transformer& model, const at::Tensor& ids, const at::Tensor& mask,
                                            double* value = nullptr) {
  model.set_requires_grad(true);
  for (at::Tensor& p : model.parameters()) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
  at::Tensor loss = model.token_logprobs(ids, mask).sum();
  loss.backward();
  if (value) *value = loss.item<double>();
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : model.parameters()) grads.push_back(p.grad().clone());
  return grads;
}

std::vector<int64_t> random_ids(std::mt19937_64& rng, int64_t length) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < length; ++i) ids.push_back(3 + static_cast<int64_t>(rng() % (kVocab - 3)));
  return ids;
}

// SPIN pairs with token ids (prompt, real, generated of the given lengths, +-2).
std::string write_pairs(const std::string& dir, int count, int64_t prompt, int64_t response, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<json> rows;
  for (int i = 0; i < count; ++i) {
    std::vector<int64_t> p = random_ids(rng, prompt + static_cast<int64_t>(rng() % 3));
    p.insert(p.begin(), 1);
    rows.push_back({{"prompt_ids", p},
                    {"real_ids", random_ids(rng, response + static_cast<int64_t>(rng() % 3))},
                    {"generated_ids", random_ids(rng, response + static_cast<int64_t>(rng() % 3))}});
  }
  const std::string path = dir + "/pairs.jsonl";
  write_jsonl_atomic(path, rows);
  return path;
}

SpinTrainOptions spin_options(const std::string& model, const std::string& data, const std::string& out) {
  SpinTrainOptions o;
  o.loop.model_dir = model;
  o.loop.output_dir = out;
  o.data_files = {data};
  o.loop.batch_size = 4;
  o.loop.micro_batch_size = 2;
  o.loop.epochs = 1;
  o.loop.logging_steps = 1;
  o.loop.learning_rate = 1e-3;
  o.loop.warmup_ratio = 0.0;
  o.truncation = {64, 32};
  return o;
}

double max_abs_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Max resident set size (KiB) of `sh -c "exec COMMAND"` run as a child, and its exit code.
std::pair<long, int> child_peak_rss_kb(const std::string& command) {
  const std::string line = "exec " + command + " >/dev/null 2>&1";
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  return {usage.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

}  // namespace

// The generic function against plain autograd in fp64: same value, same gradients.
TEST(Recompute, MatchesPlainAutogradOnAFunction) {
  at::Generator generator = at::detail::createCPUGenerator(5);
  at::Tensor x0 = at::randn({3, 4}, generator, at::kDouble);
  at::Tensor w = at::randn({4, 5}, generator, at::kDouble).requires_grad_(true);
  at::Tensor b = at::randn({5}, generator, at::kDouble).requires_grad_(true);
  at::Tensor unused = at::randn({2}, generator, at::kDouble).requires_grad_(true);
  auto f = [&](const at::Tensor& x) { return at::tanh(at::mm(x, w) + b) * x.sum(); };

  at::Tensor x1 = x0.clone().requires_grad_(true);
  at::Tensor plain = f(x1);
  auto expected = torch::autograd::grad({(plain * plain).sum()}, {x1, w, b});

  at::Tensor x2 = x0.clone().requires_grad_(true);
  at::Tensor out = recompute(f, x2 * 1.0, {w, b, unused, at::Tensor()});
  EXPECT_TRUE(at::allclose(out, plain, 0, 0));
  auto got = torch::autograd::grad({(out * out).sum()}, {x2, w, b, unused}, {}, false, false, true);
  EXPECT_LT(max_abs_difference(got[0], expected[0]), 1e-12);
  EXPECT_LT(max_abs_difference(got[1], expected[1]), 1e-12);
  EXPECT_LT(max_abs_difference(got[2], expected[2]), 1e-12);
  EXPECT_FALSE(got[3].defined() && got[3].abs().sum().item<double>() != 0.0);
}

// Gradient checkpointing in the transformer: every parameter's gradient equals the one
// without it, on a padded batch; without grad the flag changes nothing. In fp64, so that the
// comparison (1e-9 relative) is not blurred by multi-threaded BLAS summing in another order.
TEST(Recompute, TransformerGradientsEqualWithoutCheckpointing) {
  Transformer model = random_model(11, at::kDouble);
  auto [ids, mask] = random_batch({9, 6, 12}, 12);
  double plain_value = 0, checkpointed_value = 0;
  std::vector<at::Tensor> plain = parameter_gradients(model, ids, mask, &plain_value);
  model.set_gradient_checkpointing(true);
  std::vector<at::Tensor> checkpointed = parameter_gradients(model, ids, mask, &checkpointed_value);
  EXPECT_NEAR(plain_value, checkpointed_value, 1e-9 * std::abs(plain_value));
  ASSERT_EQ(plain.size(), checkpointed.size());
  const auto& names = model.named_parameters();
  for (size_t i = 0; i < plain.size(); ++i) {
    const double scale = std::max(1.0, plain[i].abs().max().item<double>());
    EXPECT_LT(max_abs_difference(plain[i], checkpointed[i]), 1e-9 * scale) << names[i].first;
    EXPECT_GT(plain[i].abs().max().item<double>(), 0.0) << names[i].first;
  }
  at::NoGradGuard no_grad;
  at::Tensor with = model.forward_hidden(ids, mask);
  model.set_gradient_checkpointing(false);
  EXPECT_TRUE(at::equal(with, model.forward_hidden(ids, mask)));
}

// `spinlm train --gradient-checkpointing` on ~900-token sequences peaks at less memory than
// the same run without it, and trains to the same weights. (One micro-batch of 2 pairs: the
// run's time goes into attention elements, which are also what checkpointing saves.)
TEST(Recompute, TrainingPeakMemoryIsLowerOnLongSequences) {
  const std::string dir = testkit::make_temp_dir("device-ckpt-memory");
  const std::string model = dir + "/model";
  save_model(random_model(21, at::kFloat, 64, 4), model);
  const std::string data = write_pairs(dir, 2, 100, 800, 22);
  auto run = [&](const std::string& out, bool checkpointing) {
    const std::string command = testkit::shell_quote(testkit::spinlm_binary()) + " train --model " +
                                testkit::shell_quote(model) + " --data " + testkit::shell_quote(data) +
                                " --output " + testkit::shell_quote(dir + "/" + out) +
                                " --batch-size 2 --micro-batch-size 2 --epochs 1 --max-length 2048"
                                " --max-prompt-length 512 --learning-rate 1e-3 --device cpu --dtype fp32" +
                                (checkpointing ? " --gradient-checkpointing" : "");
    return child_peak_rss_kb(command);
  };
  auto [plain_kb, plain_rc] = run("plain", false);
  auto [ckpt_kb, ckpt_rc] = run("checkpointed", true);
  ASSERT_EQ(plain_rc, 0);
  ASSERT_EQ(ckpt_rc, 0);
  std::printf("peak RSS of spinlm train: %ld KiB without, %ld KiB with --gradient-checkpointing\n", plain_kb,
              ckpt_kb);
  // Without checkpointing each of the 4 layers keeps the fp32 attention probabilities
  // [4, 2, 2*903, 903] (~50 MB) and more; with it one layer's at a time (measured here:
  // 828 vs 560 MB with 2 micro-batches of 1100-token pairs).
  EXPECT_LT(ckpt_kb + 80 * 1024, plain_kb) << "peak RSS " << ckpt_kb << " KiB with, " << plain_kb << " KiB without";
  SafetensorsFolder a(dir + "/plain"), b(dir + "/checkpointed");
  for (const std::string& name : a.names()) {
    EXPECT_LT(max_abs_difference(a.tensor(name), b.tensor(name)), 1e-5) << name;
  }
}

TEST(DeviceChoice, DefaultsFollowTheDevice) {
  EXPECT_EQ(choose_dtype("", at::Device(at::kCPU)), at::kFloat);
  EXPECT_EQ(choose_dtype("auto", at::Device(at::kCUDA, 0)), at::kBFloat16);
  EXPECT_EQ(choose_dtype("fp32", at::Device(at::kCUDA, 0)), at::kFloat);
  EXPECT_EQ(choose_dtype("bf16", at::Device(at::kCPU)), at::kBFloat16);
  EXPECT_EQ(choose_device("").is_cuda(), at::hasCUDA());
  EXPECT_EQ(choose_device("cpu"), at::Device(at::kCPU));
  EXPECT_THROW(choose_dtype("fp8", at::Device(at::kCPU)), Error);
  TrainLoopOptions o;
  o.dtype = "fp16";
  EXPECT_THROW(resolve_train_device(o), Error);  // no loss scaling: fp16 training refused
  o.dtype = "bf16";
  o.optimizer.state_dtype = "fp16";
  EXPECT_THROW(resolve_train_device(o), Error);
}

// On a libtorch without CUDA, --device cuda is a clear user error, not a crash.
TEST(DeviceChoice, CudaOnACpuBuildIsAClearError) {
  if (at::hasCUDA()) GTEST_SKIP() << "this build has CUDA";
  const std::string dir = testkit::make_temp_dir("device-cuda-error");
  for (const std::string command : {"train --data x.jsonl", "sft --data x.jsonl"}) {
    testkit::CommandResult r = testkit::run_spinlm(command + " --model " + testkit::shell_quote(dir) +
                                                   " --output " + testkit::shell_quote(dir + "/out") +
                                                   " --device cuda");
    EXPECT_NE(r.exit_code, 0) << command;
    EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("without CUDA"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("terminate"), std::string::npos) << r.output;
  }
  testkit::CommandResult r = testkit::run_spinlm("train --data x.jsonl --model " + testkit::shell_quote(dir) +
                                                 " --output " + testkit::shell_quote(dir + "/out") +
                                                 " --device cpu --dtype fp16");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("fp16"), std::string::npos) << r.output;
}

// --device cpu --dtype fp32 trains to exactly the weights of the default options here.
TEST(DeviceChoice, ExplicitCpuFp32EqualsTheDefault) {
  if (at::hasCUDA()) GTEST_SKIP() << "the default is cuda on this build";
  const std::string dir = testkit::make_temp_dir("device-explicit");
  save_model(random_model(31), dir + "/model");
  const std::string data = write_pairs(dir, 8, 4, 5, 32);
  train_spin(spin_options(dir + "/model", data, dir + "/default"));
  SpinTrainOptions o = spin_options(dir + "/model", data, dir + "/explicit");
  o.loop.device = "cpu";
  o.loop.dtype = "fp32";
  o.loop.optimizer.state_dtype = "fp32";
  train_spin(o);
  SafetensorsFolder a(dir + "/default"), b(dir + "/explicit");
  for (const std::string& name : a.names()) EXPECT_TRUE(at::equal(a.tensor(name), b.tensor(name))) << name;
  SafetensorsFolder first(dir + "/model");
  EXPECT_FALSE(at::equal(first.tensor("lm_head.weight"), a.tensor("lm_head.weight")));  // it did train
}

// bf16 model on the CPU: log-probs are fp32 tensors (norms, softmax and the log-softmax in
// fp32) within bf16's error of the fp64 model's.
TEST(Bf16, LogprobsAreFp32AndCloseToFp64) {
  Transformer exact = random_model(41, at::kDouble);
  Transformer half(exact.config(), at::kCPU, at::kBFloat16);
  {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < exact.named_parameters().size(); ++i) {
      const_cast<at::Tensor&>(half.named_parameters()[i].second).copy_(exact.named_parameters()[i].second);
    }
  }
  auto [ids, mask] = random_batch({16, 10, 13}, 42);
  at::NoGradGuard no_grad;
  at::Tensor reference = exact.token_logprobs(ids, mask);  // [B, T] fp64
  at::Tensor got = half.token_logprobs(ids, mask);         // [B, T] fp32
  EXPECT_EQ(got.scalar_type(), at::kFloat);
  EXPECT_EQ(half.forward_hidden(ids, mask).scalar_type(), at::kBFloat16);
  at::Tensor ref_sums = reference.sum(1), got_sums = got.to(at::kDouble).sum(1);  // [B]
  for (int64_t b = 0; b < ref_sums.size(0); ++b) {
    const double r = ref_sums[b].item<double>(), g = got_sums[b].item<double>();
    EXPECT_LT(std::abs(g - r), 0.03 * std::abs(r)) << "row " << b << ": " << g << " vs " << r;
    EXPECT_GT(std::abs(g - r), 0.0) << "bf16 should not be exact";
  }
}

// RMSprop's first steps on a constant gradient, in closed form: step t moves a weight by
// lr / sqrt(1 - alpha^t) (|g| >> eps). On a bf16 weight of 0.25 (spacing 2^-9 there) 100
// steps of lr 1e-5 add up to ~2.0e-3: the fp32 master copy keeps every step and the weight
// lands on the nearest bf16 value; with bf16 state (no master) each step rounds away.
TEST(Bf16, MasterWeightsKeepUpdatesBelowTheBf16Spacing) {
  const double lr = 1e-5, alpha = 0.99;
  double expected_shift = 0;
  for (int t = 1; t <= 100; ++t) expected_shift += lr / (std::sqrt(1 - std::pow(alpha, t)) + 1e-8);
  for (const std::string state : {"fp32", "bf16"}) {
    at::Tensor p = at::full({4}, 0.25, at::kBFloat16).requires_grad_(true);
    p.mutable_grad() = at::tensor({1.0, -1.0, 2.0, -0.5}, at::kFloat).to(at::kBFloat16);
    OptimizerOptions options;
    options.state_dtype = state;
    Optimizer optimizer({p}, options);
    for (int t = 0; t < 100; ++t) optimizer.step(lr);
    at::Tensor w = p.detach().to(at::kDouble);
    if (state == "fp32") {
      at::Tensor master;
      for (auto& [name, tensor] : optimizer.state_tensors()) {
        if (name == "state.0.master") master = tensor;
        if (name == "state.0.square_avg") EXPECT_EQ(tensor.scalar_type(), at::kFloat);
      }
      ASSERT_TRUE(master.defined());
      EXPECT_NEAR(master[0].item<double>(), 0.25 - expected_shift, 1e-6);
      EXPECT_NEAR(master[1].item<double>(), 0.25 + expected_shift, 1e-6);
      EXPECT_NEAR(master[3].item<double>(), 0.25 + expected_shift, 1e-6);
      // Rounded to bf16: 0.25 -+ 2.0e-3 -> 0.248046875, 0.251953125 (checked with torch).
      EXPECT_EQ(w[0].item<double>(), 0.248046875);
      EXPECT_EQ(w[1].item<double>(), 0.251953125);
    } else {
      for (auto& [name, tensor] : optimizer.state_tensors()) {
        EXPECT_NE(name, "state.0.master");
        if (name == "state.0.square_avg") EXPECT_EQ(tensor.scalar_type(), at::kBFloat16);
      }
      EXPECT_TRUE(at::equal(w, at::full({4}, 0.25, at::kDouble)));
    }
  }
}

// SPIN training of a bf16 model on the CPU: the first step is the identity (policy ==
// opponent, loss ln 2), the saved model is bf16, the optimizer state holds fp32 masters and
// the run resumes to the same weights.
TEST(Bf16, SpinTrainingRunsAndResumes) {
  const std::string dir = testkit::make_temp_dir("device-bf16-train");
  save_model(random_model(51), dir + "/model");
  const std::string data = write_pairs(dir, 8, 4, 5, 52);
  SpinTrainOptions o = spin_options(dir + "/model", data, dir + "/straight");
  o.loop.dtype = "bf16";
  o.loop.save_steps = 1;
  SpinTrainResult result = train_spin(o);
  EXPECT_EQ(result.steps, 2);
  std::vector<json> metrics;
  for (auto& row : read_jsonl(dir + "/straight/metrics.jsonl")) metrics.push_back(row.value);
  ASSERT_GE(metrics.size(), 2u);
  EXPECT_NEAR(metrics[0]["loss"].get<double>(), std::log(2.0), 1e-6);
  EXPECT_TRUE(std::isfinite(metrics[1]["loss"].get<double>()));
  json config = json::parse(std::ifstream(dir + "/straight/config.json"));
  EXPECT_EQ(config["torch_dtype"], "bfloat16");
  SafetensorsFile state(dir + "/straight/epoch-1/optimizer.safetensors");
  EXPECT_TRUE(state.contains("state.0.master"));

  SpinTrainOptions r = o;
  r.loop.output_dir = dir + "/resumed";
  r.loop.stop_after_steps = 1;
  train_spin(r);
  r.loop.resume = true;
  r.loop.stop_after_steps = 0;
  train_spin(r);
  SafetensorsFolder a(dir + "/straight"), b(dir + "/resumed");
  for (const std::string& name : a.names()) {
    EXPECT_TRUE(at::equal(a.tensor(name, at::kBFloat16), b.tensor(name, at::kBFloat16))) << name;
  }
}

// `spinlm version` says what this build can do on a GPU. CUDA graphs are compiled in only
// against a libtorch with CUDA libraries (CMakeLists.txt), never against Debian's CPU one,
// which ships the CUDA headers but not the libraries.
TEST(DeviceVersion, ReportsGpuCapabilitiesOfThisBuild) {
  auto result = testkit::run_spinlm("version");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  if (!at::hasCUDA()) {
    EXPECT_NE(result.output.find("cuda devices 0\n"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("cuda graphs no\n"), std::string::npos) << result.output;
  } else {
    EXPECT_EQ(result.output.find("cuda devices 0\n"), std::string::npos) << result.output;
  }
  EXPECT_NE(result.output.find("fused attention (sdpa) "), std::string::npos) << result.output;
}
