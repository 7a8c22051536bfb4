// exp over a float array, vectorised (AVX2 + FMA where the CPU has them): libtorch 1.13's exp
// on Debian is scalar (about 2 ns a value), and both the sampler (a 151936-token row per
// sequence per step) and the decoding attention (a softmax per head per step) need millions
// of them per step.
#pragma once
#include <cstdint>

namespace spinlm {

// out[i] = exp(x[i] - shift) for x[i] <= shift, in fp32 (a Cephes-style polynomial, relative
// error about 2e-7; 0 where x[i] - shift < -87.3, where fp32 exp underflows anyway, and for
// -inf and NaN). out may be x.
void exp_nonpositive(const float* x, float* out, int64_t n, float shift);

}  // namespace spinlm
