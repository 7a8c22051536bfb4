// Every difference between the libtorch versions spinlm builds against (Debian's 1.13 on
// CPU, 2.x from a PyTorch install for CUDA) lives in this header and nowhere else.
#pragma once
#include "core/torch_pch.h"

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif

#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
#define SPINLM_TORCH2 1
#else
#define SPINLM_TORCH2 0
#endif

// (added, issue 9) Fused attention: at::scaled_dot_product_attention (flash and
// memory-efficient kernels on CUDA) exists from libtorch 2.0; 1.13 has only a private,
// unfused variant, so there spinlm keeps its eager attention (model/fused_attention.h).
#if SPINLM_TORCH2
#define SPINLM_HAVE_SDPA 1
#else
#define SPINLM_HAVE_SDPA 0
#endif

namespace spinlm::compat {
#if SPINLM_HAVE_SDPA
// q [B, H, T, D], k/v [B, H, S, D]; mask: additive in q's dtype, broadcastable to
// [B, H, T, S], or undefined. Scale 1/sqrt(D), no dropout. The arguments are positional
// and stop at is_causal: 2.1 added `scale` and 2.5 `enable_gqa` after it.
inline at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                               const at::Tensor& mask, bool is_causal) {
  c10::optional<at::Tensor> attn_mask;
  if (mask.defined()) attn_mask = mask;
  return at::scaled_dot_product_attention(q, k, v, attn_mask, /*dropout_p=*/0.0, is_causal);
}
#endif
}  // namespace spinlm::compat
