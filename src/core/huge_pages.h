// Transparent huge pages for large, long-lived CPU tensors (model weights).
//
// One-sequence decoding streams every weight once per token; with 4 KB pages that is half a
// million TLB entries per token for a 0.5B model. Debian's kernels default to THP "madvise",
// so a region must ask for 2 MB pages. A standalone gemv over the Qwen2-0.5B weights read
// ~15% faster from madvised memory on the test machine (bench/bench_gemv.cpp compares both).
#pragma once

#include "core/torch_pch.h"

namespace spinlm {

// Asks the kernel to back the 2 MB-aligned part of tensor's storage with huge pages (advice
// only: results never change; no-op for non-CPU tensors, small tensors or where the kernel
// says no). Call it before the memory is first written, e.g. right after at::empty.
void advise_huge_pages(const at::Tensor& tensor);

}  // namespace spinlm
