#include "model/decode_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/vector_exp.h"

namespace spinlm {
namespace {

// The layout of one (row, KV head) pair's work.
struct PairView {
  const float* query;   // [G, D] the group's query heads
  const float* keys;    // [S, D], row stride key_stride
  const float* values;  // [S, D], row stride value_stride
  const float* mask;    // [S] additive
  float* output;        // [G, D]
  int64_t key_stride, value_stride;
};

// Lane i of the result = the sum of the 8 lanes of a[i].
__attribute__((target("avx2,fma"))) inline __m256 sum_lanes8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);  // halves of a[0..3], a[4..7]
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// scores[g * S + s] = dot(query[g], key[s]) * scale + mask[s]: eight keys at a time, so one
// 8-way reduction serves eight dot products. Needs D % 8 == 0.
__attribute__((target("avx2,fma"))) void scores_avx2(const PairView& p, int64_t G, int64_t S, int64_t D, float scale,
                                                     float* scores) {
  const __m256 scale_v = _mm256_set1_ps(scale);
  int64_t s = 0;
  for (; s + 8 <= S; s += 8) {
    for (int64_t g = 0; g < G; ++g) {
      const float* q = p.query + g * D;
      __m256 acc[8];
      for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
      for (int64_t d = 0; d < D; d += 8) {
        const __m256 qd = _mm256_loadu_ps(q + d);
        for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(p.keys + (s + j) * p.key_stride + d), acc[j]);
      }
      const __m256 dots = _mm256_fmadd_ps(sum_lanes8(acc), scale_v, _mm256_loadu_ps(p.mask + s));
      _mm256_storeu_ps(scores + g * S + s, dots);
    }
  }
  for (; s < S; ++s) {
    for (int64_t g = 0; g < G; ++g) {
      const float* q = p.query + g * D;
      const float* key = p.keys + s * p.key_stride;
      float dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += q[d] * key[d];
      scores[g * S + s] = dot * scale + p.mask[s];
    }
  }
}

// output[g] = sum_s weights[g * S + s] * value[s], 64 output floats at a time held in eight
// registers across the whole walk over the values. Needs D % 8 == 0.
__attribute__((target("avx2,fma"))) void weighted_values_avx2(const PairView& p, int64_t G, int64_t S, int64_t D,
                                                              const float* weights) {
  for (int64_t g = 0; g < G; ++g) {
    const float* w = weights + g * S;
    for (int64_t d0 = 0; d0 < D; d0 += 64) {
      const int lanes = static_cast<int>(std::min<int64_t>(64, D - d0) / 8);
      __m256 acc[8];
      for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
      for (int64_t s = 0; s < S; ++s) {
        if (w[s] == 0.0f) continue;  // masked positions
        const float* value = p.values + s * p.value_stride + d0;
        const __m256 ws = _mm256_set1_ps(w[s]);
        for (int j = 0; j < lanes; ++j) acc[j] = _mm256_fmadd_ps(ws, _mm256_loadu_ps(value + 8 * j), acc[j]);
      }
      for (int j = 0; j < lanes; ++j) _mm256_storeu_ps(p.output + g * D + d0 + 8 * j, acc[j]);
    }
  }
}

void scores_portable(const PairView& p, int64_t G, int64_t S, int64_t D, float scale, float* scores) {
  for (int64_t s = 0; s < S; ++s) {
    const float* key = p.keys + s * p.key_stride;
    for (int64_t g = 0; g < G; ++g) {
      const float* q = p.query + g * D;
      float dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += q[d] * key[d];
      scores[g * S + s] = dot * scale + p.mask[s];
    }
  }
}

void weighted_values_portable(const PairView& p, int64_t G, int64_t S, int64_t D, const float* weights) {
  for (int64_t g = 0; g < G; ++g) {
    float* out = p.output + g * D;
    std::fill(out, out + D, 0.0f);
    for (int64_t s = 0; s < S; ++s) {
      const float w = weights[g * S + s];
      if (w == 0.0f) continue;
      const float* value = p.values + s * p.value_stride;
      for (int64_t d = 0; d < D; ++d) out[d] += w * value[d];
    }
  }
}

// Each row of scores [G, S] -> softmax weights, in place (fp32, max-shifted).
void softmax_rows(float* scores, int64_t G, int64_t S) {
  for (int64_t g = 0; g < G; ++g) {
    float* row = scores + g * S;
    const float top = *std::max_element(row, row + S);
    exp_nonpositive(row, row, S, top);
    float total = 0;
    for (int64_t s = 0; s < S; ++s) total += row[s];
    const float inverse = 1.0f / total;
    for (int64_t s = 0; s < S; ++s) row[s] *= inverse;
  }
}

}  // namespace

bool decode_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  auto cpu_float = [](const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat; };
  if (!mask.defined() || q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || q.size(2) != 1) return false;
  if (!cpu_float(q) || !cpu_float(k) || !cpu_float(v) || !cpu_float(mask)) return false;
  if (at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) return false;
  const int64_t B = q.size(0), S = k.size(2);
  return q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1 && k.sizes() == v.sizes() && k.size(0) == B &&
         q.size(1) % k.size(1) == 0 && mask.numel() == B * S && mask.size(0) == B && mask.size(-1) == S;
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  check(decode_attention_applies(q, k, v, mask), "decode_attention: unsupported tensors");
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2), G = H / Hkv;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  const at::Tensor queries = q.reshape({B, H, D}).contiguous();  // [B, H, D]
  const at::Tensor additive = mask.reshape({B, S}).contiguous();   // [B, S]
  at::Tensor out = at::empty({B, H * D}, q.options());               // [B, H*D]
  const float* q_data = queries.data_ptr<float>();
  const float* m_data = additive.data_ptr<float>();
  const float* k_data = k.data_ptr<float>();
  const float* v_data = v.data_ptr<float>();
  float* o_data = out.data_ptr<float>();
  const int64_t k_row = k.stride(0), k_head = k.stride(1), k_pos = k.stride(2);
  const int64_t v_row = v.stride(0), v_head = v.stride(1), v_pos = v.stride(2);
  const bool avx2 = cpu_has_avx2_fma() && D % 8 == 0;

  // One task per (row, KV head) pair: G query heads against S keys, then S values.
  parallel_for(0, B * Hkv, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(G * S);  // [G, S]
    for (int64_t pair = begin; pair < end; ++pair) {
      const int64_t b = pair / Hkv, kv = pair % Hkv;
      const PairView view{q_data + (b * H + kv * G) * D, k_data + b * k_row + kv * k_head,
                          v_data + b * v_row + kv * v_head, m_data + b * S, o_data + b * H * D + kv * G * D,
                          k_pos, v_pos};
      if (avx2) {
        scores_avx2(view, G, S, D, scale, scores.data());
        softmax_rows(scores.data(), G, S);
        weighted_values_avx2(view, G, S, D, scores.data());
      } else {
        scores_portable(view, G, S, D, scale, scores.data());
        softmax_rows(scores.data(), G, S);
        weighted_values_portable(view, G, S, D, scores.data());
      }
    }
  });
  return out;
}

}  // namespace spinlm
