// Truncation, length grouping and padding of training sequences.
//
// Truncation is TRL's DPOTrainer.tokenize_row (which uclaml/SPIN's trainer copies), with
// truncation_mode keep_end:
//   L = max(len(real), len(generated))     (responses already end with EOS)
//   if len(prompt) + L > max_length: prompt keeps its LAST max_prompt_length tokens
//   if still len(prompt) + L > max_length: both responses keep their FIRST
//      (max_length - max_prompt_length) tokens
// (so a truncated response may lose its EOS, and a short prompt can leave the sequence shorter
// than max_length: that is what TRL does).
#pragma once
#include <cstdint>
#include <vector>

#include "core/torch_pch.h"
#include "data/pairs.h"

namespace spinlm {

struct TruncationOptions {
  int64_t max_length = 1024;
  int64_t max_prompt_length = 512;
};

// Error when max_prompt_length >= max_length or either is not positive.
void validate_truncation(const TruncationOptions& options);
TokenPair truncate_pair(const TokenPair& pair, const TruncationOptions& options);

// A sequence and which of its tokens are scored (their log-prob counts in the loss).
struct LabeledSequence {
  std::vector<int64_t> ids;
  std::vector<uint8_t> scored;  // same length as ids; scored[0] must be 0 (nothing predicts it)
};

// prompt + response, the response tokens scored.
LabeledSequence pair_sequence(const std::vector<int64_t>& prompt, const std::vector<int64_t>& response);

// Right-padded batch. Position t of row n predicts token t + 1.
struct SequenceBatch {
  at::Tensor input_ids;       // [N, T] int64, padding 0
  at::Tensor attention_mask;  // [N, T] int64, 1 = real token
  at::Tensor targets;         // [N, T] int64: input_ids[n, t+1] where that token is scored, else -1
  at::Tensor target_mask;     // [N, T] fp32: 1 where targets[n, t] is scored
  int64_t real_tokens = 0;    // non-padding tokens
};
SequenceBatch collate_sequences(const std::vector<LabeledSequence>& sequences);

// The sequences of m pairs as one batch of 2m rows: [real_0 .. real_{m-1}, generated_0 ..
// generated_{m-1}], so one forward scores both sides.
SequenceBatch collate_pairs(const std::vector<const TokenPair*>& pairs);

// Splits a batch (indices into some data) into micro-batches of at most micro_size rows,
// grouped by length: rows sorted longest first (ties by index), then cut in order, so each
// micro-batch pads to similar lengths. The batch's content, hence its mean gradient, is
// unchanged.
std::vector<std::vector<int64_t>> group_by_length(const std::vector<int64_t>& batch,
                                                  const std::vector<int64_t>& lengths,
                                                  int64_t micro_size);

// A seeded permutation of 0..n-1 (Fisher-Yates over mt19937_64, the same on every platform).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

}  // namespace spinlm
