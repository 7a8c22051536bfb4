// Ascending stable sort of each row of a score matrix on the CPU, for top-p filtering.
//
// Top-p sorts the whole vocabulary of every row at every step. libtorch's CPU sort is a
// comparison sort run row after row: 64 rows of Qwen2's 151936 scores took ~600 ms a step,
// longer than the decoding forward itself. Scores are floats, so a least-significant-digit
// radix sort on their bits (three passes of 11 bits) orders them in O(V), and the rows are
// split between the intra-op threads.
#pragma once
#include <utility>

#include "core/torch_pch.h"

namespace spinlm {

// True when sort_rows_ascending handles the tensor: [B, V] fp32 on the CPU.
bool sort_rows_applies(const at::Tensor& scores);

// scores [B, V] fp32 CPU -> (values [B, V] fp32, indices [B, V] int64): each row ascending,
// equal values in index order (a stable sort; -0.0 and +0.0 are equal, -inf comes first,
// NaN last), exactly the order of at::sort(scores, /*stable=*/true, -1, false).
std::pair<at::Tensor, at::Tensor> sort_rows_ascending(const at::Tensor& scores);

}  // namespace spinlm
