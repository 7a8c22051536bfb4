// Peak memory of one training process (the SPIN trainer or the SFT trainer), computed from a
// model's config.json and the training settings before anything is loaded: `spinlm run
// --check` prints it, so a recipe that does not fit is found before the run starts. It counts
// what this trainer allocates (on a GPU: device memory; on the CPU: resident memory):
//   weights          P parameters in the model dtype; one model only: the opponent's
//                    log-probs come from a cache (reference_logprobs.h), not a second model
//   gradients        P in the model dtype (kept between steps: zero_grad keeps the buffers)
//   optimizer state  RMSprop one tensor per parameter (square_avg), AdamW two (exp_avg,
//                    exp_avg_sq), in the state dtype
//   master weights   fp32 copies of the parameters when the model is bf16 and the state fp32
//   activations      what the forward keeps for the backward and the backward's working
//                    gradients, for one micro-batch of `sequences` rows of max_length tokens
//                    (the micro-batch is padded to its longest row); formulas in the .cpp
//   step             the optimizer update's fp32 temporaries for the largest parameter, or,
//                    with several processes, the gradients' flat copies for the all-reduce
//                    (dist/grad_buckets.h launches every bucket before waiting: all at once)
// peak = weights + gradients + optimizer state + master weights + max(activations, step):
// the activations are freed before the all-reduce and the update run.
// Not counted: the CUDA context and the caching allocator's slack (leave ~10% free), the
// training data and the reference log-probs on the host (reference_cache says how much).
#pragma once
#include <cstdint>
#include <string>

#include "core/torch_pch.h"
#include "model/config.h"

namespace spinlm {

struct TrainingMemoryShape {
  ModelConfig config;
  at::ScalarType dtype = at::kFloat;  // parameters, gradients and the compute
  // SDPA's fused kernels (model/fused_attention.h: CUDA with libtorch 2.x) keep O(T) per
  // query for attention; the eager path keeps the [T, T] softmax of every head.
  bool fused_attention = false;
  std::string optimizer = "rmsprop";           // rmsprop | adamw
  std::string optimizer_state_dtype = "fp32";  // fp32 | bf16
  bool weight_decay = false;                   // RMSprop's L2 term needs one more temporary
  int64_t sequences = 2;          // rows per micro-batch: 2 per SPIN pair (real, generated), 1 per SFT example
  int64_t max_length = 1024;      // tokens per row
  int64_t chunk_positions = 1024; // LM-head positions per chunk (SpinTrainOptions::chunk_positions)
  int64_t world_size = 1;         // data-parallel processes
  int64_t reference_pairs = 0;    // pairs whose reference log-probs the trainer caches
};

// Bytes, except parameters.
struct MemoryEstimate {
  int64_t parameters = 0;
  int64_t weights = 0;
  int64_t gradients = 0;
  int64_t optimizer_state = 0;
  int64_t master_weights = 0;
  int64_t layer_activations = 0;         // what one decoder layer keeps for the backward (the micro-batch)
  int64_t activations = 0;               // forward + backward peak without gradient checkpointing
  int64_t activations_checkpointed = 0;  // the same with gradient checkpointing
  int64_t step = 0;                      // optimizer temporaries or all-reduce buffers
  int64_t reference_cache = 0;           // host memory: 4 numbers of 8 bytes per pair

  // What stays allocated across steps: weights, gradients, optimizer state, master weights.
  int64_t resident() const { return weights + gradients + optimizer_state + master_weights; }
  int64_t peak(bool gradient_checkpointing) const;
};

MemoryEstimate estimate_training_memory(const TrainingMemoryShape& shape);

}  // namespace spinlm
