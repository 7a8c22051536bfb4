// Attention through libtorch's fused kernels (at::scaled_dot_product_attention: flash /
// memory-efficient attention) where the build has them (libtorch 2.x, core/torch_compat.h)
// and the tensors are on a GPU. Elsewhere (Debian's libtorch 1.13, or any CPU tensor) the
// transformer keeps its eager attention, which matches transformers' "eager" exactly.
#pragma once
#include "core/torch_pch.h"

namespace spinlm {

// True when tensors on this device take the fused path in this build.
bool fused_attention_applies(const at::Device& device);

// q [B, H, T, D], k/v [B, Hkv, S, D] (head h reads key/value head h / (H / Hkv), as
// transformers' repeat_kv), mask [B, 1, T, S] additive in q's dtype, or undefined for
// plain causal attention with S == T. Returns [B*T, H*D]. Error when !fused_attention_applies.
at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask);

// True when every row of a [B, T] boolean mask of real tokens is right-padded (its real
// tokens come first). Then causal attention alone is exact for every real query: the
// padding keys lie after all of them. One device-to-host copy.
bool right_padded(const at::Tensor& real);

}  // namespace spinlm
