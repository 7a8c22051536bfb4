// model/gemv.h and core/parallel.h: the decoding gemv against an fp64 matrix product
// (every tail case of the vector loop: lengths not multiples of 32 or 8, one row, rows
// split between threads), the conditions under which it is used, and the thread setup
// (at::parallel_for really parallel; OpenBLAS's OpenMP build loaded where installed).
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "core/huge_pages.h"
#include "core/parallel.h"
#include "core/threads.h"
#include "model/gemv.h"
#include "testkit.h"

using namespace spinlm;

TEST(Gemv, MatchesFp64ProductForAllTailLengths) {
  setup_threads(2);
  at::NoGradGuard no_grad;
  at::manual_seed(7);
  for (int64_t in : {1, 7, 8, 9, 31, 32, 33, 40, 96, 897}) {
    for (int64_t out : {1, 3, 4, 5, 300}) {
      at::Tensor weight = at::randn({out, in});  // [out, in]
      at::Tensor x = at::randn({in});            // [in]
      at::Tensor expected = at::mv(weight.to(at::kDouble), x.to(at::kDouble));
      at::Tensor actual = fast_gemv(weight, x);
      ASSERT_EQ(actual.sizes(), expected.sizes());
      // fp32 accumulation of `in` products: error grows like sqrt(in) * eps * |w||x|.
      double tolerance = 1e-6 * std::sqrt(double(in)) * (weight.abs().sum(1).max().item<double>() + 1);
      EXPECT_LE((actual.to(at::kDouble) - expected).abs().max().item<double>(), tolerance)
          << "out " << out << " in " << in;
    }
  }
}

TEST(Gemv, LargeProductSplitBetweenThreadsIsExact) {
  // 4096 rows of 896: above the threading grain, so rows go to both threads; each row is
  // one thread's dot product, so the result equals the one-thread result bit for bit.
  at::NoGradGuard no_grad;
  at::manual_seed(3);
  at::Tensor weight = at::randn({4096, 896});
  at::Tensor x = at::randn({896});
  setup_threads(1);
  at::Tensor one_thread = fast_gemv(weight, x);
  setup_threads(2);
  at::Tensor two_threads = fast_gemv(weight, x);
  EXPECT_TRUE(at::equal(one_thread, two_threads));
  at::Tensor expected = at::mv(weight.to(at::kDouble), x.to(at::kDouble));
  EXPECT_LE((two_threads.to(at::kDouble) - expected).abs().max().item<double>(), 1e-3);
}

TEST(Gemv, AppliesOnlyToContiguousFp32WithoutAutograd) {
  at::Tensor weight = at::randn({8, 16}), x = at::randn({16});
  EXPECT_TRUE(fast_gemv_applies(weight, x));
  EXPECT_FALSE(fast_gemv_applies(weight.to(at::kDouble), x.to(at::kDouble)));
  EXPECT_FALSE(fast_gemv_applies(weight.t(), at::randn({8})));  // transposed: not contiguous
  EXPECT_FALSE(fast_gemv_applies(weight, at::randn({15})));     // wrong length
  at::Tensor trainable = weight.clone().set_requires_grad(true);
  EXPECT_FALSE(fast_gemv_applies(trainable, x));  // autograd must see the product
  at::NoGradGuard no_grad;
  EXPECT_TRUE(fast_gemv_applies(trainable, x));
}

TEST(Parallel, UsesSeveralThreadsAndCoversTheRangeOnce) {
  // at::parallel_for compiled without -fopenmp runs on the calling thread only; the wrapper
  // must really split the range when more than one core is available.
  setup_threads(2);
  std::vector<std::atomic<int>> hits(1000);
  std::mutex mutex;
  std::set<std::thread::id> thread_ids;
  parallel_for(0, 1000, 1, [&](int64_t begin, int64_t end) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      thread_ids.insert(std::this_thread::get_id());
    }
    for (int64_t i = begin; i < end; ++i) hits[i]++;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the other thread start
  });
  for (const auto& hit : hits) EXPECT_EQ(hit.load(), 1);
  if (std::thread::hardware_concurrency() >= 2) EXPECT_EQ(thread_ids.size(), 2u);
}

TEST(Parallel, SpinlmRunsOnOpenBlasOpenMpBuildWhenInstalled) {
  // Two spinning thread pools (libtorch's OpenMP, OpenBLAS's pthreads) halve GEMM speed on
  // 2 cores; CMakeLists.txt points the executables at OpenBLAS's OpenMP build. The loaded
  // library describes its own build in `spinlm version`.
  auto result = testkit::run_spinlm("version");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("blas OpenBLAS"), std::string::npos) << result.output;
  if (std::filesystem::exists("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3")) {
    EXPECT_NE(result.output.find("USE_OPENMP"), std::string::npos) << result.output;
  }
}

namespace {

// AnonHugePages (kB) of the /proc/self/smaps mapping that holds address.
int64_t huge_kb_of_mapping(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  const auto target = reinterpret_cast<uintptr_t>(address);
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2 && line.find(':') > line.find(' ')) {
      inside = begin <= target && target < end;
      continue;
    }
    long kb = 0;
    if (inside && std::sscanf(line.c_str(), "AnonHugePages: %ld kB", &kb) == 1) return kb;
  }
  return -1;
}

}  // namespace

TEST(HugePages, AdvisedWeightsAreBackedByHugePages) {
  std::ifstream mode_file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode((std::istreambuf_iterator<char>(mode_file)), std::istreambuf_iterator<char>());
  if (mode.find("[never]") != std::string::npos || mode.empty()) GTEST_SKIP() << "THP off: " << mode;
  at::Tensor weights = at::empty({8 << 20}, at::kFloat);  // 32 MB, not yet touched
  advise_huge_pages(weights);
  weights.fill_(1.0f);
  // madvise covers the 2 MB-aligned middle of the buffer, which becomes its own mapping.
  const uintptr_t aligned = (reinterpret_cast<uintptr_t>(weights.data_ptr()) + (2 << 20) - 1) & ~uintptr_t((2 << 20) - 1);
  EXPECT_GT(huge_kb_of_mapping(reinterpret_cast<const void*>(aligned)), 0) << "THP mode: " << mode;
  EXPECT_EQ(weights.sum().item<float>(), float(8 << 20));  // advice never changes contents
}
