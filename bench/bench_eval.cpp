// Log-likelihood scoring throughput (src/eval/loglikelihood.cpp) on benchmark-shaped
// workloads, random weights, fp32, against a baseline measured in the same run: one request
// per forward with full-sequence logits (the straightforward loop), and spinlm's scorer
// with the merging of identical inputs turned off.
//   mmlu-like:      docs with a 400-token context and four one-token continuations
//   hellaswag-like: docs with a 300-token context and four 20-token continuations
// Model: Llama shape hidden 512, MLP 1408, 4 layers, 8 heads (4 KV), vocabulary 32000.
// Usage: bench_eval [--threads N] [--docs N] [--batch-size N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/threads.h"
#include "eval/loglikelihood.h"

using namespace spinlm;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<int64_t> random_ids(int64_t n, at::Generator& generator) {
  const at::Tensor ids = at::randint(0, 32000, {n}, generator, at::kLong);
  return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + n);
}

std::vector<LoglikelihoodRequest> workload(int64_t docs, int64_t context, int64_t continuation, uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  std::vector<LoglikelihoodRequest> requests;
  for (int64_t d = 0; d < docs; ++d) {
    const auto shared = random_ids(context + d % 7, generator);
    for (int c = 0; c < 4; ++c) requests.push_back({shared, random_ids(continuation, generator)});
  }
  return requests;
}

// The baseline: each request alone, logits for every position, log-softmax, gather.
double naive(const Transformer& model, const std::vector<LoglikelihoodRequest>& requests) {
  at::NoGradGuard no_grad;
  double total = 0;
  for (const auto& request : requests) {
    std::vector<int64_t> whole = request.context;
    whole.insert(whole.end(), request.continuation.begin(), request.continuation.end());
    const at::Tensor input = at::tensor(std::vector<int64_t>(whole.begin(), whole.end() - 1), at::kLong).unsqueeze(0);
    const at::Tensor targets = at::tensor(std::vector<int64_t>(whole.begin() + 1, whole.end()), at::kLong);
    const at::Tensor logprobs = model.logits(model.forward_hidden(input, at::ones_like(input)))[0].log_softmax(-1);
    const int64_t n = static_cast<int64_t>(request.continuation.size()), T = targets.size(0);
    total += logprobs.narrow(0, T - n, n).gather(1, targets.narrow(0, T - n, n).unsqueeze(1)).sum().item<double>();
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t docs = 16, batch_size = 8;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (arg == "--docs" && i + 1 < argc) docs = std::atoll(argv[++i]);
    else if (arg == "--batch-size" && i + 1 < argc) batch_size = std::atoll(argv[++i]);
  }
  setup_threads(threads);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  nlohmann::json config = {{"model_type", "llama"},      {"vocab_size", 32000},       {"hidden_size", 512},
                           {"intermediate_size", 1408},  {"num_hidden_layers", 4},    {"num_attention_heads", 8},
                           {"num_key_value_heads", 4},   {"max_position_embeddings", 2048}};
  Transformer model(ModelConfig::from_json(config, "bench shape"));
  model.init_random(0);
  std::printf("Llama shape 512/1408/4 layers, vocab 32000, fp32, %d threads, %lld docs x 4 choices, batch %lld\n",
              threads, static_cast<long long>(docs), static_cast<long long>(batch_size));
  for (const auto& [name, context, continuation] :
       {std::tuple<const char*, int64_t, int64_t>{"mmlu-like", 400, 1}, {"hellaswag-like", 300, 20}}) {
    const auto requests = workload(docs, context, continuation, 1);
    int64_t tokens = 0;
    for (const auto& r : requests) tokens += static_cast<int64_t>(r.context.size() + r.continuation.size());
    LoglikelihoodOptions options;
    options.batch_size = batch_size;
    score_loglikelihood(model, {requests.front()}, options);  // warm-up
    auto start = std::chrono::steady_clock::now();
    const auto merged = score_loglikelihood(model, requests, options);
    const double merged_s = seconds_since(start);
    options.merge_identical_inputs = false;
    start = std::chrono::steady_clock::now();
    score_loglikelihood(model, requests, options);
    const double unmerged_s = seconds_since(start);
    start = std::chrono::steady_clock::now();
    const double naive_total = naive(model, requests);
    const double naive_s = seconds_since(start);
    double merged_total = 0;
    for (const auto& r : merged) merged_total += r.logprob;
    std::printf("%-15s %4zu requests, %6lld tokens: spinlm %.2f s (%.0f tok/s) | no merging %.2f s | "
                "one request per forward %.2f s (%.1fx slower than spinlm) | sums agree to %.1e\n",
                name, requests.size(), static_cast<long long>(tokens), merged_s, tokens / merged_s, unmerged_s,
                naive_s, naive_s / merged_s, std::abs(naive_total - merged_total) / std::abs(naive_total));
  }
  return 0;
}
