// What the fuzz targets share. Each fuzz/fuzz_<target>.cpp defines one entry function: it
// takes the raw bytes of one input, runs them through spinlm's real reader the way a command
// does (written to a file where the reader takes a path), and returns normally or throws
// spinlm::Error. Any other exception, and any crash, is a bug in the parser.
//
// Built with -DSPINLM_FUZZ=ON (clang, fuzz/CMakeLists.txt), each file is also a libFuzzer
// executable (SPINLM_FUZZ_TARGET). The regression test tests/test_fuzz_regressions.cpp,
// built with the ordinary compiler, links the same entry functions (fuzz_targets()) and runs
// every file under fuzz/corpus/<target>/ and tests/data/fuzz_regressions/<target>/.
//
// Inputs made of two parts (a tokenizer.json and a text, a template and its variables) hold
// them separated by the first NUL byte, which neither JSON nor a template contains.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace spinlm::fuzz {

using FuzzEntry = void (*)(const std::string& input);

void fuzz_safetensors(const std::string& input);
void fuzz_tokenizer(const std::string& input);
void fuzz_chat_template(const std::string& input);
void fuzz_jsonl(const std::string& input);
void fuzz_recipe(const std::string& input);
void fuzz_config(const std::string& input);
void fuzz_parquet(const std::string& input);

struct FuzzTarget {
  const char* name;  // its folder under fuzz/corpus/ and tests/data/fuzz_regressions/
  FuzzEntry run;
};

// Every target (fuzz/fuzz_targets.cpp), in the order `make fuzz` runs them.
const std::vector<FuzzTarget>& fuzz_targets();

// A folder of this process for the files the readers take by path (in /dev/shm where it
// exists, so that writing an input costs no disk), removed at exit.
const std::string& scratch_dir();

// Writes content to name in the scratch folder and returns its path.
std::string write_scratch(const std::string& name, const std::string& content);
void remove_scratch(const std::string& name);

// The input's part before its first NUL byte and the part after it (empty without one).
std::pair<std::string, std::string> split_at_nul(const std::string& input);

// What libFuzzer calls: runs the input through entry. A spinlm::Error is a clean outcome;
// any other exception is printed and aborts, which libFuzzer reports as a crash.
int run_fuzz_input(const char* target, FuzzEntry entry, const uint8_t* data, size_t size);

}  // namespace spinlm::fuzz

#ifdef SPINLM_LIBFUZZER
#define SPINLM_FUZZ_TARGET(name)                                                  \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {       \
    return spinlm::fuzz::run_fuzz_input(#name, spinlm::fuzz::fuzz_##name, data, size); \
  }
#else
#define SPINLM_FUZZ_TARGET(name)
#endif
