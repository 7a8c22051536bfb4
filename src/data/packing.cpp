#include "data/packing.h"

#include <algorithm>

#include "core/error.h"

namespace spinlm {

PackedBatch pack_blocks(const std::vector<PackBlock>& blocks, int64_t outputs) {
  check(!blocks.empty(), "cannot pack an empty batch");
  std::vector<int64_t> ids, positions, branches, starts{0}, sources, targets, owners;
  PackedBatch batch;
  batch.outputs = outputs;
  batch.scored_per_output.assign(static_cast<size_t>(outputs), 0);
  for (int64_t k = 0; k < outputs; ++k) batch.output_source.push_back(k);
  for (size_t b = 0; b < blocks.size(); ++b) {
    const PackBlock& block = blocks[b];
    const int64_t prefix_start = static_cast<int64_t>(ids.size());
    const int64_t prefix_length = static_cast<int64_t>(block.prefix.ids.size());
    // span k: 0 = prefix, k >= 1 = branch k.
    for (size_t k = 0; k <= block.branches.size(); ++k) {
      const PackedSpan& span = k == 0 ? block.prefix : block.branches[k - 1];
      const int64_t length = static_cast<int64_t>(span.ids.size());
      check(span.scored.empty() || span.scored.size() == span.ids.size(), "packing: block ", b, " span ", k,
            " has ", span.scored.size(), " scored flags for ", length, " tokens");
      check(k == 0 || prefix_length > 0, "packing: block ", b, " has a branch but no prefix");
      const int64_t span_start = static_cast<int64_t>(ids.size());
      for (int64_t t = 0; t < length; ++t) {
        ids.push_back(span.ids[t]);
        positions.push_back((k == 0 ? 0 : prefix_length) + t);
        branches.push_back(static_cast<int64_t>(k));
        if (span.scored.empty() || !span.scored[t]) continue;
        check(span.output >= 0 && span.output < outputs, "packing: block ", b, " span ", k, " output ",
              span.output, " outside 0..", outputs - 1);
        // The previous token of this one's view: the span's own, or the prefix's last.
        int64_t source = -1;
        if (t > 0) source = span_start + t - 1;
        else if (k > 0) source = prefix_start + prefix_length - 1;
        check(source >= 0, "packing: block ", b, ": the first token of a sequence cannot be scored");
        sources.push_back(source);
        targets.push_back(span.ids[t]);
        owners.push_back(span.output);
        batch.scored_per_output[span.output] += 1;
      }
    }
    check(static_cast<int64_t>(ids.size()) > prefix_start, "packing: block ", b, " is empty");
    starts.push_back(static_cast<int64_t>(ids.size()));
  }
  auto tensor = [](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); };
  batch.tokens.input_ids = tensor(ids);
  batch.tokens.positions = tensor(positions);
  batch.tokens.branches = tensor(branches);
  batch.tokens.block_starts = starts;
  batch.tokens.score_sources = sources.empty() ? at::zeros({0}, at::kLong) : tensor(sources);
  batch.tokens.score_targets = targets.empty() ? at::zeros({0}, at::kLong) : tensor(targets);
  batch.score_outputs = owners.empty() ? at::zeros({0}, at::kLong) : tensor(owners);
  batch.stream_tokens = static_cast<int64_t>(ids.size());
  return batch;
}

PackedBatch pack_pairs(const std::vector<const TokenPair*>& pairs) {
  const int64_t m = static_cast<int64_t>(pairs.size());
  std::vector<PackBlock> blocks;
  blocks.reserve(pairs.size());
  for (int64_t i = 0; i < m; ++i) {
    const TokenPair& p = *pairs[i];
    PackBlock block;
    block.prefix.ids = p.prompt;
    block.branches.push_back({p.real, std::vector<uint8_t>(p.real.size(), 1), i});
    if (p.generated != p.real) block.branches.push_back({p.generated, std::vector<uint8_t>(p.generated.size(), 1), m + i});
    blocks.push_back(std::move(block));
  }
  PackedBatch batch = pack_blocks(blocks, 2 * m);
  for (int64_t i = 0; i < m; ++i) {
    if (pairs[i]->generated != pairs[i]->real) continue;
    batch.output_source[m + i] = i;
    batch.scored_per_output[m + i] = batch.scored_per_output[i];
  }
  return batch;
}

PackedBatch pack_sequences(const std::vector<LabeledSequence>& sequences) {
  std::vector<PackBlock> blocks;
  blocks.reserve(sequences.size());
  for (size_t i = 0; i < sequences.size(); ++i) {
    PackBlock block;
    block.prefix = {sequences[i].ids, sequences[i].scored, static_cast<int64_t>(i)};
    blocks.push_back(std::move(block));
  }
  return pack_blocks(blocks, static_cast<int64_t>(sequences.size()));
}

at::Tensor sum_by_output(const PackedBatch& batch, const at::Tensor& values) {
  at::Tensor sums = at::zeros({batch.outputs}, values.options());
  if (values.numel() > 0) sums = sums.index_add(0, batch.score_outputs.to(values.device()), values);
  bool aliased = false;
  for (int64_t k = 0; k < batch.outputs; ++k) aliased = aliased || batch.output_source[k] != k;
  if (!aliased) return sums;
  return sums.index_select(0, at::tensor(batch.output_source, at::kLong).to(values.device()));
}

int64_t packed_pair_tokens(const TokenPair& pair) {
  return static_cast<int64_t>(pair.prompt.size() + pair.real.size() + pair.generated.size());
}

int64_t pair_length(const TokenPair& pair) {
  return static_cast<int64_t>(pair.prompt.size() + std::max(pair.real.size(), pair.generated.size()));
}

std::vector<std::vector<int64_t>> split_micro_batches(const std::vector<int64_t>& batch,
                                                      const std::vector<int64_t>& lengths,
                                                      const std::vector<int64_t>& tokens,
                                                      const MicroBatching& limit) {
  check(!has_limit(limit.max_tokens) || limit.max_tokens > 0, "max tokens per micro-batch must be positive, got ",
        limit.max_tokens);
  if (!has_limit(limit.max_tokens)) return group_by_length(batch, lengths, limit.examples);
  std::vector<int64_t> order = batch;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (tokens[a] != tokens[b]) return tokens[a] > tokens[b];
    return a < b;
  });
  std::vector<std::vector<int64_t>> micro;
  std::vector<int64_t> used;
  for (int64_t i : order) {
    size_t m = 0;
    while (m < micro.size() && used[m] + tokens[i] > limit.max_tokens) ++m;
    if (m == micro.size()) {
      micro.emplace_back();
      used.push_back(0);
    }
    micro[m].push_back(i);
    used[m] += tokens[i];
  }
  return micro;
}

}  // namespace spinlm
