// Generation throughput on a Qwen2-0.5B-shape model (hidden 896, MLP 4864, 24 layers, 14
// heads, 2 KV heads, vocabulary 151936, tied embeddings), random weights, fp32:
// the batched engine (continuous batching, KV cache) against one-sequence-at-a-time
// decoding, measured in the same run.
//
// usage: bench_generate [--threads 2] [--prompts 64] [--prompt-tokens 64] [--new-tokens 128]
//                       [--batch-size 64] [--max-batch-tokens 1024] [--sequential-prompts 2]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "core/threads.h"
#include "generate/engine.h"
#include "generate/sort_rows.h"

namespace {

using namespace spinlm;

struct Args {
  int threads = 2;
  int64_t prompts = 64;
  int64_t prompt_tokens = 64;
  int64_t new_tokens = 128;
  int64_t batch_size = 64;
  int64_t max_batch_tokens = 1024;
  int64_t sequential_prompts = 2;
};

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    int64_t value = std::atoll(argv[i + 1]);
    if (key == "--threads") args.threads = static_cast<int>(value);
    else if (key == "--prompts") args.prompts = value;
    else if (key == "--prompt-tokens") args.prompt_tokens = value;
    else if (key == "--new-tokens") args.new_tokens = value;
    else if (key == "--batch-size") args.batch_size = value;
    else if (key == "--max-batch-tokens") args.max_batch_tokens = value;
    else if (key == "--sequential-prompts") args.sequential_prompts = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  return args;
}

ModelConfig qwen2_half_billion() {
  ModelConfig config;
  config.model_type = "qwen2";
  config.vocab_size = 151936;
  config.hidden_size = 896;
  config.intermediate_size = 4864;
  config.num_hidden_layers = 24;
  config.num_attention_heads = 14;
  config.num_key_value_heads = 2;
  config.head_dim = 64;
  config.max_position_embeddings = 32768;
  config.rms_norm_eps = 1e-6;
  config.rope_theta = 1000000.0;
  config.tie_word_embeddings = true;
  config.attention_bias = true;
  return config;
}

// Process CPU seconds (all threads): on a shared, overloaded machine the comparable figure.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

struct Run {
  double seconds = 0;
  double cpu = 0;
  int64_t new_tokens = 0;
  EngineStats stats;
};

Run run(const Transformer& model, const Args& args, int64_t prompts, int64_t batch_size) {
  std::vector<GenerationRequest> requests(prompts);
  for (int64_t i = 0; i < prompts; ++i) {
    requests[i].row = i;
    for (int64_t t = 0; t < args.prompt_tokens; ++t) requests[i].prompt_ids.push_back((i * 7919 + t * 104729) % 151936);
  }
  EngineOptions options;
  options.sampling.temperature = 1.0;  // SPIN samples at temperature 1
  options.seed = 1;
  options.max_new_tokens = args.new_tokens;
  options.batch_size = batch_size;
  options.max_batch_tokens = args.max_batch_tokens;
  GenerationEngine engine(model, options);
  Run result;
  auto start = std::chrono::steady_clock::now();
  double cpu_start = cpu_seconds();
  engine.generate(requests, [&](GenerationResult&& r) { result.new_tokens += static_cast<int64_t>(r.ids.size()); });
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.cpu = cpu_seconds() - cpu_start;
  result.stats = engine.stats();
  return result;
}

void report(const char* name, const Run& r) {
  std::printf("%-22s %6lld new tokens in %7.1f s: %6.1f tok/s total (prefill %lld tok in %.1f s = %.1f tok/s; "
              "decode %lld forwards in %.1f s); %.3f CPU s per new token incl. prefill\n",
              name, (long long)r.new_tokens, r.seconds, r.new_tokens / r.seconds, (long long)r.stats.prefill_tokens,
              r.stats.prefill_seconds, r.stats.prefill_tokens / std::max(r.stats.prefill_seconds, 1e-9),
              (long long)r.stats.decode_forwards, r.stats.decode_seconds, r.cpu / r.new_tokens);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  setup_threads(args.threads);
  Transformer model(qwen2_half_billion());
  model.init_random(0, 0.02);
  std::printf("Qwen2-0.5B shape, random weights, fp32, %d threads; prompts of %lld tokens, %lld new tokens each\n",
              args.threads, (long long)args.prompt_tokens, (long long)args.new_tokens);
  {
    // The sampler alone on a decode step's logits: filters + fp64 inverse CDF over 151936 tokens.
    at::Tensor logits = at::randn({args.batch_size, 151936});
    std::vector<double> uniforms(args.batch_size, 0.5);
    SamplingOptions plain, filtered;
    filtered.temperature = 0.8;
    filtered.top_p = 0.95;
    for (const SamplingOptions* options : {&plain, &filtered}) {
      sample_tokens(logits, *options, uniforms);  // warm-up
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < 5; ++i) sample_tokens(logits, *options, uniforms);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / 5;
      std::printf("sampling %lld rows (%s): %.1f ms per step\n", (long long)args.batch_size,
                  options == &plain ? "temperature 1" : "temperature 0.8, top-p 0.95", ms);
    }
    // Top-p's sort of every row: libtorch's comparison sort (what top-p used before) against
    // the radix sort it uses on the CPU now (generate/sort_rows.h), same logits.
    auto time_ms = [](const std::function<void()>& body) {
      body();
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < 5; ++i) body();
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / 5;
    };
    const double torch_sort = time_ms([&] { at::sort(logits, /*stable=*/true, -1, false); });
    const double radix_sort = time_ms([&] { sort_rows_ascending(logits); });
    std::printf("sorting %lld rows for top-p: libtorch sort %.1f ms, radix sort %.1f ms per step\n",
                (long long)args.batch_size, torch_sort, radix_sort);
  }
  if (args.prompts == 0 || args.sequential_prompts == 0) return 0;
  // Baseline first: one sequence at a time (batch size 1), on fewer prompts.
  Run sequential = run(model, args, args.sequential_prompts, 1);
  char name[64];
  std::snprintf(name, sizeof name, "sequential x%lld", (long long)args.sequential_prompts);
  report(name, sequential);
  Run batched = run(model, args, args.prompts, args.batch_size);
  std::snprintf(name, sizeof name, "batched %lld, slots %lld", (long long)args.prompts, (long long)args.batch_size);
  report(name, batched);
  std::printf("speed-up: %.2fx wall, %.2fx CPU per token\n",
              (batched.new_tokens / batched.seconds) / (sequential.new_tokens / sequential.seconds),
              (sequential.cpu / sequential.new_tokens) / (batched.cpu / batched.new_tokens));
  return 0;
}
