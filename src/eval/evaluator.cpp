#include "eval/evaluator.h"

#include <algorithm>

#include "core/error.h"
#include "core/logging.h"
#include "eval/fewshot_sampler.h"
#include "eval/greedy_generation.h"
#include "eval/loglikelihood.h"
#include "eval/metrics.h"
#include "eval/prompt_builder.h"
#include "eval/task_data.h"

namespace spinlm {

int effective_num_fewshot(const TaskConfig& config, int requested) {
  // evaluator.simple_evaluate: a task whose config says 0-shot ignores --num_fewshot.
  if (requested < 0 || config.num_fewshot == 0) return config.num_fewshot;
  return requested;
}

TaskPrompts build_task_prompts(const TaskDefinition& task, const EvalOptions& options) {
  TaskPrompts prompts;
  const TaskConfig& config = task.config;
  prompts.num_fewshot = effective_num_fewshot(config, options.num_fewshot);
  prompts.docs = load_task_docs(task_docs_path(config, options.data_dir), task.process, options.limit);
  const std::string pool_path = task_fewshot_path(config, options.data_dir);
  if (prompts.num_fewshot > 0) prompts.fewshot_pool = load_task_docs(pool_path, task.process);
  FewshotSampler sampler(config, prompts.fewshot_pool, pool_path);
  for (const EvalDoc& doc : prompts.docs) {
    const auto shots = sampler.select(doc, prompts.num_fewshot);
    const std::string prefix = fewshot_prefix(config, doc, shots);
    if (config.output_type == OutputType::kMultipleChoice) {
      prompts.loglikelihood.push_back(loglikelihood_requests(config, doc, prefix));
    } else {
      prompts.generation.push_back(generation_context(doc, prefix));
    }
  }
  return prompts;
}

namespace {

std::map<std::string, MetricSummary> summarize(const std::vector<std::map<std::string, double>>& doc_metrics,
                                               const std::vector<size_t>& members) {
  std::map<std::string, std::vector<double>> values;
  for (size_t i : members) {
    for (const auto& [name, value] : doc_metrics[i]) values[name].push_back(value);
  }
  std::map<std::string, MetricSummary> out;
  for (const auto& [name, list] : values) out[name] = MetricSummary{mean(list), mean_stderr(list)};
  return out;
}

// [dist] Every rank scored its documents (d % ranks == rank) and left the others' maps
// empty; afterwards every rank has every document's metrics (a sum over the ranks of
// [document x metric] values, zero where a rank did not score).
void gather_doc_metrics(const TaskConfig& config, const Ranks& ranks,
                        std::vector<std::map<std::string, double>>& doc_metrics) {
  if (ranks.group == nullptr) return;
  const std::vector<std::string>& names = config.metrics;
  std::vector<double> values(doc_metrics.size() * names.size(), 0.0);
  for (size_t d = 0; d < doc_metrics.size(); ++d) {
    if (!ranks.mine(int64_t(d))) continue;
    for (const auto& [name, value] : doc_metrics[d]) {
      const auto at = std::find(names.begin(), names.end(), name);
      check(at != names.end(), "task ", config.name, ": metric ", name, " is not in its metric list");
      values[d * names.size() + size_t(at - names.begin())] = value;
    }
    check(doc_metrics[d].size() == names.size(), "task ", config.name, ": document ", d,
          " does not report every metric of the task");
  }
  ranks.sum(values);
  for (size_t d = 0; d < doc_metrics.size(); ++d)
    for (size_t m = 0; m < names.size(); ++m) doc_metrics[d][names[m]] = values[d * names.size() + m];
}

}  // namespace

TaskResult evaluate_task(const Transformer& model, const TextCodec& codec, const TaskDefinition& task,
                         const EvalOptions& options) {
  const TaskConfig& config = task.config;
  TaskPrompts prompts = build_task_prompts(task, options);
  TaskResult result;
  result.name = config.name;
  result.config = config;
  result.config.num_fewshot = prompts.num_fewshot;
  result.num_docs = static_cast<int64_t>(prompts.docs.size());
  log_info(config.name, ": ", prompts.docs.size(), " documents, ", prompts.num_fewshot, "-shot");

  if (config.output_type == OutputType::kMultipleChoice) {
    // The harness's eot_token_id stands in for an empty context (-1: none known).
    const int64_t empty_context_id = options.eos_ids.empty() ? -1 : options.eos_ids.front();
    std::optional<int64_t> bos;
    if (config.add_bos) {
      bos = codec.bos_id();
      check(bos.has_value(), "task ", config.name, " asks for BOS but the tokenizer has no bos_token");
    }
    std::vector<LoglikelihoodRequest> requests;  // this rank's documents'
    for (size_t d = 0; d < prompts.docs.size(); ++d) {
      if (!options.ranks.mine(int64_t(d))) continue;
      for (const auto& [context, continuation] : prompts.loglikelihood[d]) {
        requests.push_back(
            encode_loglikelihood_request(codec.tokenizer(), context, continuation, empty_context_id, bos));
      }
    }
    LoglikelihoodOptions ll_options;
    ll_options.batch_size = options.batch_size;
    ll_options.max_length = options.max_length;
    ll_options.show_progress = options.show_progress && options.ranks.writer();
    ll_options.journal = {options.journal, config.name};
    const auto scores = score_loglikelihood(model, requests, ll_options);
    size_t next = 0;
    for (size_t d = 0; d < prompts.docs.size(); ++d) {
      if (!options.ranks.mine(int64_t(d))) {
        result.doc_metrics.emplace_back();
        continue;
      }
      std::vector<double> lls;
      for (size_t c = 0; c < prompts.loglikelihood[d].size(); ++c) lls.push_back(scores[next++].logprob);
      result.doc_metrics.push_back(score_multiple_choice(config, prompts.docs[d], lls));
    }
  } else {
    std::vector<GreedyRequest> requests;  // this rank's documents'
    for (size_t d = 0; d < prompts.docs.size(); ++d) {
      if (options.ranks.mine(int64_t(d)))
        requests.push_back(GreedyRequest{prompts.generation[d], config.generation.until, config.generation.max_gen_toks});
    }
    GreedyOptions gen_options;
    gen_options.batch_size = options.batch_size;
    gen_options.max_length = options.max_length;
    gen_options.eos_ids = options.eos_ids;
    gen_options.show_progress = options.show_progress && options.ranks.writer();
    gen_options.journal = {options.journal, config.name};
    const auto texts = generate_greedy(model, codec.tokenizer(), requests, gen_options);
    size_t next = 0;
    for (size_t d = 0; d < prompts.docs.size(); ++d) {
      if (!options.ranks.mine(int64_t(d))) {
        result.doc_metrics.emplace_back();
        continue;
      }
      result.doc_metrics.push_back(score_generation(config, prompts.docs[d], texts[next++]));
    }
  }
  gather_doc_metrics(config, options.ranks, result.doc_metrics);

  std::vector<size_t> all(prompts.docs.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  result.metrics = summarize(result.doc_metrics, all);
  if (config.fewshot_by_subset) {
    // Subsets in order of first appearance; the pooled task metric is the mean over all
    // documents (the harness's size-weighted group mean).
    std::vector<std::string> names;
    std::map<std::string, std::vector<size_t>> members;
    for (size_t i = 0; i < prompts.docs.size(); ++i) {
      const auto& subset = prompts.docs[i].subset;
      if (!members.count(subset)) names.push_back(subset);
      members[subset].push_back(i);
    }
    for (const auto& subset : names) {
      TaskResult sub;
      sub.name = config.name + "_" + subset;
      sub.config = result.config;
      sub.config.name = sub.name;
      sub.num_docs = static_cast<int64_t>(members[subset].size());
      sub.metrics = summarize(result.doc_metrics, members[subset]);
      result.subsets.push_back(std::move(sub));
    }
  }
  return result;
}

}  // namespace spinlm
