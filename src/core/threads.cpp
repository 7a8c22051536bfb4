#include "core/threads.h"

#include <thread>

#include "core/torch_pch.h"

// OpenBLAS's own setter, if the BLAS behind libtorch is OpenBLAS. Weak, so the binary
// also runs where another BLAS is installed.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace spinlm {

int setup_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  at::set_num_threads(threads);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(threads);
  return threads;
}

}  // namespace spinlm
