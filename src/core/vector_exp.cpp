#include "core/vector_exp.h"

#include <immintrin.h>

#include <cmath>

#include "core/cpu_features.h"

namespace spinlm {
namespace {

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

}  // namespace

void exp_nonpositive(const float* x, float* out, int64_t n, float shift) {
  if (cpu_has_avx2_fma()) {
    exp_shifted_avx2(x, out, n, shift);
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = exp_scalar(x[i] - shift);
}

}  // namespace spinlm
