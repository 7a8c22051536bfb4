// Model benchmark on the Qwen2-0.5B shape (hidden 896, MLP 4864, 24 layers, 14 heads,
// 2 KV heads, vocabulary 151936, tied embeddings), random weights, fp32:
//  1. forward+backward of the summed token log-probs at batch 2 x 256, against the same
//     step in Python torch (bench/model_step.py) run in the same invocation;
//  2. one-sequence KV-cache decoding (greedy), tokens per second.
// Usage: bench_model [--threads N] [--steps N] [--decode-tokens N] [--no-python] [--decode-only]
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/threads.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

using namespace spinlm;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU seconds of the whole process (all threads): on a shared, overloaded machine this
// shows the work done even when the wall clock mostly measures waiting.
double cpu_seconds() { return double(std::clock()) / CLOCKS_PER_SEC; }

ModelConfig qwen2_half_billion() {
  nlohmann::json config = {{"model_type", "qwen2"}, {"vocab_size", 151936}, {"hidden_size", 896},
                           {"intermediate_size", 4864}, {"num_hidden_layers", 24}, {"num_attention_heads", 14},
                           {"num_key_value_heads", 2}, {"rope_theta", 1000000.0}, {"tie_word_embeddings", true},
                           {"rms_norm_eps", 1e-6}};
  return ModelConfig::from_json(config, "Qwen2-0.5B shape");
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, steps = 2, decode_tokens = 64;
  bool python = true, step_bench = true;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // results appear as they are measured
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (arg == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (arg == "--decode-tokens" && i + 1 < argc) decode_tokens = std::atoi(argv[++i]);
    else if (arg == "--no-python") python = false;
    else if (arg == "--decode-only") step_bench = false;
  }
  setup_threads(threads);
  std::printf("Qwen2-0.5B shape, random weights, fp32, %d threads\n", threads);

  Transformer model(qwen2_half_billion());
  model.init_random(0);
  const int64_t B = 2, T = 256;
  at::Tensor ids = at::randint(151936, {B, T}, at::kLong);
  at::Tensor mask = at::ones({B, T}, at::kLong);

  // 1. forward + backward (gradients of every parameter).
  if (step_bench) {
    model.set_requires_grad(true);
    auto params = model.parameters();
    double total = 0, total_cpu = 0;
    for (int step = 0; step <= steps; ++step) {  // step 0 warms up
      auto start = std::chrono::steady_clock::now();
      double cpu_start = cpu_seconds();
      at::Tensor loss = model.token_logprobs(ids, mask).sum();
      auto grads = torch::autograd::grad({loss}, params);
      if (step > 0) {
        total += seconds_since(start);
        total_cpu += cpu_seconds() - cpu_start;
      }
    }
    model.set_requires_grad(false);
    double spinlm_rate = B * T / (total / steps);
    std::printf("forward+backward %lldx%lld: spinlm %.1f tokens/s (%.2f s/step, %.2f CPU s/step)\n", (long long)B,
                (long long)T, spinlm_rate, total / steps, total_cpu / steps);
    if (python) {
      // Run from the repository root (bench/run.sh does), or set SPINLM_SOURCE_DIR.
      const char* root = std::getenv("SPINLM_SOURCE_DIR");
      std::string script = (root ? std::string(root) + "/" : std::string()) + "bench/model_step.py";
      std::string command = std::string(same_blas_environment()) + "/usr/bin/python3 " + script + " --threads " +
                            std::to_string(threads) + " --steps " + std::to_string(steps);
      std::FILE* pipe = popen(command.c_str(), "r");
      char line[512] = {0};
      std::string output;
      while (pipe && std::fgets(line, sizeof line, pipe)) output += line;
      if (pipe) pclose(pipe);
      auto result = nlohmann::json::parse(output, nullptr, false);
      if (result.is_object()) {
        double python_rate = result["tokens_per_s"].get<double>();
        std::printf("forward+backward %lldx%lld: python torch %.1f tokens/s (%.2f s/step, %.2f CPU s/step); "
                    "spinlm/python %.2fx\n",
                    (long long)B, (long long)T, python_rate, result["seconds_per_step"].get<double>(),
                    result.value("cpu_seconds_per_step", 0.0), spinlm_rate / python_rate);
      } else {
        std::printf("python baseline failed: %s\n", output.c_str());
      }
    }
  }

  // 2. One-sequence decoding with the KV cache: a 32-token prompt, then greedy steps.
  {
    c10::InferenceMode inference;
    KVCache cache(model.config(), 1, 32 + decode_tokens + 1, at::kCPU, at::kFloat);
    at::Tensor prompt = at::randint(151936, {1, 32}, at::kLong);
    auto start = std::chrono::steady_clock::now();
    at::Tensor hidden = model.forward_cached(prompt, {32}, {0}, cache);
    double prefill = seconds_since(start);
    at::Tensor next = model.logits(hidden.narrow(1, 31, 1)).argmax(-1);  // [1, 1]
    start = std::chrono::steady_clock::now();
    double cpu_start = cpu_seconds();
    for (int i = 0; i < decode_tokens; ++i) {
      hidden = model.forward_cached(next, {1}, {0}, cache);
      next = model.logits(hidden).argmax(-1);
    }
    double decode = seconds_since(start), decode_cpu = cpu_seconds() - cpu_start;
    std::printf("prefill 32 tokens: %.1f tokens/s\n", 32 / prefill);
    std::printf("decode 1 sequence: %.1f tokens/s (%d tokens, %.3f CPU s/token)\n", decode_tokens / decode,
                decode_tokens, decode_cpu / decode_tokens);
    // The ceiling of this run: decoding reads every weight once per token, so a plain
    // streaming read of all of them (at::sum, libtorch's vectorised threaded reduction) right
    // after bounds the rate. The host's memory bandwidth varies run to run on these shared
    // machines (20-30 GB/s seen), so the ratio is the figure to compare.
    double bytes = 0;
    for (const auto& parameter : model.parameters()) bytes += double(parameter.numel()) * 4;  // tied head once
    const int reads = 5;
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < reads; ++i) {
      for (const auto& parameter : model.parameters()) parameter.sum();
    }
    double read = seconds_since(start) / reads;
    std::printf("streaming read of all weights: %.1f GB/s = %.1f tokens/s ceiling; decoding reached %.0f%% of it\n",
                bytes / read / 1e9, 1 / read, 100 * (decode_tokens / decode) * read);
  }
  return 0;
}
