// One-row matrix-vector products over every weight matrix of the Qwen2-0.5B shape (what
// one decoded token reads), spinlm's fast_gemv against at::mv (OpenBLAS sgemv) in the same
// run, alternating rounds so both see the same machine load. Reports GB/s of weights read.
// Usage: bench_gemv [--threads N] [--rounds N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/threads.h"
#include "core/huge_pages.h"
#include "model/gemv.h"

using namespace spinlm;

int main(int argc, char** argv) {
  int threads = 2, rounds = 10;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (arg == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
  }
  setup_threads(threads);
  at::NoGradGuard no_grad;
  const int64_t C = 896, F = 4864, V = 151936, L = 24, Q = 896, KV = 128;
  // The matrices of one token in order: per layer q, k, v, o, gate, up, down; then the LM head.
  std::vector<at::Tensor> weights;
  for (int64_t layer = 0; layer < L; ++layer) {
    for (auto shape : std::vector<std::vector<int64_t>>{{Q, C}, {KV, C}, {KV, C}, {C, Q}, {F, C}, {F, C}, {C, F}}) {
      weights.push_back(at::randn(shape));
    }
  }
  weights.push_back(at::randn({V, C}));
  // The same weights again on transparent huge pages (how spinlm allocates model weights).
  std::vector<at::Tensor> huge_weights;
  for (const auto& w : weights) {
    at::Tensor copy = at::empty(w.sizes(), w.options());
    advise_huge_pages(copy);
    huge_weights.push_back(copy.copy_(w));
  }
  double bytes = 0;
  for (const auto& w : weights) bytes += double(w.numel()) * 4;
  at::Tensor x_c = at::randn({C}), x_f = at::randn({F});

  // kind 0: fast_gemv, 1: at::mv, 2: at::sum of each matrix (a plain streaming read of the
  // same bytes: the bandwidth ceiling in this run), 3: fast_gemv on the huge-page copies.
  auto one_token = [&](int kind) {
    for (const auto& w : kind == 3 ? huge_weights : weights) {
      const at::Tensor& x = w.size(1) == C ? x_c : x_f;
      at::Tensor y = kind == 0 || kind == 3 ? fast_gemv(w, x) : kind == 1 ? at::mv(w, x) : w.sum();
    }
  };
  // Check once that both agree before timing.
  double worst = 0;
  for (const auto& w : weights) {
    const at::Tensor& x = w.size(1) == C ? x_c : x_f;
    at::Tensor a = fast_gemv(w, x), b = at::mv(w, x);
    worst = std::max(worst, ((a - b).abs().max() / b.abs().max()).item<double>());
  }
  double seconds[4] = {0, 0, 0, 0};
  for (int round = -1; round < rounds; ++round) {  // round -1 warms up
    for (int kind : {0, 1, 2, 3}) {
      auto start = std::chrono::steady_clock::now();
      one_token(kind);
      if (round >= 0) seconds[kind] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  const double fast_seconds = seconds[0], blas_seconds = seconds[1], read_seconds = seconds[2];
  std::printf("weights of one Qwen2-0.5B-shape token: %.2f GB, %d threads, %d rounds (max rel. difference %.1e)\n",
              bytes / 1e9, threads, rounds, worst);
  std::printf("fast_gemv: %.1f ms/token, %.1f GB/s (%.1f tokens/s bound)\n", 1e3 * fast_seconds / rounds,
              bytes * rounds / fast_seconds / 1e9, rounds / fast_seconds);
  std::printf("at::mv   : %.1f ms/token, %.1f GB/s (%.1f tokens/s bound)\n", 1e3 * blas_seconds / rounds,
              bytes * rounds / blas_seconds / 1e9, rounds / blas_seconds);
  std::printf("fast_gemv on huge pages: %.1f ms/token, %.1f GB/s (%.1f tokens/s bound)\n", 1e3 * seconds[3] / rounds,
              bytes * rounds / seconds[3] / 1e9, rounds / seconds[3]);
  std::printf("read only: %.1f ms/token, %.1f GB/s (at::sum of every matrix)\n", 1e3 * read_seconds / rounds,
              bytes * rounds / read_seconds / 1e9);
  return 0;
}
