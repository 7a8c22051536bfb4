// `spinlm version`: the build's versions (spinlm, libtorch), the thread count in use, the
// BLAS build libtorch runs on, and what the build can do on a GPU (CUDA devices visible,
// fused attention, CUDA graphs for decoding).
#include <cstdio>

#include "cli/command.h"
#include "core/threads.h"
#include "core/torch_compat.h"
#include "generate/cuda_graph.h"

namespace spinlm {
namespace {

CommandAction setup_version(CLI::App& app) {
  return [] {
    std::printf("spinlm 0.1.0\nlibtorch %s\nthreads %d\nblas %s\n",
#ifdef TORCH_VERSION
                TORCH_VERSION,
#else
                "unknown",
#endif
                at::get_num_threads(), blas_description());
    const int gpus = at::hasCUDA() ? static_cast<int>(c10::impl::getDeviceGuardImpl(at::kCUDA)->deviceCount()) : 0;
    std::printf("cuda devices %d\nfused attention (sdpa) %s\ncuda graphs %s\n", gpus,
                SPINLM_HAVE_SDPA ? "yes" : "no", CudaGraph::available() ? "yes" : "no");
  };
}

const bool registered = register_command("version", "print versions and thread count", setup_version);

}  // namespace
}  // namespace spinlm
