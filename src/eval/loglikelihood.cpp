#include "eval/loglikelihood.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "core/error.h"
#include "core/progress.h"
#include "data/packing.h"
#include "eval/py_string.h"

namespace spinlm {

LoglikelihoodRequest encode_loglikelihood_request(const Tokenizer& tokenizer, const std::string& context,
                                                  const std::string& continuation, int64_t empty_context_id,
                                                  std::optional<int64_t> bos_id) {
  LoglikelihoodRequest request;
  if (context.empty()) {
    check(empty_context_id >= 0, "a log-likelihood request has an empty context and the model has no EOS token to stand for it");
    request.context = {empty_context_id};
    request.continuation = tokenizer.encode(continuation, false);
  } else {
    // Trailing whitespace belongs to the continuation: "Answer: " + "B" is scored as
    // "Answer:" + " B", which tokenises the way the model saw such text in training.
    const std::string stripped = py::rstrip(context);
    const std::string moved = context.substr(stripped.size());
    const auto whole = tokenizer.encode(stripped + moved + continuation, false);
    request.context = tokenizer.encode(stripped, false);
    const size_t split = std::min(request.context.size(), whole.size());
    request.continuation.assign(whole.begin() + static_cast<std::ptrdiff_t>(split), whole.end());
  }
  if (bos_id) request.context.insert(request.context.begin(), *bos_id);
  return request;
}

namespace {

// One block of the packed stream (data/packing.h): a context as the model reads it and the
// distinct continuations that follow it, each serving the requests listed for it.
struct ContextBlock {
  std::vector<int64_t> context;
  std::vector<std::vector<int64_t>> continuations;
  std::vector<std::vector<size_t>> requests;  // per continuation
};

std::vector<ContextBlock> build_blocks(const std::vector<LoglikelihoodRequest>& requests, int64_t max_length,
                                       bool merge) {
  std::vector<ContextBlock> blocks;
  std::map<std::vector<int64_t>, size_t> block_of_context;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& request = requests[i];
    check(!request.context.empty(), "log-likelihood request ", i, " has an empty context");
    check(!request.continuation.empty(), "log-likelihood request ", i,
          " has an empty continuation (the continuation text tokenised to nothing)");
    check(static_cast<int64_t>(request.continuation.size()) <= max_length, "log-likelihood request ", i,
          ": continuation of ", request.continuation.size(), " tokens exceeds the model's length ", max_length);
    // The model reads (context + continuation)[-(max_length + 1):][:-1]: the context keeps its
    // last max_length + 1 - len(continuation) tokens.
    const size_t keep = std::min(request.context.size() + request.continuation.size(),
                                 static_cast<size_t>(max_length + 1)) - request.continuation.size();
    std::vector<int64_t> context(request.context.end() - static_cast<std::ptrdiff_t>(keep), request.context.end());
    auto found = merge ? block_of_context.find(context) : block_of_context.end();
    if (found == block_of_context.end()) {
      found = block_of_context.insert_or_assign(context, blocks.size()).first;
      blocks.push_back(ContextBlock{std::move(context), {}, {}});
    }
    ContextBlock& block = blocks[found->second];
    size_t k = 0;
    while (k < block.continuations.size() && block.continuations[k] != request.continuation) ++k;
    if (k == block.continuations.size()) {
      block.continuations.push_back(request.continuation);
      block.requests.emplace_back();
    }
    block.requests[k].push_back(i);
  }
  return blocks;
}

int64_t block_tokens(const ContextBlock& block) {
  int64_t n = static_cast<int64_t>(block.context.size());
  for (const auto& c : block.continuations) n += static_cast<int64_t>(c.size());
  return n;
}

}  // namespace

std::vector<LoglikelihoodResult> score_loglikelihood(const Transformer& model,
                                                     const std::vector<LoglikelihoodRequest>& requests,
                                                     const LoglikelihoodOptions& options) {
  const int64_t max_length =
      options.max_length > 0 ? options.max_length : model.config().max_position_embeddings;
  check(max_length > 0, "log-likelihood: unknown maximum length (config has no max_position_embeddings)");
  check(options.batch_size > 0, "--batch-size must be positive");
  std::vector<ContextBlock> blocks = build_blocks(requests, max_length, options.merge_identical_inputs);
  // Longest first: the first forward shows at once whether memory suffices.
  std::vector<size_t> order(blocks.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return block_tokens(blocks[a]) > block_tokens(blocks[b]); });

  std::vector<LoglikelihoodResult> results(requests.size());
  at::NoGradGuard no_grad;
  std::unique_ptr<Progress> progress;
  if (options.show_progress) progress = std::make_unique<Progress>("log-likelihoods", static_cast<int64_t>(blocks.size()), "contexts");
  for (size_t begin = 0; begin < order.size(); begin += static_cast<size_t>(options.batch_size)) {
    const size_t end = std::min(order.size(), begin + static_cast<size_t>(options.batch_size));
    // One padding-free stream: each context once, its continuations after it (data/packing.h).
    std::vector<PackBlock> packed_blocks;
    std::vector<const std::vector<size_t>*> served;  // per output: the requests it answers
    for (size_t b = begin; b < end; ++b) {
      const ContextBlock& block = blocks[order[b]];
      PackBlock packed;
      packed.prefix.ids = block.context;
      for (size_t k = 0; k < block.continuations.size(); ++k) {
        const auto& c = block.continuations[k];
        packed.branches.push_back({c, std::vector<uint8_t>(c.size(), 1), static_cast<int64_t>(served.size())});
        served.push_back(&block.requests[k]);
      }
      packed_blocks.push_back(std::move(packed));
    }
    // Per output (a continuation of a block): the sum of its tokens' log-probs, and whether
    // every one of them is the argmax.
    std::vector<double> sums(served.size(), 0.0);
    std::vector<bool> greedy_all(served.size(), true);
    std::string key;
    const nlohmann::json* recorded = nullptr;
    if (options.journal) {
      UnitKey unit;
      for (const PackBlock& block : packed_blocks) {
        unit.add(block.prefix.ids);
        for (const auto& branch : block.branches) unit.add(branch.ids);
      }
      key = unit.hex();
      recorded = options.journal.find(key);
    }
    if (recorded != nullptr) {
      const nlohmann::json& lp = recorded->at("logprob");
      const nlohmann::json& gr = recorded->at("greedy");
      check(lp.size() == sums.size() && gr.size() == sums.size(), "work journal: a recorded batch of ",
            options.journal.name, " has ", lp.size(), " results for ", sums.size(), " continuations");
      for (size_t o = 0; o < sums.size(); ++o) {
        sums[o] = lp[o].get<double>();
        greedy_all[o] = gr[o].get<bool>();
      }
    } else {
      const PackedBatch batch = pack_blocks(packed_blocks, static_cast<int64_t>(served.size()));
      const at::Tensor hidden = model.forward_packed(batch.tokens);  // [N, C]
      // Only the scored positions go through the LM head: [P, C] -> [P, V].
      const at::Tensor selected = hidden.index_select(0, batch.tokens.score_sources.to(model.device()));
      const at::Tensor targets = batch.tokens.score_targets.to(model.device());
      at::Tensor logprobs, greedy;
      {
        const at::Tensor logits = model.logits(selected).to(at::kFloat);  // [P, V]
        const at::Tensor log_softmax = logits.log_softmax(-1);
        logprobs = log_softmax.gather(1, targets.unsqueeze(1)).squeeze(1).to(at::kDouble).cpu();  // [P]
        greedy = logits.argmax(-1).eq(targets).cpu();                                               // [P]
      }
      const double* lp = logprobs.data_ptr<double>();
      const bool* gr = greedy.data_ptr<bool>();
      const int64_t* owner = batch.score_outputs.data_ptr<int64_t>();
      for (int64_t k = 0; k < logprobs.numel(); ++k) {
        sums[size_t(owner[k])] += lp[k];
        greedy_all[size_t(owner[k])] = greedy_all[size_t(owner[k])] && gr[k];
      }
    }
    for (size_t o = 0; o < served.size(); ++o) {
      for (size_t request : *served[o]) {
        results[request].logprob = sums[o];
        results[request].is_greedy = greedy_all[o];
      }
    }
    if (recorded == nullptr) options.journal.record(key, {{"logprob", sums}, {"greedy", greedy_all}});
    if (progress) progress->update(static_cast<int64_t>(end));
  }
  if (progress) progress->finish();
  return results;
}

}  // namespace spinlm
