#include "dist/grad_buckets.h"

#include "core/error.h"

namespace spinlm {

GradientBuckets::GradientBuckets(const std::vector<at::Tensor>& params, int64_t bucket_bytes)
    : param_count_(params.size()) {
  check(bucket_bytes > 0, "gradient bucket size must be positive");
  std::vector<size_t> current;
  int64_t current_bytes = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    const bool same_kind = current.empty() || (params[current.front()].scalar_type() == p.scalar_type() &&
                                               params[current.front()].device() == p.device());
    if (!current.empty() && (!same_kind || current_bytes + bytes > bucket_bytes)) {
      buckets_.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(i);
    current_bytes += bytes;
  }
  if (!current.empty()) buckets_.push_back(std::move(current));
}

void GradientBuckets::all_reduce(const std::vector<at::Tensor>& params, const Start& start) {
  check(params.size() == param_count_, "gradient buckets were planned for ", param_count_,
        " parameters, got ", params.size());
  at::NoGradGuard no_grad;
  for (const at::Tensor& p : params) {
    if (!p.grad().defined()) const_cast<at::Tensor&>(p).mutable_grad() = at::zeros_like(p);
  }
  std::vector<at::Tensor> flats;
  std::vector<std::function<void()>> waits;
  for (const auto& bucket : buckets_) {
    std::vector<at::Tensor> pieces;
    for (size_t i : bucket) pieces.push_back(params[i].grad().reshape({-1}));
    at::Tensor flat = at::cat(pieces);  // [sum of numel] a fresh contiguous buffer
    flats.push_back(flat);
    waits.push_back(start(flats.back()));
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    waits[b]();
    int64_t offset = 0;
    for (size_t i : buckets_[b]) {
      at::Tensor grad = params[i].grad();
      const int64_t n = grad.numel();
      grad.copy_(flats[b].narrow(0, offset, n).view(grad.sizes()));
      offset += n;
    }
  }
}

}  // namespace spinlm
