#include "fuzz/fuzz_support.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace spinlm::fuzz {

namespace fs = std::filesystem;

const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string base = fs::is_directory("/dev/shm") ? "/dev/shm" : fs::temp_directory_path().string();
    std::string pattern = base + "/spinlm-fuzz-XXXXXX";
    if (!mkdtemp(pattern.data())) {
      std::perror("spinlm fuzz: mkdtemp");
      std::abort();
    }
    return pattern;
  }();
  static const bool removed_at_exit = [] {
    return std::atexit([] {
             std::error_code ignored;
             fs::remove_all(dir, ignored);
           }) == 0;
  }();
  (void)removed_at_exit;
  return dir;
}

std::string write_scratch(const std::string& name, const std::string& content) {
  std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out.flush()) {
    std::fprintf(stderr, "spinlm fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

void remove_scratch(const std::string& name) {
  std::error_code ignored;
  fs::remove(scratch_dir() + "/" + name, ignored);
}

std::pair<std::string, std::string> split_at_nul(const std::string& input) {
  size_t nul = input.find('\0');
  if (nul == std::string::npos) return {input, ""};
  return {input.substr(0, nul), input.substr(nul + 1)};
}

int run_fuzz_input(const char* target, FuzzEntry entry, const uint8_t* data, size_t size) {
  try {
    entry(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const Error&) {
    // A clean refusal, as a command prints it: "error: FILE: ...".
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spinlm fuzz %s: an exception other than spinlm::Error escaped: %s\n", target, e.what());
    std::abort();
  }
  return 0;
}

}  // namespace spinlm::fuzz
