// Matrix-vector product for one-sequence decoding on the CPU.
//
// Decoding one token reads every weight once and does two flops per weight read, so it is
// bound by memory bandwidth. OpenBLAS's sgemv reaches about 23 GB/s on the 2-core test
// machines while a plain streaming read reaches more; this kernel streams the weight rows one
// after the other against the input vector (held in L1) and splits the rows between the
// intra-op threads, which reads about as fast as at::sum over the same weights
// (bench/bench_gemv.cpp).
#pragma once

#include "core/torch_pch.h"

namespace spinlm {

// True when fast_gemv handles this product: weight [out, in] and x [in] both fp32,
// contiguous, on the CPU, no autograd needed. Otherwise use at::mv.
bool fast_gemv_applies(const at::Tensor& weight, const at::Tensor& x);

// y = weight · x: weight [out, in], x [in] -> y [out] (fp32). Requires fast_gemv_applies.
at::Tensor fast_gemv(const at::Tensor& weight, const at::Tensor& x);

}  // namespace spinlm
