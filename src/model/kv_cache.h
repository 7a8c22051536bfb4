// Key/value cache for generation: a fixed number of slots (rows being generated), each
// with room for max_tokens positions. A slot's keys/values fill from position 0 up to its
// length; continuous batching resets a finished slot and prefills the next prompt into it.
#pragma once
#include "core/torch_pch.h"
#include "model/config.h"

namespace spinlm {

class KVCache {
 public:
  KVCache(const ModelConfig& config, int64_t num_slots, int64_t max_tokens, at::Device device,
          at::ScalarType dtype);

  int64_t num_slots() const { return num_slots_; }
  int64_t max_tokens() const { return max_tokens_; }
  // Tokens held by the slot so far.
  int64_t length(int64_t slot) const { return lengths_[slot]; }
  const std::vector<int64_t>& lengths() const { return lengths_; }
  void set_length(int64_t slot, int64_t length) { lengths_[slot] = length; }
  // Empties a slot (its stale entries are masked by length, never read).
  void reset(int64_t slot) { lengths_[slot] = 0; }

  // Per layer: [S, Hkv, max_tokens, D].
  at::Tensor& keys(int64_t layer) { return keys_[layer]; }
  at::Tensor& values(int64_t layer) { return values_[layer]; }

 private:
  int64_t num_slots_;
  int64_t max_tokens_;
  std::vector<int64_t> lengths_;
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
};

}  // namespace spinlm
