// Parquet reading: rows per second of spinlm's reader (src/io/parquet.h, rows as JSON objects
// through JsonlReader, as every data input reads them) on a 50k-row UltraChat-shaped file,
// against DuckDB reading the same file in the same run (bench/parquet_baseline.js, one thread).
// The file is written by DuckDB (tests/reference/parquet_duckdb.js) in zstd and in snappy.
//   build/bench_parquet [ROWS]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "io/jsonl.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string source_dir() { return fs::path(__FILE__).parent_path().parent_path().string(); }

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

std::string run(const std::string& command, int& rc) {
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  rc = pclose(pipe);
  return out;
}

void bench(const std::string& file, const std::string& codec, long rows_wanted) {
  // spinlm: best of three passes over every row.
  double wall = 1e30, cpu = 1e30;
  size_t rows = 0, bytes = 0;
  for (int pass = 0; pass < 3; ++pass) {
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    spinlm::JsonlReader reader(file);
    rows = 0;
    bytes = 0;
    for (nlohmann::json row; reader.next(row);) {
      ++rows;
      bytes += row["messages"].size();
    }
    wall = std::min(wall, std::chrono::duration<double>(Clock::now() - t0).count());
    cpu = std::min(cpu, cpu_seconds() - c0);
  }
  int rc = 0;
  const std::string out = run("node " + source_dir() + "/bench/parquet_baseline.js " + file, rc);
  std::printf("%s: %zu rows (%ld asked), %.1f MB file, %zu messages\n", codec.c_str(), rows, rows_wanted,
              fs::file_size(file) / 1e6, bytes);
  std::printf("  (rows/s of wall time; in brackets rows per CPU second)\n");
  std::printf("  spinlm, rows as JSON objects        : %9.0f rows/s  [%9.0f]\n", rows / wall, rows / cpu);
  if (rc != 0) {
    std::printf("  DuckDB baseline failed: %s\n", out.c_str());
    return;
  }
  const auto j = nlohmann::json::parse(out);
  std::printf("  DuckDB 1 thread, scan to vectors    : %9.0f rows/s  [%9.0f]\n", rows / j["scan_s"].get<double>(),
              rows / j["scan_cpu_s"].get<double>());
  std::printf("  DuckDB 1 thread, rows as JSON text  : %9.0f rows/s  [%9.0f]\n", rows / j["json_s"].get<double>(),
              rows / j["json_cpu_s"].get<double>());
}

}  // namespace

int main(int argc, char** argv) {
  const long rows = argc > 1 ? std::atol(argv[1]) : 50000;
  if (!fs::exists(source_dir() + "/.cache/npm/node_modules/@duckdb/node-api")) {
    std::printf("bench_parquet: npm assets missing; run bash scripts/fetch-test-assets.sh\n");
    return 1;
  }
  // UltraChat 200k's shape: a prompt, a 64-hex id and 2-8 messages of a few hundred to a few
  // thousand characters.
  const std::string sql =
      "SELECT 'Prompt ' || i || ': ' || repeat('words of the question ', 3 + i % 20) AS prompt, "
      "sha256(i::VARCHAR) AS prompt_id, "
      "list_transform(range(2 + 2 * (i % 4)), j -> {'content': repeat('answer text ' || j || ' ', 20 + (i * 7 + j) % 120), "
      "'role': CASE WHEN j % 2 = 0 THEN 'user' ELSE 'assistant' END}) AS messages "
      "FROM range(" + std::to_string(rows) + ") t(i)";
  for (const char* codec : {"zstd", "snappy"}) {
    const std::string file = (fs::temp_directory_path() / ("spinlm-bench-ultrachat-" + std::string(codec) + ".parquet")).string();
    int rc = 0;
    const std::string out = run("node " + source_dir() + "/tests/reference/parquet_duckdb.js " + file + " \"" + sql +
                                    "\" 'COMPRESSION " + codec + "' > /dev/null",
                                rc);
    if (rc != 0) {
      std::printf("bench_parquet: writing %s failed: %s\n", file.c_str(), out.c_str());
      return 1;
    }
    bench(file, codec, rows);
  }
  return 0;
}
