// Decoding on the model's device without reading anything back per token (issue 9). Every
// slot of the KV cache steps together, with static shapes: a step feeds each slot's last
// token at its position (Transformer::forward_decode_slots), takes the LM head and draws the
// next token on the device (sample_ids) with a uniform uploaded beforehand; the drawn tokens
// become the next step's input in place. run() does K such steps and reads the K x S tokens
// back once. On CUDA the step is captured once as a CUDA graph and replayed (one launch per
// token instead of hundreds); everywhere else it runs eagerly (tests run it on the CPU).
//
// Free or finished slots step too (their keys go to their own slot, which is reset before it
// takes a new prompt); positions past the cache's end are clamped onto its last position.
//
// Keys are read only up to a bucket (a multiple of key_bucket positions) that covers every
// position the window's live rows take, not over the whole cache: with long prompts the
// cache can be as large as the weights, and reading all of it every step would nearly double
// a step. A graph is captured per bucket the call reaches (a handful: prompt + answer
// lengths / key_bucket).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "generate/cuda_graph.h"
#include "generate/sampler.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

namespace spinlm {

class SlotDecoder {
 public:
  // use_cuda_graph: capture the step on the first run() when the model is on a CUDA device
  // and this build has CUDA graphs; a failed capture logs a warning and runs eagerly.
  SlotDecoder(const Transformer& model, KVCache& cache, SamplingOptions sampling, bool use_cuda_graph,
              int64_t key_bucket = 128);

  // last_tokens[s], positions[s]: slot s's input token and its position (S entries each);
  // uniforms [K, S] fp64 on the CPU: the random number of slot s at step k. Returns the
  // sampled tokens [K, S] int64 on the CPU; token k of slot s was fed at position
  // positions[s] + k + 1 in step k + 1. The cache's host-side lengths are not touched.
  at::Tensor run(const std::vector<int64_t>& last_tokens, const std::vector<int64_t>& positions,
                 const at::Tensor& uniforms);

  // CUDA graphs captured so far: one per key bucket used (0: the steps ran kernel by kernel).
  int64_t graphs_captured() const { return static_cast<int64_t>(graphs_.size()); }

 private:
  // One step on the static buffers: input_ids_, positions_, uniform_ -> output_;
  // then input_ids_ = output_ and positions_ += 1.
  void step();

  const Transformer& model_;
  KVCache& cache_;
  SamplingOptions sampling_;
  bool try_graph_;
  int64_t slots_;
  int64_t key_bucket_;
  int64_t key_length_ = 0;  // keys the step reads: a multiple of key_bucket, or max_tokens (fixed inside a graph)
  at::Tensor input_ids_;  // [S, 1] int64
  at::Tensor positions_;  // [S] int64
  at::Tensor uniform_;    // [S] fp64
  at::Tensor output_;     // [S] int64
  std::map<int64_t, std::unique_ptr<CudaGraph>> graphs_;  // key length -> its captured step
};

}  // namespace spinlm
