#include "model/gemv.h"

#include <immintrin.h>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/parallel.h"

namespace spinlm {
namespace {

// The sum of the 8 lanes of v.
__attribute__((target("avx2,fma"))) inline float horizontal_sum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_shuffle_ps(sum, sum, 1));
  return _mm_cvtss_f32(sum);
}

// y[r] = dot(w[r, :], x) for rows [begin, end) with AVX2 + FMA, one row at a time with four
// accumulators (32 floats a step). Reading one row after the other keeps each thread on a
// single sequential stream, which measured faster here than interleaving 2-16 rows that
// share each load of x (bench/bench_gemv.cpp; x stays in L1 either way).
__attribute__((target("avx2,fma"))) void gemv_rows_avx2(const float* w, const float* x, float* y, int64_t in,
                                                         int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const float* wr = w + row * in;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= in; j += 32) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + j), _mm256_loadu_ps(x + j), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + j + 8), _mm256_loadu_ps(x + j + 8), a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + j + 16), _mm256_loadu_ps(x + j + 16), a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + j + 24), _mm256_loadu_ps(x + j + 24), a3);
    }
    for (; j + 8 <= in; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + j), _mm256_loadu_ps(x + j), a0);
    float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; j < in; ++j) sum += wr[j] * x[j];
    y[row] = sum;
  }
}

// The same without AVX2 (other x86-64 CPUs): plain loops the compiler vectorises with SSE.
void gemv_rows_portable(const float* w, const float* x, float* y, int64_t in, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const float* wr = w + row * in;
    float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= in; j += 8) {
      for (int lane = 0; lane < 8; ++lane) partial[lane] += wr[j + lane] * x[j + lane];
    }
    float s = 0;
    for (int lane = 0; lane < 8; ++lane) s += partial[lane];
    for (; j < in; ++j) s += wr[j] * x[j];
    y[row] = s;
  }
}

}  // namespace

bool fast_gemv_applies(const at::Tensor& weight, const at::Tensor& x) {
  return weight.dim() == 2 && x.dim() == 1 && weight.size(1) == x.size(0) && weight.device().is_cpu() &&
         x.device().is_cpu() && weight.scalar_type() == at::kFloat && x.scalar_type() == at::kFloat &&
         weight.is_contiguous() && x.is_contiguous() &&
         !(at::GradMode::is_enabled() && (weight.requires_grad() || x.requires_grad()));
}

at::Tensor fast_gemv(const at::Tensor& weight, const at::Tensor& x) {
  check(fast_gemv_applies(weight, x), "fast_gemv: needs contiguous fp32 CPU weight [out, in] and x [in]");
  const int64_t out = weight.size(0), in = weight.size(1);
  at::Tensor y = at::empty({out}, x.options());  // [out]
  const float* w_data = weight.data_ptr<float>();
  const float* x_data = x.data_ptr<float>();
  float* y_data = y.data_ptr<float>();
  const bool avx2 = cpu_has_avx2_fma();
  // At least ~64k weights (256 KB) per task: smaller products are not worth a thread.
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(in, 1));
  parallel_for(0, out, grain, [&](int64_t begin, int64_t end) {
    if (avx2) gemv_rows_avx2(w_data, x_data, y_data, in, begin, end);
    else gemv_rows_portable(w_data, x_data, y_data, in, begin, end);
  });
  return y;
}

}  // namespace spinlm
