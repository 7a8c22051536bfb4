// A padding-free batch for the decoder: one flat stream of N tokens cut into independent
// blocks (cu_seqlens). A block is a shared prefix followed by branches that each continue
// it: a SPIN pair is prompt, real answer, generated answer; an lm-eval request is one
// context and its continuations; an SFT conversation is a prefix with no branch.
//
// Token i of a block attends to token j of the same block when j comes no later in the
// stream, j is in the prefix (branch 0) or in i's own branch, and (sliding window) their
// positions are within the window. Positions are the RoPE positions: a branch continues
// the prefix's positions, so every branch sees exactly what it would as its own sequence
// prefix + branch. Tokens of different blocks never see each other.
#pragma once
#include <cstdint>
#include <vector>

#include "core/torch_pch.h"

namespace spinlm {

struct PackedTokens {
  at::Tensor input_ids;  // [N] int64
  at::Tensor positions;  // [N] int64
  at::Tensor branches;   // [N] int64: 0 = the block's prefix, k > 0 = its k-th branch
  std::vector<int64_t> block_starts;  // blocks + 1 offsets into the stream: 0, ..., N
  // The scored tokens: hidden state sources[s] predicts token targets[s] (the previous
  // token of target s in its own view: its prefix + branch).
  at::Tensor score_sources;  // [S] int64 stream indices
  at::Tensor score_targets;  // [S] int64 token ids
};

// allowed[i, j] of one block, from its positions [L] and branches [L] (int64, any device)
// -> [L, L] bool (the rule above; sliding_window <= 0: none).
at::Tensor packed_block_allowed(const at::Tensor& positions, const at::Tensor& branches, int64_t sliding_window);

// The same attention as plain causal attentions, the fused kernels' case (no mask): a view's
// rows attend causally among themselves, and only its last `keep` rows' outputs are used. A
// block is its prefix with its first branch (contiguous rows, every output kept), then the
// prefix with each further branch (gathered rows, the branch's outputs kept); the kept rows
// of all views, in order, are the stream's rows in order.
struct CausalView {
  std::vector<int64_t> rows;  // stream rows, ascending
  int64_t keep = 0;
  bool contiguous() const { return rows.empty() || rows.back() - rows.front() + 1 == int64_t(rows.size()); }
};
// Every block's views; empty when some block cannot be cut so (a sliding window shorter than
// the block, or a branch whose tokens are not one run after the prefix).
std::vector<CausalView> packed_causal_views(const PackedTokens& packed, int64_t sliding_window);

}  // namespace spinlm
