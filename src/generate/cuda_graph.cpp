// Built without the precompiled header (CMakeLists.txt): in CUDA builds this file alone sees
// SPINLM_HAVE_CUDA_GRAPHS and the CUDA headers.
#include "generate/cuda_graph.h"

#include "core/error.h"

#if SPINLM_HAVE_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace spinlm {

#if SPINLM_HAVE_CUDA_GRAPHS

struct CudaGraph::Impl {
  at::cuda::CUDAGraph graph;
  int device_index = 0;
};

bool CudaGraph::available() { return true; }

void CudaGraph::capture(int device_index, const std::function<void()>& body) {
  check(!captured(), "CudaGraph::capture: already captured");
  auto impl = std::make_unique<Impl>();
  impl->device_index = device_index;
  const auto device = static_cast<c10::DeviceIndex>(device_index);
  c10::cuda::CUDAGuard device_guard(device);
  // Capture needs a stream other than the default one; the work queued so far on the current
  // stream finishes first, and the side stream's work finishes before replays start.
  c10::cuda::getCurrentCUDAStream(device).synchronize();
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device);
  try {
    c10::cuda::CUDAStreamGuard stream_guard(side);
    body();
    body();
    side.synchronize();
    impl->graph.capture_begin();
    try {
      body();
    } catch (...) {
      try {
        impl->graph.capture_end();  // ends the stream capture; the graph is discarded
      } catch (...) {
      }
      throw;
    }
    impl->graph.capture_end();
    side.synchronize();
  } catch (const std::exception& error) {
    fail("CUDA graph capture failed: ", error.what());
  }
  impl_ = std::move(impl);
}

void CudaGraph::replay() {
  check(captured(), "CudaGraph::replay: nothing captured");
  c10::cuda::CUDAGuard device_guard(static_cast<c10::DeviceIndex>(impl_->device_index));
  impl_->graph.replay();
}

#else  // a libtorch without CUDA

struct CudaGraph::Impl {};

bool CudaGraph::available() { return false; }

void CudaGraph::capture(int, const std::function<void()>&) {
  fail("CUDA graphs need a libtorch built with CUDA; this spinlm was built against one without");
}

void CudaGraph::replay() { fail("CudaGraph::replay: nothing captured"); }

#endif

CudaGraph::CudaGraph() = default;
CudaGraph::~CudaGraph() = default;

}  // namespace spinlm
