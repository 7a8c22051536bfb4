#include "eval/loglikelihood.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "core/error.h"
#include "core/progress.h"
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

// One model input and the scored spans it serves.
struct Span {
  size_t request = 0;
  int64_t start = 0;  // position whose output predicts continuation[0]
  std::vector<int64_t> targets;
};
struct Row {
  std::vector<int64_t> input;
  std::vector<Span> spans;
};

std::vector<Row> build_rows(const std::vector<LoglikelihoodRequest>& requests, int64_t max_length, bool merge) {
  std::vector<Row> rows;
  std::map<std::vector<int64_t>, size_t> row_of_input;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& request = requests[i];
    check(!request.context.empty(), "log-likelihood request ", i, " has an empty context");
    check(!request.continuation.empty(), "log-likelihood request ", i,
          " has an empty continuation (the continuation text tokenised to nothing)");
    check(static_cast<int64_t>(request.continuation.size()) <= max_length, "log-likelihood request ", i,
          ": continuation of ", request.continuation.size(), " tokens exceeds the model's length ", max_length);
    std::vector<int64_t> whole = request.context;
    whole.insert(whole.end(), request.continuation.begin(), request.continuation.end());
    // (context + continuation)[-(max_length + 1):][:-1]
    const size_t keep = std::min(whole.size(), static_cast<size_t>(max_length + 1));
    std::vector<int64_t> input(whole.end() - static_cast<std::ptrdiff_t>(keep), whole.end() - 1);
    Span span;
    span.request = i;
    span.start = static_cast<int64_t>(input.size() - request.continuation.size());
    span.targets = request.continuation;
    // A one-token continuation reads only the context: every choice of a shared context
    // becomes a span of the same row.
    auto found = merge ? row_of_input.find(input) : row_of_input.end();
    if (found == row_of_input.end()) {
      found = row_of_input.insert_or_assign(input, rows.size()).first;
      rows.push_back(Row{std::move(input), {}});
    }
    rows[found->second].spans.push_back(std::move(span));
  }
  return rows;
}

}  // namespace

std::vector<LoglikelihoodResult> score_loglikelihood(const Transformer& model,
                                                     const std::vector<LoglikelihoodRequest>& requests,
                                                     const LoglikelihoodOptions& options) {
  const int64_t max_length =
      options.max_length > 0 ? options.max_length : model.config().max_position_embeddings;
  check(max_length > 0, "log-likelihood: unknown maximum length (config has no max_position_embeddings)");
  check(options.batch_size > 0, "--batch-size must be positive");
  std::vector<Row> rows = build_rows(requests, max_length, options.merge_identical_inputs);
  // Longest first: the first batch shows at once whether memory suffices, and rows of
  // similar length pad little.
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rows[a].input.size() > rows[b].input.size(); });

  std::vector<LoglikelihoodResult> results(requests.size());
  at::NoGradGuard no_grad;
  std::unique_ptr<Progress> progress;
  if (options.show_progress) progress = std::make_unique<Progress>("log-likelihoods", static_cast<int64_t>(rows.size()), "rows");
  for (size_t begin = 0; begin < order.size(); begin += static_cast<size_t>(options.batch_size)) {
    const size_t end = std::min(order.size(), begin + static_cast<size_t>(options.batch_size));
    const int64_t B = static_cast<int64_t>(end - begin);
    const int64_t T = static_cast<int64_t>(rows[order[begin]].input.size());
    at::Tensor ids = at::zeros({B, T}, at::kLong);   // [B, T]
    at::Tensor mask = at::zeros({B, T}, at::kLong);  // [B, T]
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& input = rows[order[begin + b]].input;
      for (size_t t = 0; t < input.size(); ++t) {
        ids_a[b][t] = input[t];
        mask_a[b][t] = 1;
      }
    }
    const at::Tensor hidden = model.forward_hidden(ids.to(model.device()), mask.to(model.device()));  // [B, T, C]
    // Only the scored positions go through the LM head: [P, C] -> [P, V].
    std::vector<int64_t> flat_positions, flat_targets;
    for (int64_t b = 0; b < B; ++b) {
      for (const Span& span : rows[order[begin + b]].spans) {
        for (size_t j = 0; j < span.targets.size(); ++j) {
          flat_positions.push_back(b * T + span.start + static_cast<int64_t>(j));
          flat_targets.push_back(span.targets[j]);
        }
      }
    }
    const at::Tensor positions = at::tensor(flat_positions, at::kLong).to(model.device());
    const at::Tensor selected = hidden.reshape({B * T, hidden.size(2)}).index_select(0, positions);  // [P, C]
    const at::Tensor targets = at::tensor(flat_targets, at::kLong).to(model.device());              // [P]
    at::Tensor logprobs, greedy;
    {
      const at::Tensor logits = model.logits(selected).to(at::kFloat);  // [P, V]
      const at::Tensor log_softmax = logits.log_softmax(-1);
      logprobs = log_softmax.gather(1, targets.unsqueeze(1)).squeeze(1).to(at::kDouble).cpu();  // [P]
      greedy = logits.argmax(-1).eq(targets).cpu();                                               // [P]
    }
    const double* lp = logprobs.data_ptr<double>();
    const bool* gr = greedy.data_ptr<bool>();
    size_t k = 0;
    for (int64_t b = 0; b < B; ++b) {
      for (const Span& span : rows[order[begin + b]].spans) {
        LoglikelihoodResult& result = results[span.request];
        for (size_t j = 0; j < span.targets.size(); ++j, ++k) {
          result.logprob += lp[k];
          result.is_greedy = result.is_greedy && gr[k];
        }
      }
    }
    if (progress) progress->update(static_cast<int64_t>(end));
  }
  if (progress) progress->finish();
  return results;
}

}  // namespace spinlm
