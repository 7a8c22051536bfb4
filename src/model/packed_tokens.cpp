#include "model/packed_tokens.h"

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

}  // namespace spinlm
