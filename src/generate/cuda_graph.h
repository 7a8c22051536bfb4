// A CUDA graph around a piece of tensor code (issue 9): captured once, then replayed with one
// launch instead of one per kernel. Decoding a small model on a GPU is bound by kernel
// launches (hundreds per token, ~5 us each) rather than by the GPU; a graph removes that.
//
// Compiled in only where the libtorch has CUDA (CMake defines SPINLM_HAVE_CUDA_GRAPHS for
// this one file; Debian's CPU libtorch ships the CUDA headers but not the libraries), so the
// CPU build never links CUDA code. available() says which build this is.
#pragma once
#include <functional>
#include <memory>

namespace spinlm {

class CudaGraph {
 public:
  CudaGraph();
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // True when this build can capture CUDA graphs.
  static bool available();

  // On CUDA device device_index: runs body twice on a side stream (warm-up: lazy
  // initialisation, library workspaces, allocator pools), then captures one more call.
  // body must read and write only tensors that outlive the graph (static buffers), must not
  // synchronise with the host and must not copy from host memory. Error when capture fails
  // (the graph then stays unusable) or when !available().
  void capture(int device_index, const std::function<void()>& body);

  // Launches the captured work on the current stream of the capture's device.
  void replay();

  bool captured() const { return impl_ != nullptr; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;  // set once a capture succeeded
};

}  // namespace spinlm
