// Decoding attention on the CPU: one new token per row against a KV cache of S positions,
// the Qwen2-0.5B shape (14 query heads, 2 KV heads, head dim 64, 24 layers), 64 rows.
// spinlm's decode_attention (model/decode_attention.h) against the eager formula the
// transformer used before (grouped bmm, fp32 softmax, bmm; the path it still takes for more
// than one query position), alternating rounds so both see the same machine load.
// Reports milliseconds per decoding step (24 layers).
// Usage: bench_attention [--threads N] [--rounds N] [--rows B] [--positions S]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "core/threads.h"
#include "model/decode_attention.h"

using namespace spinlm;

namespace {

// The eager attention of src/model/transformer.cpp for T = 1.
at::Tensor eager_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), Hkv = k.size(1), S = k.size(2), G = H / Hkv;
  at::Tensor scores = at::matmul(q.reshape({B, Hkv, G, D}), k.transpose(-1, -2));  // [B, Hkv, G, S]
  scores = scores.view({B, Hkv, G, 1, S}).mul_(1.0 / std::sqrt(double(D))).add_(mask.unsqueeze(2));
  at::Tensor out = at::matmul(at::softmax(scores, -1).view({B, Hkv, G, S}), v);
  return out.view({B, H, 1, D}).transpose(1, 2).reshape({B, H * D});
}

double seconds_of(const std::function<void()>& body) {
  auto start = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, rounds = 10;
  int64_t B = 64, S = 192;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    if (arg == "--threads") threads = std::atoi(argv[i + 1]);
    else if (arg == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (arg == "--rows") B = std::atoll(argv[i + 1]);
    else if (arg == "--positions") S = std::atoll(argv[i + 1]);
  }
  setup_threads(threads);
  at::NoGradGuard no_grad;
  const int64_t H = 14, Hkv = 2, D = 64, L = 24, store = S + 64;
  at::manual_seed(1);
  std::vector<at::Tensor> keys, values;  // per layer [B, Hkv, S, D], narrowed out of a larger cache
  for (int64_t l = 0; l < L; ++l) {
    keys.push_back(at::randn({B, Hkv, store, D}).narrow(2, 0, S));
    values.push_back(at::randn({B, Hkv, store, D}).narrow(2, 0, S));
  }
  at::Tensor q = at::randn({B, 1, H, D}).transpose(1, 2);  // [B, H, 1, D]
  at::Tensor lengths = at::randint(S / 2, S + 1, {B, 1});
  at::Tensor mask = at::zeros({B, S})
                        .masked_fill(at::arange(S).unsqueeze(0) >= lengths, std::numeric_limits<float>::lowest())
                        .view({B, 1, 1, S});
  double worst = 0;
  for (int64_t l = 0; l < L; ++l) {
    worst = std::max(worst, (decode_attention(q, keys[l], values[l], mask) - eager_attention(q, keys[l], values[l], mask))
                                .abs().max().item<double>());
  }
  double ours = 1e9, eager = 1e9;
  for (int r = 0; r < rounds; ++r) {
    eager = std::min(eager, seconds_of([&] { for (int64_t l = 0; l < L; ++l) eager_attention(q, keys[l], values[l], mask); }));
    ours = std::min(ours, seconds_of([&] { for (int64_t l = 0; l < L; ++l) decode_attention(q, keys[l], values[l], mask); }));
  }
  std::printf("rows %lld, positions %lld, %d threads, best of %d: eager %.1f ms, decode_attention %.1f ms per "
              "24-layer step (%.1fx); max |diff| %.1e\n",
              static_cast<long long>(B), static_cast<long long>(S), threads, rounds, eager * 1e3, ours * 1e3,
              eager / ours, worst);
  return 0;
}
