#include "eval/fewshot_sampler.h"

#include "core/error.h"

namespace spinlm {

FewshotSampler::FewshotSampler(const TaskConfig& config, const std::vector<EvalDoc>& pool, std::string pool_source,
                               uint64_t seed)
    : config_(config), pool_source_(std::move(pool_source)), seed_(seed) {
  for (const auto& doc : pool) pools_[config.fewshot_by_subset ? doc.subset : ""].push_back(&doc);
}

std::vector<const EvalDoc*> FewshotSampler::select(const EvalDoc& doc, int k) {
  if (k <= 0) return {};
  const std::string key = config_.fewshot_by_subset ? doc.subset : "";
  const auto found = pools_.find(key);
  const size_t available = found == pools_.end() ? 0 : found->second.size();
  const int draws = config_.fewshot_draws_extra ? k + 1 : k;
  check(static_cast<int64_t>(available) >= draws, pool_source_, ": ", draws, " few-shot examples needed",
        key.empty() ? "" : " for subset '", key, key.empty() ? "" : "'", " but the file has ", available,
        " (lower --num-fewshot or add rows)");
  const auto& pool = found->second;
  std::vector<const EvalDoc*> drawn;
  if (config_.sampler == FewshotSamplerKind::kFirstN) {
    drawn.assign(pool.begin(), pool.begin() + draws);
  } else {
    auto generator = generators_.find(key);
    if (generator == generators_.end()) generator = generators_.emplace(key, PythonRandom(seed_)).first;
    for (int64_t index : generator->second.sample(static_cast<int64_t>(pool.size()), draws)) {
      drawn.push_back(pool[index]);
    }
  }
  // [x for x in fewshotex if x != doc][:num_fewshot]: docs compare by value.
  std::vector<const EvalDoc*> selected;
  for (const EvalDoc* candidate : drawn) {
    if (static_cast<int>(selected.size()) < k && candidate->row != doc.row) selected.push_back(candidate);
  }
  return selected;
}

}  // namespace spinlm
