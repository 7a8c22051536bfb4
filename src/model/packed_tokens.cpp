#include "model/packed_tokens.h"

#include <set>

namespace spinlm {

at::Tensor packed_block_allowed(const at::Tensor& positions, const at::Tensor& branches, int64_t sliding_window) {
  const int64_t L = positions.size(0);
  auto bool_options = at::TensorOptions().device(positions.device()).dtype(at::kBool);
  at::Tensor allowed = at::ones({L, L}, bool_options).tril();  // j no later than i in the stream
  // j in the prefix, or in i's branch.
  allowed = allowed & ((branches.unsqueeze(0) == 0) | (branches.unsqueeze(0) == branches.unsqueeze(1)));
  if (sliding_window > 0) allowed = allowed & (positions.unsqueeze(1) - positions.unsqueeze(0) < sliding_window);
  return allowed;
}

std::vector<CausalView> packed_causal_views(const PackedTokens& packed, int64_t sliding_window) {
  const at::Tensor branches = packed.branches.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t* branch = branches.data_ptr<int64_t>();
  std::vector<CausalView> views;
  for (size_t b = 0; b + 1 < packed.block_starts.size(); ++b) {
    const int64_t start = packed.block_starts[b], end = packed.block_starts[b + 1];
    if (sliding_window > 0 && end - start > sliding_window) return {};
    int64_t prefix_end = start;
    while (prefix_end < end && branch[prefix_end] == 0) ++prefix_end;
    std::vector<std::pair<int64_t, int64_t>> runs;  // [from, to) of each branch
    std::set<int64_t> seen;
    for (int64_t i = prefix_end; i < end;) {
      int64_t j = i;
      while (j < end && branch[j] == branch[i]) ++j;
      if (branch[i] == 0 || !seen.insert(branch[i]).second) return {};
      runs.emplace_back(i, j);
      i = j;
    }
    CausalView first;
    for (int64_t i = start; i < (runs.empty() ? end : runs.front().second); ++i) first.rows.push_back(i);
    first.keep = int64_t(first.rows.size());
    views.push_back(std::move(first));
    for (size_t r = 1; r < runs.size(); ++r) {
      CausalView view;
      for (int64_t i = start; i < prefix_end; ++i) view.rows.push_back(i);
      for (int64_t i = runs[r].first; i < runs[r].second; ++i) view.rows.push_back(i);
      view.keep = runs[r].second - runs[r].first;
      views.push_back(std::move(view));
    }
  }
  return views;
}

}  // namespace spinlm
