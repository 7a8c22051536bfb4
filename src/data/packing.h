// Packed, padding-free batches (model/packed_tokens.h) and micro-batches formed by a token
// budget.
//
// A SPIN pair packs as one block: the prompt once, then the real answer, then the generated
// answer, the generated answer's positions restarting where the prompt ends, each answer
// attending to the prompt and itself only. An SFT conversation packs as a block with no
// branch; an lm-eval context with its continuations as a block whose branches are the
// continuations. A micro-batch is one stream of its blocks, back to back: no padding, and
// a pair's prompt is computed once instead of twice.
//
// Scores: every scored token adds its log-prob to one output (a sum per answer, per
// conversation or per continuation); pack_pairs' outputs are [real_0 .. real_{m-1},
// generated_0 .. generated_{m-1}], the order of collate_pairs. A pair whose two answers are
// the same tokens packs the answer once and both outputs take its one sum, so the two
// rewards are exactly equal (a tie, as reward accuracy counts it), as when two identical
// padded rows were scored.
#pragma once
#include <cstdint>
#include <vector>

#include "core/limits.h"
#include "core/torch_pch.h"
#include "data/collate.h"
#include "data/pairs.h"
#include "model/packed_tokens.h"

namespace spinlm {

// Tokens of one part of a block, which of them are scored and the output their log-probs
// add to. A token is predicted by the token before it in its view (the prefix for a
// branch's first token), so a prefix's first token cannot be scored.
struct PackedSpan {
  std::vector<int64_t> ids;
  std::vector<uint8_t> scored;  // empty: none; else one flag per id
  int64_t output = -1;          // needed when any token is scored
};

struct PackBlock {
  PackedSpan prefix;
  std::vector<PackedSpan> branches;  // each continues the prefix; a branch needs a non-empty prefix
};

struct PackedBatch {
  PackedTokens tokens;            // on the CPU
  at::Tensor score_outputs;       // [S] int64: the output of scored token s
  int64_t outputs = 0;
  std::vector<int64_t> output_source;  // [outputs] output k's value is output output_source[k]'s sum
  std::vector<int64_t> scored_per_output;  // [outputs] scored tokens of each output
  int64_t stream_tokens = 0;      // N: positions the forward computes (all of them useful)
};

// Error naming the block and span on a malformed block (output out of range, scored first
// token of a prefix, flags not matching ids, an empty block, a branch without a prefix).
PackedBatch pack_blocks(const std::vector<PackBlock>& blocks, int64_t outputs);

// The blocks of m pairs (prompt; real, generated) with outputs real_i = i, generated_i = m + i.
PackedBatch pack_pairs(const std::vector<const TokenPair*>& pairs);
// One block per sequence (its scored tokens, output = its index).
PackedBatch pack_sequences(const std::vector<LabeledSequence>& sequences);

// Sum over the scored tokens of each output: values [S] -> [outputs] (autograd flows).
// An output whose output_source is another takes that output's sum.
at::Tensor sum_by_output(const PackedBatch& batch, const at::Tensor& values);

// Tokens a pair takes packed: prompt + real + generated.
int64_t packed_pair_tokens(const TokenPair& pair);
// The longer of its two sequences, prompt + max(real, generated): what pairs are grouped by
// for fixed-count micro-batches.
int64_t pair_length(const TokenPair& pair);

// How a batch is cut into micro-batches: a max_tokens limit packs examples (first fit, longest
// first, ties by index) into micro-batches of at most max_tokens packed tokens each (an
// example longer than that alone); kNoLimit cuts examples into fixed micro-batches of
// `examples` each (group_by_length). The batch's content, hence its mean gradient, is the
// same either way.
struct MicroBatching {
  int64_t examples = 8;
  int64_t max_tokens = kNoLimit;  // packed tokens per micro-batch
};
// lengths: what group_by_length sorts by; tokens: each example's packed tokens.
std::vector<std::vector<int64_t>> split_micro_batches(const std::vector<int64_t>& batch,
                                                      const std::vector<int64_t>& lengths,
                                                      const std::vector<int64_t>& tokens,
                                                      const MicroBatching& limit);

}  // namespace spinlm
