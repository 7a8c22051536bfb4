// Gradient all-reduce in buckets: the gradients are packed into a few flat buffers of at most
// bucket_bytes each (same dtype and device), every buffer's all-reduce is started before the
// first is waited for, and the sums are copied back. Few large messages instead of one per
// parameter: a Llama layer has 9 tensors, and per-message latency dominates small ones.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace spinlm {

class GradientBuckets {
 public:
  // The plan for these parameters (their order, sizes and dtypes must not change later).
  GradientBuckets(const std::vector<at::Tensor>& params, int64_t bucket_bytes);

  // start(flat) launches an in-place sum of one flat buffer and returns a waiter for it.
  using Start = std::function<std::function<void()>(at::Tensor& flat)>;
  // Sums the gradients of params (the same list as at construction) in place; an undefined
  // gradient is made a zero tensor first, so every rank sends the same layout.
  void all_reduce(const std::vector<at::Tensor>& params, const Start& start);

  size_t bucket_count() const { return buckets_.size(); }

 private:
  std::vector<std::vector<size_t>> buckets_;  // parameter indices per bucket
  size_t param_count_ = 0;
};

}  // namespace spinlm
