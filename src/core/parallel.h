// Splitting a loop between the intra-op threads (the --threads count).
//
// at::parallel_for is inline OpenMP code in libtorch's headers: in a file compiled without
// -fopenmp it silently runs the whole range on the calling thread. This one function is
// compiled with -fopenmp (see CMakeLists.txt), so code elsewhere gets real threads without
// that flag (which would also invalidate the precompiled header).
#pragma once
#include <cstdint>
#include <functional>

namespace spinlm {

// Calls body(chunk_begin, chunk_end) over [begin, end) split into chunks of at least grain
// items, on up to at::get_num_threads() threads; nested calls run inline.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

}  // namespace spinlm
