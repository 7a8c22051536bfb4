#include "model/fused_attention.h"

#include "core/error.h"
#include "core/torch_compat.h"

namespace spinlm {

bool fused_attention_applies(const at::Device& device) { return SPINLM_HAVE_SDPA && device.is_cuda(); }

at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  check(fused_attention_applies(q.device()), "fused attention needs libtorch 2.x and a CUDA tensor");
#if SPINLM_HAVE_SDPA
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2), G = H / Hkv;
  if (T == 1 && G > 1) {
    // Decoding: the G query heads of a key/value head are G query rows against that head,
    // all with the row's one mask row (it broadcasts over them), so nothing is repeated.
    // Head h = kv * G + g reads key/value head kv, as transformers' repeat_kv.
    at::Tensor grouped = q.reshape({B, Hkv, G, D});
    at::Tensor out = compat::scaled_dot_product_attention(grouped, k, v, mask, /*is_causal=*/false);  // [B, Hkv, G, D]
    return out.reshape({B, H * D});
  }
  // Grouped-query attention: repeat each key/value head for its G query heads.
  at::Tensor keys = G == 1 ? k : k.unsqueeze(2).expand({B, Hkv, G, S, D}).reshape({B, H, S, D});
  at::Tensor values = G == 1 ? v : v.unsqueeze(2).expand({B, Hkv, G, S, D}).reshape({B, H, S, D});
  at::Tensor out = compat::scaled_dot_product_attention(q, keys, values, mask, /*is_causal=*/!mask.defined());
  return out.transpose(1, 2).reshape({B * T, H * D});  // [B, H, T, D] -> [B*T, H*D]
#else
  return at::Tensor();
#endif
}

bool right_padded(const at::Tensor& real) {
  const int64_t T = real.size(1);
  if (T < 2) return true;
  // A padding position followed by a real one breaks it.
  at::Tensor gap = real.narrow(1, 0, T - 1).logical_not() & real.narrow(1, 1, T - 1);  // [B, T-1]
  return !gap.any().item<bool>();
}

}  // namespace spinlm
