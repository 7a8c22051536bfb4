#include "generate/host_sampling.h"

#include <immintrin.h>

#include <cmath>

#include "core/error.h"
#include "core/parallel.h"

namespace spinlm {
namespace {

// Scores summed per block: the second pass walks these sums, then scans one block.
constexpr int64_t kBlock = 1024;

__attribute__((target("avx2"))) float row_max_avx2(const float* x, int64_t n) {
  __m256 best = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) best = _mm256_max_ps(best, _mm256_loadu_ps(x + i));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, best);
  float max = lanes[0];
  for (int lane = 1; lane < 8; ++lane) max = std::max(max, lanes[lane]);
  for (; i < n; ++i) max = std::max(max, x[i]);
  return max;
}

float row_max(const float* x, int64_t n) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return row_max_avx2(x, n);
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  return max;
}

// One row: scores [V] -> the chosen token. weights [V] and block_sums [ceil(V / kBlock)]
// are the calling thread's scratch.
int64_t sample_row(const float* scores, int64_t vocab, double u, std::vector<float>& weights,
                   std::vector<double>& block_sums) {
  const float max = row_max(scores, vocab);  // NaN scores are skipped by max and give weight 0
  check(std::isfinite(max), "sampling: a row has no finite score (every token filtered, or NaN/inf logits)");
  weights.resize(vocab);
  const int64_t blocks = (vocab + kBlock - 1) / kBlock;
  block_sums.assign(blocks, 0.0);
  double total = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlock, length = std::min(kBlock, vocab - begin);
    exp_nonpositive(scores + begin, weights.data() + begin, length, max);
    double sum = 0;
    for (int64_t v = begin; v < begin + length; ++v) sum += weights[v];
    block_sums[b] = sum;
    total += sum;
  }
  const double target = u * total;
  double cumulative = 0;
  int64_t last_positive = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    if (block_sums[b] <= 0) continue;
    if (cumulative + block_sums[b] <= target) {
      cumulative += block_sums[b];
      const int64_t begin = b * kBlock, end = std::min(vocab, begin + kBlock);
      for (int64_t v = end - 1; v >= begin; --v) {
        if (weights[v] > 0) {
          last_positive = v;
          break;
        }
      }
      continue;
    }
    // The target lies in this block: the first token whose running sum exceeds it.
    const int64_t begin = b * kBlock, end = std::min(vocab, begin + kBlock);
    for (int64_t v = begin; v < end; ++v) {
      if (weights[v] <= 0) continue;
      last_positive = v;
      cumulative += weights[v];
      if (cumulative > target) return v;
    }
  }
  return last_positive;  // u * total rounded up to total
}

}  // namespace


std::vector<int64_t> sample_rows_on_host(const at::Tensor& scores, const std::vector<double>& uniforms) {
  check(scores.dim() == 2 && scores.scalar_type() == at::kFloat && scores.device().is_cpu() &&
            scores.size(0) == static_cast<int64_t>(uniforms.size()),
        "sample_rows_on_host: needs fp32 CPU scores [B, V] and one uniform per row");
  at::Tensor contiguous = scores.contiguous();
  const int64_t rows = contiguous.size(0), vocab = contiguous.size(1);
  const float* data = contiguous.data_ptr<float>();
  std::vector<int64_t> out(rows);
  parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> weights;
    std::vector<double> block_sums;
    for (int64_t b = begin; b < end; ++b) out[b] = sample_row(data + b * vocab, vocab, uniforms[b], weights, block_sums);
  });
  return out;
}

}  // namespace spinlm
