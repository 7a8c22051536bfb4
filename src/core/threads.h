// Thread setup: intra-op (libtorch) and BLAS (OpenBLAS) threads. libtorch defaults to one
// thread on these machines and OpenBLAS reads its count from the environment at load time,
// so both are set explicitly.
#pragma once

namespace spinlm {

// threads <= 0: all cores. Returns the number used.
int setup_threads(int threads);

// The BLAS behind libtorch as OpenBLAS describes its build (openblas_get_config(): version,
// "USE_OPENMP" for the build that shares libtorch's threads, CPU kernel), or "unknown".
const char* blas_description();

// "LD_LIBRARY_PATH=DIR " when spinlm was linked to OpenBLAS's OpenMP build in DIR (see
// CMakeLists.txt), else "": benchmarks prefix their Python baselines' commands with it so
// both sides of a comparison run on the same BLAS.
const char* same_blas_environment();

}  // namespace spinlm
