// `spinlm version`: the build's versions (spinlm, libtorch), the thread count in use and the
// BLAS build libtorch runs on.
#include <cstdio>

#include "cli/command.h"
#include "core/threads.h"
#include "core/torch_compat.h"

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
  };
}

const bool registered = register_command("version", "print versions and thread count", setup_version);

}  // namespace
}  // namespace spinlm
