// One SPIN optimizer step on a Qwen2-0.5B-shape model (hidden 896, MLP 4864, 24 layers, 14
// heads, 2 KV heads, vocab 151936, tied embeddings; random weights; fp32; 2 threads), a
// micro-batch of 2 pairs of 256 tokens (128 prompt + 128 response tokens each side):
//   one-model   spinlm's way: reference log-probs precomputed (cached), only the policy in memory
//   two-models  a frozen copy of the model computes the reference log-probs inside the step
//               (TRL's ref_model), for the peak-memory comparison
//   python      the same step written in Python torch (bench/train_step.py)
//   lora        one-model with the base frozen and LoRA adapters trained (model/lora.h): r 16,
//               alpha 32, dropout 0.05, on q/k/v/o and the MLP (all-linear), only A and B in
//               the optimizer
// Each runs in its own child process so its peak RSS (getrusage maxrss) is its own; each step
// also reports its CPU seconds (user + system, all threads) and the process's peak RSS so far,
// so the first step (optimizer state not yet touched by Python) and the steady state differ.
// Usage: bench_train [--steps N] [--only one|two|python|lora] [--layers L] [--chunk N] [--gradient-checkpointing 0|1]
//                    [--lora-dropout P]
//   N timed steps after one untimed step (default 1; 0: time the single first step);
//   --layers: fewer decoder layers for quick probes (default 24); --chunk: LM-head chunk;
//   --lora-dropout P: the lora variant's dropout (default 0.05).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/threads.h"
#include "data/pairs.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/transformer.h"
#include "train/losses.h"
#include "train/optimizer.h"
#include "train/reference_logprobs.h"
#include "train/spin_trainer.h"
#include "train/train_loop.h"

using namespace spinlm;

namespace {

struct BenchOptions {
  int steps = 1;
  int layers = 24;
  int64_t chunk = 1024;
  std::string only;  // empty: every variant
  bool checkpointing = false;  // --gradient-checkpointing 1: the trained model recomputes each layer
  double lora_dropout = 0.05;  // --lora-dropout P: the lora variant's dropout
};

ModelConfig qwen2_05b_shape(int layers) {
  nlohmann::json c = {{"model_type", "qwen2"},          {"vocab_size", 151936},     {"hidden_size", 896},
                      {"intermediate_size", 4864},      {"num_hidden_layers", layers},  {"num_attention_heads", 14},
                      {"num_key_value_heads", 2},       {"rms_norm_eps", 1e-6},     {"rope_theta", 1000000.0},
                      {"tie_word_embeddings", true},    {"max_position_embeddings", 32768},
                      {"bos_token_id", 151643},         {"eos_token_id", 151645}};
  return ModelConfig::from_json(c, "bench config");
}

std::vector<TokenPair> make_pairs() {
  std::vector<TokenPair> pairs(2);
  uint64_t x = 12345;
  auto next = [&] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int64_t>((x >> 33) % 151000);
  };
  for (auto& p : pairs) {
    for (int i = 0; i < 128; ++i) p.prompt.push_back(next());
    for (int i = 0; i < 128; ++i) p.real.push_back(next());
    for (int i = 0; i < 128; ++i) p.generated.push_back(next());
  }
  return pairs;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// User + system CPU seconds of this process (all threads) and its peak RSS in GiB.
double cpu_seconds() {
  struct rusage u;
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
double peak_rss_gib() {
  struct rusage u;
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);
}

// Runs in a child: prints "mode seconds_per_step cpu_seconds_per_step".
int run_cpp(bool two_models, const BenchOptions& bench, bool lora = false) {
  const int steps = bench.steps;
  const char* name = lora ? "lora" : two_models ? "two-models" : "one-model";
  setup_threads(2);
  ModelConfig config = qwen2_05b_shape(bench.layers);
  Transformer model(config);
  model.init_random(1);
  std::vector<TokenPair> pairs = make_pairs();
  std::vector<const TokenPair*> ptrs = {&pairs[0], &pairs[1]};
  std::unique_ptr<Transformer> reference_model;
  ReferenceLogprobs cached;
  if (two_models) {
    reference_model = std::make_unique<Transformer>(config);
    reference_model->init_random(1);
  } else {
    cached = compute_reference_logprobs(model, pairs, MicroBatching{2}, bench.chunk, "reference");
  }
  std::fprintf(stderr, "  %s before training: peak RSS %.2f GiB\n", name, peak_rss_gib());
  if (lora) {
    LoraOptions l;
    l.r = 16;
    l.alpha = 32;
    l.dropout = bench.lora_dropout;
    l.targets = LoraTargets::parse("all-linear");
    auto adapters = std::make_shared<LoraAdapters>(config, l);
    adapters->init(1);
    model.set_lora(adapters);
  }
  model.set_gradient_checkpointing(bench.checkpointing);
  std::vector<at::Tensor> params = model.trainable_parameters();
  OptimizerOptions options;  // rmsprop
  Optimizer optimizer(params, options);
  double total = 0, total_cpu = 0;
  for (int s = 0; s < steps + 1; ++s) {
    const double start = now(), start_cpu = cpu_seconds();
    std::vector<double> rr, rg;
    if (two_models) {
      at::NoGradGuard no_grad;
      PairScores r = score_pairs(*reference_model, ptrs, bench.chunk);
      rr = {r.real[0].item<double>(), r.real[1].item<double>()};
      rg = {r.generated[0].item<double>(), r.generated[1].item<double>()};
    } else {
      rr = cached.real;
      rg = cached.generated;
    }
    optimizer.zero_grad();
    SpinMicroOutput out = spin_micro_loss(model, ptrs, rr, rg, SpinLoss::kLogistic, 0.1, 0.0, 2.0,
                                          bench.chunk);
    const double rss_forward = peak_rss_gib();
    out.loss.backward();
    const double rss_backward = peak_rss_gib();
    const double norm = global_grad_norm(params);
    clip_gradients(params, norm, 1.0);
    optimizer.step(5e-7);
    const double seconds = now() - start, cpu = cpu_seconds() - start_cpu;
    std::fprintf(stderr,
                 "  %s step %d: %.2f s, %.2f CPU s (loss %.6f); peak RSS so far after forward %.2f, "
                 "backward %.2f, optimizer %.2f GiB\n",
                 name, s, seconds, cpu, out.metrics["loss"], rss_forward, rss_backward, peak_rss_gib());
    if (s > 0 || steps == 0) {
      total += seconds;
      total_cpu += cpu;
    }
  }
  std::printf("%s %.3f s/step %.3f CPU s/step\n", name, total / std::max(1, steps), total_cpu / std::max(1, steps));
  std::fflush(stdout);
  return 0;
}

struct ChildResult {
  int status = -1;
  double maxrss_gib = 0;
};

template <class F>
ChildResult in_child(F body) {
  std::fflush(stdout);
  pid_t pid = ::fork();
  if (pid == 0) std::_Exit(body());
  ChildResult r;
  struct rusage usage;
  ::wait4(pid, &r.status, 0, &usage);
  r.maxrss_gib = static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // KiB -> GiB
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions bench;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--steps") == 0) {
      bench.steps = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--layers") == 0) {
      bench.layers = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--chunk") == 0) {
      bench.chunk = std::atoll(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--only") == 0) {
      bench.only = argv[i + 1];
    } else if (std::strcmp(argv[i], "--lora-dropout") == 0) {
      bench.lora_dropout = std::atof(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--gradient-checkpointing") == 0) {
      bench.checkpointing = std::atoi(argv[i + 1]) != 0;
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  auto wanted = [&](const char* variant) { return bench.only.empty() || bench.only == variant; };
  std::printf("SPIN step, Qwen2-0.5B shape (%d layers), fp32, 2 threads, micro-batch 2 pairs x 256 tokens, "
              "LM-head chunk %lld, %d timed step(s)\n",
              bench.layers, static_cast<long long>(bench.chunk), bench.steps);
  ChildResult one, two, py, lora;
  one.status = two.status = py.status = lora.status = 0;
  if (wanted("one")) {
    one = in_child([&] { return run_cpp(false, bench); });
    std::printf("one-model peak RSS %.2f GiB\n", one.maxrss_gib);
  }
  if (wanted("two")) {
    two = in_child([&] { return run_cpp(true, bench); });
    std::printf("two-models peak RSS %.2f GiB\n", two.maxrss_gib);
  }
  if (wanted("lora")) {
    lora = in_child([&] { return run_cpp(false, bench, /*lora=*/true); });
    std::printf("lora peak RSS %.2f GiB\n", lora.maxrss_gib);
  }
  // bench/run.sh runs from the repository root; SPINLM_SOURCE_DIR overrides.
  const char* root = std::getenv("SPINLM_SOURCE_DIR");
  const std::string script = std::string(root ? root : ".") + "/bench/train_step.py";
  if (wanted("python")) {
    py = in_child([&] {
      std::string s = std::to_string(bench.steps), l = std::to_string(bench.layers);
      // The same BLAS as spinlm (OpenBLAS's OpenMP build, see CMakeLists.txt) for a fair comparison.
      const std::string blas = same_blas_environment();  // "LD_LIBRARY_PATH=DIR " or ""
      const std::string prefix = "LD_LIBRARY_PATH=";
      if (blas.rfind(prefix, 0) == 0) ::setenv("LD_LIBRARY_PATH", blas.substr(prefix.size(), blas.size() - prefix.size() - 1).c_str(), 1);
      ::execl("/usr/bin/python3", "python3", script.c_str(), "--steps", s.c_str(), "--layers", l.c_str(),
              static_cast<char*>(nullptr));
      return 127;
    });
    std::printf("python peak RSS %.2f GiB\n", py.maxrss_gib);
  }
  return (one.status == 0 && two.status == 0 && py.status == 0 && lora.status == 0) ? 0 : 1;
}
