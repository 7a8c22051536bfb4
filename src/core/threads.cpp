#include "core/threads.h"

#include <thread>

#include "core/torch_pch.h"

// OpenBLAS's own setter, if the BLAS behind libtorch is OpenBLAS. Weak, so the binary
// also runs where another BLAS is installed.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" char* openblas_get_config() __attribute__((weak));

namespace spinlm {

int setup_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  at::set_num_threads(threads);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(threads);
  return threads;
}

const char* same_blas_environment() {
#ifdef SPINLM_OPENMP_BLAS_DIR
  return "LD_LIBRARY_PATH=" SPINLM_OPENMP_BLAS_DIR " ";
#else
  return "";
#endif
}

const char* blas_description() {
  return openblas_get_config != nullptr ? openblas_get_config() : "unknown";
}

}  // namespace spinlm
