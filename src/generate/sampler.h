// Next-token sampling with HuggingFace transformers' semantics and a counter-based random
// source, so that a row's samples depend only on (seed, row, step), never on the batch it
// shares a forward pass with or the order rows finish in.
//
// Filters, in transformers' order (GenerationMixin._get_logits_processor with do_sample):
//   1. temperature  logits / T                                   (skipped when T == 1)
//   2. top-k        remove logits < the k-th largest (ties at the k-th value are all kept)
//   3. top-p        sort ascending, cumulative softmax; remove tokens whose cumulative
//                   probability is <= 1 - top_p, always keeping the most likely token
//                   (skipped when top_p >= 1). Equal scores sort in index order (a stable
//                   sort); transformers' torch.sort leaves their order to the device's sort
//                   kernel, which only matters for exact ties at the nucleus boundary.
//   4. min-p        remove tokens whose probability (softmax of the scores after 1-3) is
//                   < min_p * the largest probability                 (skipped when 0)
// min_tokens_to_keep is 1, as in sampling without beams. vLLM applies min-p on the
// distribution before top-k/top-p; spinlm follows transformers.
// Greedy decoding is argmax over the raw logits (ties: the lowest id, as torch.argmax).
// Temperature 0 means greedy (vLLM's convention; transformers rejects it).
#pragma once
#include <cstdint>
#include <vector>

#include "core/torch_pch.h"

namespace spinlm {

struct SamplingOptions {
  bool greedy = false;
  double temperature = 1.0;
  int64_t top_k = 0;   // 0: off
  double top_p = 1.0;  // 1: off
  double min_p = 0.0;  // 0: off

  // Errors naming the option (--temperature, --top-k, --top-p, --min-p) for values out of range.
  void validate() const;
  bool is_greedy() const { return greedy || temperature == 0.0; }
};

// The four warpers one by one on fp32 scores [B, V] (filtered entries become -inf), each
// exactly as transformers computes it. Exposed for tests.
at::Tensor apply_temperature(const at::Tensor& scores, double temperature);
at::Tensor apply_top_k(const at::Tensor& scores, int64_t top_k);
at::Tensor apply_top_p(const at::Tensor& scores, double top_p);
at::Tensor apply_min_p(const at::Tensor& scores, double min_p);

// All enabled filters in order: [B, V] fp32 logits -> [B, V] fp32 filtered scores.
at::Tensor filter_logits(const at::Tensor& logits, const SamplingOptions& options);

// The distribution tokens are drawn from: softmax of the filtered scores in fp64, [B, V].
// For greedy options it is one-hot at the argmax.
at::Tensor sampling_distribution(const at::Tensor& logits, const SamplingOptions& options);

// A uniform in [0, 1) that depends only on (seed, row, step): a counter-based generator
// (splitmix64 finalisers over the three counters), so no generator state is carried.
double counter_uniform(uint64_t seed, uint64_t row, uint64_t step);

// One token per row: logits [B, V] (any device; fp32 or other float), uniforms[b] in [0, 1)
// the row's random number for this step. Sampling is by inverse CDF on the filtered
// distribution: the first token whose cumulative probability (accumulated in fp64) exceeds
// u. On the CPU the weights exp(s - max) are summed on the host row by row; elsewhere the
// same is done with tensor ops (softmax, cumsum, searchsorted). Returns B ids.
std::vector<int64_t> sample_tokens(const at::Tensor& logits, const SamplingOptions& options,
                                   const std::vector<double>& uniforms);

// The same draw as tensor ops on the logits' device, with no host synchronisation (nothing
// is read back; usable inside a CUDA graph): logits [B, V], uniforms [B] fp64 on the same
// device -> ids [B] int64 there. Greedy options take the argmax. When rounding puts
// u * total at the very end of the cumulative sum, the last token with mass is taken.
at::Tensor sample_ids(const at::Tensor& logits, const SamplingOptions& options, const at::Tensor& uniforms);

}  // namespace spinlm
