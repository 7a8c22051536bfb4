// The inverse-CDF draw of sample_tokens for CPU tensors, done row by row on the host.
//
// At SPIN's temperature 1 with a 151936-token vocabulary and 64 rows, the draw touches
// 9.7M scores per decoding step; through tensor ops (softmax, cumsum, search in fp64) it
// cost several times the sampling itself, and libtorch 1.13's exp on Debian is scalar (about
// 2 ns a value). Here each row is two passes over its scores: a vectorised
// exp(s - max) into a row buffer with per-block sums, then a walk over the block sums to the
// block that holds the target and a scan inside it.
#pragma once
#include <cstdint>
#include <vector>

#include "core/torch_pch.h"
#include "core/vector_exp.h"  // exp_nonpositive, the row pass's exp (tests use it through here)

namespace spinlm {

// scores [B, V] fp32 CPU (filtered entries -inf, at least one finite entry per row),
// uniforms[b] in [0, 1). For each row: p_i = exp(s_i - max) / sum_j exp(s_j - max), summed
// in fp64, and the chosen token is the first whose cumulative probability exceeds u (the
// last token with mass when rounding puts u * total at the very end). Rows are split between
// the intra-op threads; a row's result never depends on the other rows.
std::vector<int64_t> sample_rows_on_host(const at::Tensor& scores, const std::vector<double>& uniforms);

}  // namespace spinlm
