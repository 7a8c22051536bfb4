#include "core/parallel.h"

#include <ATen/Parallel.h>

namespace spinlm {

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  at::parallel_for(begin, end, grain, [&](int64_t chunk_begin, int64_t chunk_end) { body(chunk_begin, chunk_end); });
}

}  // namespace spinlm
