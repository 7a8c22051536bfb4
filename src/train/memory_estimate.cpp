// The training memory estimate (memory_estimate.h), from what the code keeps:
// model/transformer.cpp (layer_forward, forward_hidden), model/target_logprobs.cpp,
// model/recompute.cpp, train/optimizer.cpp, dist/grad_buckets.cpp.
//
// Notation: b bytes per element of the model dtype (2 bf16, 4 fp32); C hidden, F intermediate,
// L layers, H heads, Hkv key/value heads, D head_dim, V vocabulary (config.json); N = sequences
// x max_length tokens of one micro-batch; T = max_length.
//
// One decoder layer keeps for its backward, per token (a):
//   two RMSNorms      each its input in fp32 (the widened copy; in fp32 the input itself),
//                     the normalised tensor and the scaled output the projections read:
//                     2 (4 + 2b) C
//   RoPE              q and k before rotation and rotate_half's copy: 2b (H + Hkv) D
//   q/k RMSNorm       (qwen3 only) (4 + b)(H + Hkv) D
//   attention, fused  SDPA's q, k and v (k and v repeated to H heads when Hkv < H), its
//                     output and fp32 logsumexp, the output re-laid out for o_proj:
//                     b (3 H D + 2 K D) + 4 H, with K = H when Hkv < H, else Hkv
//   attention, eager  the regrouped q, k and v copied for the batched matmuls, the output
//                     re-laid out, the fp32 softmax over T keys (and its b-byte copy in bf16):
//                     b (2 H D + 2 Hkv D) + (4 + [b < 4] b) H T
//   MLP               gate and up outputs, silu(gate), their product: 4 b F
// Once per micro-batch, alive through forward and backward (f): RoPE cos and sin, 2 b D per
// token; the eager path's additive mask [rows, 1, T, T], b T per token.
// The head (h): the final RMSNorm as above, (4 + 2b) C per token; the LM head's logits one
// chunk of n = min(chunk_positions, N) rows at a time, in fp32 with the b-byte matmul output
// and gradient beside it: n V (4 + [b < 4] 2b); and the LM head weight's gradient, V C b,
// which with tied embeddings stays until the embedding's gradient joins it at the end.
//
// Peak of forward + backward, the larger of two moments:
//   at the head's backward:      kept + f N + h N + logits + V C b
//   at a layer's backward:       kept + f N + [checkpointing] a N + a N + [tied] V C b
// with kept = L a N (everything every layer keeps) or, with gradient checkpointing, L b C N
// (each layer's input; the layer under backward is recomputed, its a N counted above). The
// second a N is the gradients flowing through that layer, about as large as what it keeps.
#include "train/memory_estimate.h"

#include <algorithm>

#include "core/error.h"

namespace spinlm {

int64_t MemoryEstimate::peak(bool gradient_checkpointing) const {
  return resident() + std::max(gradient_checkpointing ? activations_checkpointed : activations, step);
}

MemoryEstimate estimate_training_memory(const TrainingMemoryShape& s) {
  const ModelConfig& m = s.config;
  check(m.hidden_size > 0 && m.num_hidden_layers > 0 && m.num_attention_heads > 0 && m.vocab_size > 0,
        "memory estimate: the model config has no shape");
  check(s.dtype == at::kFloat || s.dtype == at::kBFloat16, "memory estimate: training dtype must be fp32 or bf16");
  check(s.optimizer == "rmsprop" || s.optimizer == "adamw", "memory estimate: unknown optimizer '", s.optimizer, "'");
  check(s.optimizer_state_dtype == "fp32" || s.optimizer_state_dtype == "bf16",
        "memory estimate: optimizer state dtype must be fp32 or bf16");
  check(s.sequences > 0 && s.max_length > 0 && s.chunk_positions > 0 && s.world_size > 0,
        "memory estimate: sequences, max_length, chunk_positions and world_size must be positive");
  const int64_t b = int64_t(c10::elementSize(s.dtype));
  const int64_t C = m.hidden_size, F = m.intermediate_size, L = m.num_hidden_layers, V = m.vocab_size;
  const int64_t H = m.num_attention_heads, Hkv = m.num_key_value_heads, D = m.head_dim, T = s.max_length;
  const int64_t N = s.sequences * s.max_length;
  const int64_t narrow = b < 4 ? b : 0;  // the b-byte copy beside an fp32 one, in bf16 only

  MemoryEstimate e;
  e.parameters = m.num_parameters();
  const int64_t P = e.parameters;
  e.weights = P * b;
  e.gradients = P * b;
  const int64_t state_bytes = s.optimizer_state_dtype == "bf16" ? 2 : 4;
  e.optimizer_state = (s.optimizer == "adamw" ? 2 : 1) * P * state_bytes;
  const bool master = s.optimizer_state_dtype == "fp32" && b < 4;
  e.master_weights = master ? P * 4 : 0;

  int64_t a = 2 * (4 + 2 * b) * C + 2 * b * (H + Hkv) * D;
  if (m.qk_norm) a += (4 + b) * (H + Hkv) * D;
  if (s.fused_attention) {
    const int64_t K = Hkv < H ? H : Hkv;
    a += b * (3 * H * D + 2 * K * D) + 4 * H;
  } else {
    a += b * (2 * H * D + 2 * Hkv * D) + (4 + narrow) * H * T;
  }
  a += 4 * b * F;
  const int64_t f = 2 * b * D + (s.fused_attention ? 0 : b * T);
  const int64_t h = (4 + 2 * b) * C;
  const int64_t logits = std::min(s.chunk_positions, N) * V * (4 + 2 * narrow);
  const int64_t head_gradient = V * C * b;

  e.layer_activations = a * N;
  const auto peak_with = [&](int64_t kept, bool recomputed) {
    const int64_t at_head = kept + f * N + h * N + logits + head_gradient;
    const int64_t at_layer =
        kept + f * N + (recomputed ? a * N : 0) + a * N + (m.tie_word_embeddings ? head_gradient : 0);
    return std::max(at_head, at_layer);
  };
  e.activations = peak_with(L * a * N, false);
  e.activations_checkpointed = peak_with(L * b * C * N, true);

  // The update (optimizer.cpp) works in fp32 on one parameter at a time: the denominator,
  // plus widened copies of whatever is not fp32 already (gradient, weight without a master
  // copy, state), AdamW's sqrt before its division, RMSprop's g + wd p.
  const int64_t largest = std::max({V * C, F * C, H * D * C});
  int64_t temporaries = 1;
  if (b < 4) temporaries += 1 + (master ? 0 : 1);
  if (state_bytes < 4) temporaries += s.optimizer == "adamw" ? 2 : 1;
  if (s.optimizer == "adamw") temporaries += 1;
  if (s.optimizer == "rmsprop" && s.weight_decay) temporaries += 1;
  const int64_t update = largest * 4 * temporaries;
  const int64_t all_reduce = s.world_size > 1 ? P * b : 0;
  e.step = std::max(update, all_reduce);
  e.reference_cache = s.reference_pairs * 4 * 8;
  return e;
}

}  // namespace spinlm
