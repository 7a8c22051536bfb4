// Attention of one new token per row against the KV cache, on the CPU (batched decoding).
//
// The eager path multiplies [B, Hkv, G, D] queries by [B, Hkv, D, S] keys with bmm, which
// libtorch 1.13 on the CPU runs as one small GEMM per (row, KV head) pair: with 64 rows
// that is hundreds of calls per layer, each paying the BLAS threading overhead, about 14%
// of a 64-row decoding step of Qwen2-0.5B. Here each thread takes whole (row, KV head)
// pairs and does scores, softmax and the weighted sum of values for the pair's G query heads
// in one pass over its keys and values.
#pragma once
#include "core/torch_pch.h"

namespace spinlm {

// True when decode_attention handles these tensors: fp32 on the CPU, one query position,
// the last dimension of q, k, v contiguous, a defined mask, no autograd.
bool decode_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask);

// q [B, H, 1, D], k/v [B, Hkv, S, D] (head h reads key/value head h / (H / Hkv)),
// mask [B, 1, 1, S] additive -> [B, H*D]: softmax(q k^T / sqrt(D) + mask) v, the softmax in
// fp32 as the eager path computes it.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask);

}  // namespace spinlm
