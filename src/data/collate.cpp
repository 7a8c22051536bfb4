#include "data/collate.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/error.h"

namespace spinlm {

void validate_truncation(const TruncationOptions& options) {
  check(options.max_length > 0 && options.max_prompt_length > 0,
        "max length and max prompt length must be positive");
  check(options.max_prompt_length < options.max_length, "max prompt length (",
        options.max_prompt_length, ") must be below max length (", options.max_length, ")");
}

TokenPair truncate_pair(const TokenPair& pair, const TruncationOptions& options) {
  TokenPair out = pair;
  const int64_t longer = static_cast<int64_t>(std::max(out.real.size(), out.generated.size()));
  auto too_long = [&] { return static_cast<int64_t>(out.prompt.size()) + longer > options.max_length; };
  if (too_long() && static_cast<int64_t>(out.prompt.size()) > options.max_prompt_length) {
    out.prompt.erase(out.prompt.begin(), out.prompt.end() - options.max_prompt_length);
  }
  if (too_long()) {
    const size_t keep = static_cast<size_t>(options.max_length - options.max_prompt_length);
    if (out.real.size() > keep) out.real.resize(keep);
    if (out.generated.size() > keep) out.generated.resize(keep);
  }
  return out;
}

LabeledSequence pair_sequence(const std::vector<int64_t>& prompt, const std::vector<int64_t>& response) {
  LabeledSequence seq;
  seq.ids = prompt;
  seq.ids.insert(seq.ids.end(), response.begin(), response.end());
  seq.scored.assign(prompt.size(), 0);
  seq.scored.resize(seq.ids.size(), 1);
  return seq;
}

SequenceBatch collate_sequences(const std::vector<LabeledSequence>& sequences) {
  check(!sequences.empty(), "cannot collate an empty batch");
  const int64_t n = static_cast<int64_t>(sequences.size());
  int64_t t_max = 0;
  for (const auto& s : sequences) t_max = std::max<int64_t>(t_max, static_cast<int64_t>(s.ids.size()));
  SequenceBatch batch;
  batch.input_ids = at::zeros({n, t_max}, at::kLong);
  batch.attention_mask = at::zeros({n, t_max}, at::kLong);
  batch.targets = at::full({n, t_max}, -1, at::kLong);
  batch.target_mask = at::zeros({n, t_max}, at::kFloat);
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto mask = batch.attention_mask.accessor<int64_t, 2>();
  auto targets = batch.targets.accessor<int64_t, 2>();
  auto target_mask = batch.target_mask.accessor<float, 2>();
  for (int64_t r = 0; r < n; ++r) {
    const LabeledSequence& s = sequences[r];
    const int64_t len = static_cast<int64_t>(s.ids.size());
    check(s.scored.size() == s.ids.size(), "labeled sequence with mismatched mask");
    check(len == 0 || !s.scored[0], "the first token of a sequence cannot be scored");
    for (int64_t t = 0; t < len; ++t) {
      ids[r][t] = s.ids[t];
      mask[r][t] = 1;
      if (t + 1 < len && s.scored[t + 1]) {
        targets[r][t] = s.ids[t + 1];
        target_mask[r][t] = 1.0f;
      }
    }
    batch.real_tokens += len;
  }
  return batch;
}

SequenceBatch collate_pairs(const std::vector<const TokenPair*>& pairs) {
  std::vector<LabeledSequence> sequences;
  sequences.reserve(pairs.size() * 2);
  for (const TokenPair* p : pairs) sequences.push_back(pair_sequence(p->prompt, p->real));
  for (const TokenPair* p : pairs) sequences.push_back(pair_sequence(p->prompt, p->generated));
  return collate_sequences(sequences);
}

std::vector<std::vector<int64_t>> group_by_length(const std::vector<int64_t>& batch,
                                                  const std::vector<int64_t>& lengths,
                                                  int64_t micro_size) {
  check(micro_size > 0, "micro-batch size must be positive");
  std::vector<int64_t> order = batch;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (lengths[a] != lengths[b]) return lengths[a] > lengths[b];
    return a < b;
  });
  std::vector<std::vector<int64_t>> micro;
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(micro_size)) {
    micro.emplace_back(order.begin() + i,
                       order.begin() + std::min(order.size(), i + static_cast<size_t>(micro_size)));
  }
  return micro;
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

}  // namespace spinlm
