// KV cache storage: one [S, Hkv, max_tokens, D] key and value tensor per layer, on the
// model's device and dtype. Writing and reading happen in Transformer::forward_cached.
#include "model/kv_cache.h"

#include "core/error.h"

namespace spinlm {

KVCache::KVCache(const ModelConfig& config, int64_t num_slots, int64_t max_tokens, at::Device device,
                 at::ScalarType dtype)
    : num_slots_(num_slots), max_tokens_(max_tokens), lengths_(num_slots, 0) {
  check(num_slots > 0 && max_tokens > 0, "KV cache needs at least one slot and one token (got ",
        num_slots, " slots, ", max_tokens, " tokens)");
  auto options = at::TensorOptions().device(device).dtype(dtype);
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    // Zeros rather than empty: stale or never-written entries are masked, but a NaN in
    // uninitialised memory would still poison a masked matmul (0 * NaN = NaN).
    keys_.push_back(at::zeros({num_slots, config.num_key_value_heads, max_tokens, config.head_dim}, options));
    values_.push_back(at::zeros({num_slots, config.num_key_value_heads, max_tokens, config.head_dim}, options));
  }
}

}  // namespace spinlm
