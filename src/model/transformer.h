// The Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) exactly as transformers computes
// it: token embedding, L x [RMSNorm -> grouped-query attention with rotate_half RoPE ->
// residual -> RMSNorm -> SiLU-gated MLP -> residual], final RMSNorm, LM head.
// Parameters are plain tensors keyed by their HuggingFace names; autograd flows through
// them when they require grad. Every tensor is created on the model's device and dtype.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/torch_pch.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/packed_tokens.h"
#include "model/lora.h"

namespace spinlm {

class Transformer {
 public:
  // Allocates every parameter (uninitialised) on device in dtype.
  Transformer(ModelConfig config, at::Device device = at::kCPU, at::ScalarType dtype = at::kFloat);

  const ModelConfig& config() const { return config_; }
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }

  // Parameters in a stable order under their HF names ("model.embed_tokens.weight",
  // "model.layers.0.self_attn.q_proj.weight", ..., "lm_head.weight" unless tied).
  const std::vector<std::pair<std::string, at::Tensor>>& named_parameters() const { return parameters_; }
  std::vector<at::Tensor> parameters() const;
  at::Tensor parameter(const std::string& name) const;  // Error naming the name if absent
  void set_requires_grad(bool requires_grad);

  // LoRA adapters (model/lora.h) added to the projections they target in every forward;
  // null: none. Error when they were made for another shape.
  void set_lora(std::shared_ptr<LoraAdapters> adapters);
  const std::shared_ptr<LoraAdapters>& lora() const { return lora_; }
  // What training updates, with requires_grad set: the adapters' A and B (the base frozen)
  // when there are adapters, else every parameter.
  std::vector<at::Tensor> trainable_parameters();

  // Normal(0, std) weights (norms 1, biases 0), from seed: HF's _init_weights for Llama.
  void init_random(uint64_t seed, double std = 0.02);

  // Full forward over a padded batch. input_ids, attention_mask: [B, T] (mask 1 = real
  // token, 0 = padding, left or right). Positions count real tokens only (cumsum - 1), as
  // transformers does. Returns the final-normed hidden states [B, T, C].
  at::Tensor forward_hidden(const at::Tensor& input_ids, const at::Tensor& attention_mask) const;

  // Cached forward for generation: input_ids [B, T] right-padded, token_counts[b] real
  // tokens in row b, slots[b] the cache slot of row b. Row b's tokens take positions
  // cache.length(slot) .. + token_counts[b] - 1; their keys/values are written there and the
  // slot's length grows by token_counts[b]. Returns hidden states [B, T, C] (padding rows'
  // values are garbage). Runs without autograd.
  at::Tensor forward_cached(const at::Tensor& input_ids, const std::vector<int64_t>& token_counts,
                            const std::vector<int64_t>& slots, KVCache& cache) const;

  // (added, issue 9) One decoding step for every slot of the cache at once, with shapes that
  // never change between steps (what a CUDA graph replays): input_ids [S, 1] int64 and
  // positions [S] int64, both on the model's device (S = cache.num_slots()). Slot s's token
  // takes position positions[s] (clamped to the cache's last position; a free slot's step is
  // harmless garbage) and attends to its slot's keys 0..positions[s]; keys are read over the
  // cache's first key_length positions (0: all max_tokens; masked), so every position a live
  // slot takes must be < key_length. Writes the keys/values but NOT the cache's host-side
  // lengths: the caller tracks them. No host synchronisation and no host-to-device copy.
  // Returns hidden states [S, 1, C]. Runs without autograd.
  at::Tensor forward_decode_slots(const at::Tensor& input_ids, const at::Tensor& positions, KVCache& cache,
                                  int64_t key_length = 0) const;

  // Padding-free forward over a packed stream (model/packed_tokens.h): hidden states [N, C]
  // of its N tokens. The linear layers run on all N tokens at once; attention runs block by
  // block, so no position is padding and no block attends to another. Autograd and gradient
  // checkpointing as forward_hidden.
  // Attention: with fused attention (a GPU, libtorch 2.x) a block is cut into causal views,
  // each plain causal attention over contiguous or gathered rows (the flash kernel's case, no
  // mask): prefix + first branch, then prefix + each further branch, whose prefix rows'
  // outputs are dropped. Elsewhere each block attends with its [L, L] mask
  // (packed_block_allowed), as does any block a sliding window cuts into.
  at::Tensor forward_packed(const PackedTokens& packed) const;
  // Causal views on any device (tests: the GPU's decomposition checked on the CPU).
  void set_packed_causal_views(bool on) { packed_causal_views_ = on; }

  // log p(score_targets[s] | its view) for every scored token of a packed stream -> [S]
  // fp32 (fp64 for a double model): forward_packed + target_logprobs on the source rows.
  at::Tensor packed_logprobs(const PackedTokens& packed, int64_t chunk_positions = 1024) const;

  // LM head: [..., C] -> [..., V] logits in fp32.
  at::Tensor logits(const at::Tensor& hidden) const;

  // log p(targets[b, t] | hidden[b, t]) for every position: hidden [B, T, C], targets
  // [B, T] int64 (any value where the result is ignored; negative ids give 0) -> [B, T]
  // fp32 (fp64 when the model is double precision). Computed chunk by chunk over
  // positions with a recomputing backward, so the full [B, T, V] logits never exist at
  // once, in forward or backward.
  at::Tensor target_logprobs(const at::Tensor& hidden, const at::Tensor& targets,
                             int64_t chunk_positions = 1024) const;

  // (added) log p(input_ids[b, t] | input_ids[b, <t]) for a padded batch: input_ids,
  // attention_mask [B, T] -> [B, T] fp32, 0 at each row's first real token and at padding.
  // forward_hidden + target_logprobs; autograd flows when parameters require grad.
  at::Tensor token_logprobs(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                            int64_t chunk_positions = 1024) const;

  // (added) Gradient checkpointing: while on and autograd is recording, forward_hidden keeps
  // only each decoder layer's input and recomputes the layer in the backward pass
  // (model/recompute.h): one extra forward for activations of O(layers x [B, T, C]).
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

 private:
  ModelConfig config_;
  at::Device device_;
  at::ScalarType dtype_;
  bool gradient_checkpointing_ = false;
  bool packed_causal_views_ = false;  // forward_packed's views where fused attention does not apply
  std::vector<std::pair<std::string, at::Tensor>> parameters_;
  std::shared_ptr<LoraAdapters> lora_;
  // Per-layer handles into parameters_ (filled by the constructor) live in the .cpp.
  struct Layer;
  std::vector<std::shared_ptr<Layer>> layers_;
  at::Tensor embed_tokens_;  // [V, C]
  at::Tensor final_norm_;    // [C]
  at::Tensor lm_head_;       // [V, C] (the embedding when tied)
  at::Tensor inv_freq_;      // [D / 2] fp32 RoPE inverse frequencies (llama3-scaled if configured)

  struct CacheWrite;  // where forward_cached stores a layer's keys/values (defined in the .cpp)
  struct PackedAttention;  // forward_packed's attention: per-block masks, or causal views (in the .cpp)
  // cos, sin [B, T, 1, D] in the model dtype for positions [B, T].
  std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& positions) const;
  // Attention mask over cached keys: queries at positions [B, T] (int64, on the device) see
  // key s in 0..key_length-1 of their slot when s <= their position (and, with a sliding
  // window, s is within it) -> additive [B, 1, T, key_length] in the model's dtype.
  at::Tensor cached_keys_mask(const at::Tensor& positions, int64_t key_length) const;
  // One decoder layer on x [B, T, C]; mask [B, 1, T, S] additive. Without cache the keys
  // are this call's own (S = T); with one, they are the slots' cached keys after writing.
  // With blocks (forward_packed, B = 1, no cache) attention runs as they say.
  // lora_dropout_seed, when set, seeds the layer's LoRA dropout masks (no dropout otherwise).
  at::Tensor layer_forward(const Layer& layer, const at::Tensor& x, const at::Tensor& cos,
                           const at::Tensor& sin, const at::Tensor& mask, const CacheWrite* cache,
                           const PackedAttention* blocks = nullptr,
                           std::optional<uint64_t> lora_dropout_seed = std::nullopt) const;
  // The decoder layers over x [B, T, C] (checkpointed when gradient checkpointing is on and
  // autograd records), then the final norm.
  // blocks is shared with the recomputing backward, which runs after the forward returns.
  at::Tensor run_layers(at::Tensor x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                        std::shared_ptr<const PackedAttention> blocks) const;
};

}  // namespace spinlm
