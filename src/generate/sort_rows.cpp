#include "generate/sort_rows.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

namespace spinlm {
namespace {

// A float's bits mapped to an unsigned key with the same order: negatives have all bits
// flipped (larger magnitude -> smaller key), non-negatives get the sign bit set. -0.0 is
// keyed as +0.0 and every NaN as the largest key.
uint32_t order_key(float value) {
  if (std::isnan(value)) return 0xFFFFFFFFu;
  if (value == 0.0f) value = 0.0f;
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

struct Entry {
  uint32_t key;
  uint32_t index;
};

constexpr int kDigitBits[3] = {11, 11, 10};
constexpr int kDigitShift[3] = {0, 11, 22};

// One row: scores [V] -> indices in ascending stable order, values in that order.
void sort_row(const float* scores, int64_t vocab, float* values, int64_t* indices, std::vector<Entry>& a,
              std::vector<Entry>& b) {
  a.resize(vocab);
  b.resize(vocab);
  std::vector<uint32_t> counts[3];
  for (int pass = 0; pass < 3; ++pass) counts[pass].assign(size_t(1) << kDigitBits[pass], 0);
  for (int64_t i = 0; i < vocab; ++i) {
    const uint32_t key = order_key(scores[i]);
    a[i] = {key, static_cast<uint32_t>(i)};
    for (int pass = 0; pass < 3; ++pass) ++counts[pass][(key >> kDigitShift[pass]) & ((1u << kDigitBits[pass]) - 1)];
  }
  Entry* from = a.data();
  Entry* to = b.data();
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<uint32_t>& count = counts[pass];
    // A digit every key shares moves nothing: skip the pass.
    if (count[(from[0].key >> kDigitShift[pass]) & ((1u << kDigitBits[pass]) - 1)] == vocab) continue;
    uint32_t offset = 0;
    for (uint32_t& c : count) {
      const uint32_t here = c;
      c = offset;
      offset += here;
    }
    const uint32_t mask = (1u << kDigitBits[pass]) - 1;
    for (int64_t i = 0; i < vocab; ++i) to[count[(from[i].key >> kDigitShift[pass]) & mask]++] = from[i];
    std::swap(from, to);
  }
  for (int64_t i = 0; i < vocab; ++i) {
    indices[i] = from[i].index;
    values[i] = scores[from[i].index];
  }
}

}  // namespace

bool sort_rows_applies(const at::Tensor& scores) {
  return scores.dim() == 2 && scores.device().is_cpu() && scores.scalar_type() == at::kFloat &&
         scores.size(1) < (int64_t(1) << 32);
}

std::pair<at::Tensor, at::Tensor> sort_rows_ascending(const at::Tensor& scores) {
  check(sort_rows_applies(scores), "sort_rows_ascending: needs [B, V] fp32 CPU scores");
  const at::Tensor input = scores.contiguous();
  const int64_t rows = input.size(0), vocab = input.size(1);
  at::Tensor values = at::empty({rows, vocab}, input.options());                  // [B, V]
  at::Tensor indices = at::empty({rows, vocab}, input.options().dtype(at::kLong));  // [B, V]
  if (vocab == 0) return {values, indices};
  const float* in = input.data_ptr<float>();
  float* out_values = values.data_ptr<float>();
  int64_t* out_indices = indices.data_ptr<int64_t>();
  parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    // Kept per thread across calls: fresh 1-2 MB buffers each step would be new pages the
    // kernel has to fault in and zero every time.
    thread_local std::vector<Entry> a, b;
    for (int64_t r = begin; r < end; ++r) {
      sort_row(in + r * vocab, vocab, out_values + r * vocab, out_indices + r * vocab, a, b);
    }
  });
  return {values, indices};
}

}  // namespace spinlm
