#include "generate/host_sampling.h"

#include <immintrin.h>

#include <cmath>

#include "core/error.h"
#include "core/parallel.h"

namespace spinlm {
namespace {

// Scores summed per block: the second pass walks these sums, then scans one block.
constexpr int64_t kBlock = 1024;

// Below this exp underflows in fp32 (exp(-87.34) is the smallest normal float).
constexpr float kExpFloor = -87.33654f;

// Cephes expf: exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 split in a
// high and a low part so r is exact), exp(r) by a degree-6 polynomial on |r| <= ln 2 / 2.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2High = 0.693359375f;
constexpr float kLn2Low = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f;
constexpr float kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

float exp_scalar(float x) {
  if (!(x >= kExpFloor)) return 0.0f;  // also -inf (filtered tokens) and NaN
  float n = std::nearbyint(x * kLog2e);
  float r = x - n * kLn2High - n * kLn2Low;
  float p = ((((kP0 * r + kP1) * r + kP2) * r + kP3) * r + kP4) * r + kP5;
  p = p * r * r + r + 1.0f;
  return std::ldexp(p, static_cast<int>(n));
}

__attribute__((target("avx2,fma"))) void exp_shifted_avx2(const float* x, float* out, int64_t n, float shift) {
  const __m256 floor = _mm256_set1_ps(kExpFloor), log2e = _mm256_set1_ps(kLog2e);
  const __m256 ln2_high = _mm256_set1_ps(kLn2High), ln2_low = _mm256_set1_ps(kLn2Low);
  const __m256 shift_v = _mm256_set1_ps(shift), one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i), shift_v);
    __m256 keep = _mm256_cmp_ps(v, floor, _CMP_GE_OQ);  // false for -inf and NaN
    v = _mm256_max_ps(v, floor);
    __m256 k = _mm256_round_ps(_mm256_mul_ps(v, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, ln2_high, v);
    r = _mm256_fnmadd_ps(k, ln2_low, r);
    __m256 p = _mm256_set1_ps(kP0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, one));
    // 2^k by building the float's exponent field: k in [-126, 0] here, always a normal.
    __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
    _mm256_storeu_ps(out + i, _mm256_and_ps(result, keep));
  }
  for (; i < n; ++i) out[i] = exp_scalar(x[i] - shift);
}

void exp_shifted(const float* x, float* out, int64_t n, float shift) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) {
    exp_shifted_avx2(x, out, n, shift);
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = exp_scalar(x[i] - shift);
}

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
    exp_shifted(scores + begin, weights.data() + begin, length, max);
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

void exp_nonpositive(const float* x, float* out, int64_t n, float shift) { exp_shifted(x, out, n, shift); }

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
