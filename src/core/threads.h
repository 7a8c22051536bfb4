// Thread setup: intra-op (libtorch) and BLAS (OpenBLAS) threads. libtorch defaults to one
// thread on these machines and OpenBLAS reads its count from the environment at load time,
// so both are set explicitly.
#pragma once

namespace spinlm {

// threads <= 0: all cores. Returns the number used.
int setup_threads(int threads);

}  // namespace spinlm
