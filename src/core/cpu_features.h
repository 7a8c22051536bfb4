// Whether this CPU runs spinlm's AVX2 + FMA kernels (one-row gemv, decoding attention,
// vectorised exp). Each of them keeps a portable fallback for CPUs without these.
#pragma once

namespace spinlm {

inline bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

}  // namespace spinlm
