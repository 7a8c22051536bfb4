// Few-shot examples as the harness's ContextSampler picks them: one random.Random(1234) per
// (sub)task, sample(pool, k) per evaluated document in document order (so the stream of
// random numbers, and thus every prompt, matches the harness's); k + 1 drawn and the
// document itself removed when the task's fewshot split is its test split; "first_n" takes
// the first k. With fewshot_by_subset the pool is the rows of the document's subset, each
// subset with its own generator (the harness runs each MMLU subject as its own task).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "eval/python_random.h"
#include "eval/task_config.h"

namespace spinlm {

class FewshotSampler {
 public:
  // pool_source names the pool's file in errors.
  FewshotSampler(const TaskConfig& config, const std::vector<EvalDoc>& pool, std::string pool_source,
                 uint64_t seed = 1234);

  // The k examples for doc; call once per evaluated document, in order.
  std::vector<const EvalDoc*> select(const EvalDoc& doc, int k);

 private:
  const TaskConfig& config_;
  std::string pool_source_;
  std::map<std::string, std::vector<const EvalDoc*>> pools_;  // by subset ("" without subsets)
  std::map<std::string, PythonRandom> generators_;
  uint64_t seed_;
};

}  // namespace spinlm
