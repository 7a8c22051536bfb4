// The fuzz targets' inputs through the same entry functions (fuzz/fuzz_support.h), built with
// the ordinary compiler: every seed of fuzz/corpus/<target>/ and every input a fuzzer once
// crashed on, kept under tests/data/fuzz_regressions/<target>/. Each must end in success or
// a spinlm::Error whose message names the file the reader was given; any other exception
// fails the test, and a crash ends it. Under `make test-asan` the same inputs run with
// AddressSanitizer and UBSan.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "fuzz/fuzz_support.h"
#include "testkit.h"

namespace fs = std::filesystem;
using spinlm::fuzz::FuzzTarget;

namespace spinlm::fuzz {
// gtest prints a parameter by its name.
void PrintTo(const FuzzTarget& target, std::ostream* out) { *out << target.name; }
}  // namespace spinlm::fuzz

namespace {

std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> files;
  if (fs::is_directory(dir))
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file()) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs every file of dir through the target; returns how many there were.
size_t run_all(const FuzzTarget& target, const std::string& dir) {
  size_t count = 0;
  for (const std::string& file : files_under(dir)) {
    SCOPED_TRACE(file);
    ++count;
    try {
      target.run(read_bytes(file));
    } catch (const spinlm::Error& error) {
      // The message names the file the reader was given (the fuzz scratch folder) or, for a
      // template, its name.
      const std::string message = error.what();
      EXPECT_TRUE(message.find(spinlm::fuzz::scratch_dir()) != std::string::npos ||
                  message.find("fuzz.jinja") != std::string::npos || message.find("variables") != std::string::npos)
          << "the error does not name its file: " << message;
    } catch (const std::exception& error) {
      ADD_FAILURE() << "an exception other than spinlm::Error escaped: " << error.what();
    }
  }
  return count;
}

}  // namespace

class FuzzInputs : public ::testing::TestWithParam<FuzzTarget> {};

TEST_P(FuzzInputs, SeedsAndKeptCrashesEndInSuccessOrAnErrorNamingTheFile) {
  const FuzzTarget& target = GetParam();
  const size_t seeds = run_all(target, spinlm::testkit::source_path("fuzz/corpus/" + std::string(target.name)));
  EXPECT_GT(seeds, 0u) << "fuzz/corpus/" << target.name << " holds no seed";
  run_all(target, spinlm::testkit::source_path("tests/data/fuzz_regressions/" + std::string(target.name)));
}

// Every folder of kept inputs belongs to a target, so none is silently skipped.
TEST(FuzzInputs, EveryRegressionFolderHasATarget) {
  for (const auto& entry : fs::directory_iterator(spinlm::testkit::source_path("tests/data/fuzz_regressions"))) {
    const std::string name = entry.path().filename().string();
    const auto& targets = spinlm::fuzz::fuzz_targets();
    EXPECT_TRUE(std::any_of(targets.begin(), targets.end(), [&](const FuzzTarget& t) { return name == t.name; }))
        << "tests/data/fuzz_regressions/" << name << " has no fuzz target";
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzInputs, ::testing::ValuesIn(spinlm::fuzz::fuzz_targets()),
                         [](const ::testing::TestParamInfo<FuzzTarget>& info) { return std::string(info.param.name); });
