#include "core/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace spinlm {

void advise_huge_pages(const at::Tensor& tensor) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHugePage = uintptr_t(2) << 20;
  if (!tensor.defined() || !tensor.device().is_cpu()) return;
  const size_t bytes = tensor.storage().nbytes();
  if (bytes < 2 * kHugePage) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(tensor.storage().data());
  const uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t last = (begin + bytes) & ~(kHugePage - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // advice: ignore failure
#endif
}

}  // namespace spinlm
