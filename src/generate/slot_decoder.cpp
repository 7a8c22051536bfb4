#include "generate/slot_decoder.h"

#include <algorithm>

#include "core/error.h"
#include "core/logging.h"

namespace spinlm {

SlotDecoder::SlotDecoder(const Transformer& model, KVCache& cache, SamplingOptions sampling, bool use_cuda_graph,
                         int64_t key_bucket)
    : model_(model),
      cache_(cache),
      sampling_(std::move(sampling)),
      try_graph_(use_cuda_graph && model.device().is_cuda() && CudaGraph::available()),
      slots_(cache.num_slots()),
      key_bucket_(key_bucket) {
  check(key_bucket_ >= 1, "SlotDecoder: key_bucket must be >= 1, got ", key_bucket_);
  auto on_device = at::TensorOptions().device(model.device());
  input_ids_ = at::zeros({slots_, 1}, on_device.dtype(at::kLong));
  positions_ = at::zeros({slots_}, on_device.dtype(at::kLong));
  uniform_ = at::full({slots_}, 0.5, on_device.dtype(at::kDouble));
  output_ = at::zeros({slots_}, on_device.dtype(at::kLong));
}

void SlotDecoder::step() {
  at::Tensor hidden = model_.forward_decode_slots(input_ids_, positions_, cache_, key_length_);  // [S, 1, C]
  at::Tensor logits = model_.logits(hidden.view({slots_, -1}));                     // [S, V] fp32
  output_.copy_(sample_ids(logits, sampling_, uniform_));
  input_ids_.copy_(output_.view({slots_, 1}));
  positions_.add_(1);
}

at::Tensor SlotDecoder::run(const std::vector<int64_t>& last_tokens, const std::vector<int64_t>& positions,
                            const at::Tensor& uniforms) {
  check(static_cast<int64_t>(last_tokens.size()) == slots_ && static_cast<int64_t>(positions.size()) == slots_ &&
            uniforms.dim() == 2 && uniforms.size(1) == slots_,
        "SlotDecoder::run: one token and position per slot and uniforms [K, ", slots_, "]");
  at::NoGradGuard no_grad;
  const int64_t steps = uniforms.size(0);
  // Three uploads per window (each waits for the device once), then no host contact until
  // the tokens come back.
  const at::Tensor start_ids = at::tensor(last_tokens, at::kLong).view({slots_, 1});
  const at::Tensor start_positions = at::tensor(positions, at::kLong);
  input_ids_.copy_(start_ids);
  positions_.copy_(start_positions);
  const at::Tensor window_uniforms = uniforms.to(at::kDouble).to(model_.device());  // [K, S]

  // The keys this window reads: every position fed in it, rounded up to the bucket.
  const int64_t furthest = *std::max_element(positions.begin(), positions.end()) + steps;  // all positions < this
  key_length_ = std::min(cache_.max_tokens(), (furthest + key_bucket_ - 1) / key_bucket_ * key_bucket_);
  CudaGraph* graph = nullptr;
  if (try_graph_) {
    auto found = graphs_.find(key_length_);
    if (found != graphs_.end()) {
      graph = found->second.get();
    } else {
      auto captured = std::make_unique<CudaGraph>();
      try {
        // Capture runs the step eagerly twice: the keys it writes at the window's first
        // position are the ones the real step writes; the rest is overwritten before it is read.
        captured->capture(model_.device().index() < 0 ? 0 : model_.device().index(), [this] { step(); });
        log_info("decoding step captured as a CUDA graph (", slots_, " slots, keys ", key_length_, " of ",
                 cache_.max_tokens(), " positions)");
        graph = captured.get();
        graphs_.emplace(key_length_, std::move(captured));
      } catch (const Error& error) {
        log_warning(error.what(), "; decoding without CUDA graphs");
        try_graph_ = false;
      }
      input_ids_.copy_(start_ids);
      positions_.copy_(start_positions);
    }
  }

  at::Tensor tokens = at::empty({steps, slots_}, output_.options());  // [K, S] on the device
  for (int64_t k = 0; k < steps; ++k) {
    uniform_.copy_(window_uniforms[k]);
    if (graph != nullptr) {
      graph->replay();
    } else {
      step();
    }
    tokens[k].copy_(output_);
  }
  return tokens.to(at::kCPU);
}

}  // namespace spinlm
