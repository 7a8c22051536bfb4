// Shared helpers for the gtest files: temporary folders, running the spinlm binary and the
// independent references (Debian's /usr/bin/python3 with torch and jinja2, node).
#pragma once
#include <string>

#include "model/transformer.h"

namespace spinlm::testkit {

// A fresh empty folder under the build's temp area, removed by nothing (CI machines are
// thrown away; a failing test leaves its files to look at).
std::string make_temp_dir(const std::string& label);

// Path of a file in the source tree (tests/reference/..., examples/...).
std::string source_path(const std::string& relative);

// Path of the built spinlm binary.
std::string spinlm_binary();

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing its output.
CommandResult run_command(const std::string& command_line);

// Runs `spinlm ARGS` (ARGS already shell-quoted where needed).
CommandResult run_spinlm(const std::string& args);

// Runs `/usr/bin/python3 tests/reference/SCRIPT ARGS`: Debian's python3 has torch and
// jinja2; the default python3 on these machines has neither.
CommandResult run_python_reference(const std::string& script, const std::string& args);

// Single-quotes text for a POSIX shell.
std::string shell_quote(const std::string& text);

// Every parameter drawn from Normal(0, std) in fp64 from seed, in named_parameters() order,
// with 1 added to norm weights: weights large enough that attention and the MLP matter (the
// 0.02 of init-model makes every prediction nearly uniform).
void randomize_parameters(Transformer& model, uint64_t seed, double std);

// The small Llama of the trainer and device tests: vocabulary 40, BOS 1, EOS 2, intermediate
// 48, 4 heads over 2 KV heads, untied embeddings.
constexpr int64_t kTinyVocab = 40;
constexpr int64_t kTinyEos = 2;
ModelConfig tiny_llama_config(int64_t hidden = 32, int64_t layers = 2, int64_t max_positions = 256);

}  // namespace spinlm::testkit
