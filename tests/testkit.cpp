#include "testkit.h"
#include "testkit_process.h"
#include "testkit_data.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <thread>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <sys/wait.h>

namespace spinlm::testkit {

std::string make_temp_dir(const std::string& label) {
  static std::atomic<int> counter{0};
  const char* base = std::getenv("SPINLM_TEST_TMP");
  std::filesystem::path root = base ? base : std::filesystem::temp_directory_path() / "spinlm-tests";
  std::filesystem::path dir =
      root / (label + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string source_path(const std::string& relative) {
  return std::string(SPINLM_SOURCE_DIR) + "/" + relative;
}

std::string spinlm_binary() { return SPINLM_BINARY; }

pid_t start_spinlm(const std::string& env, const std::string& args, const std::string& log) {
  const std::string line = "exec env " + env + " " + shell_quote(spinlm_binary()) + " " + args + " > " +
                           shell_quote(log) + " 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  return pid;
}

int wait_for_exit(pid_t pid, double limit, double* seconds) {
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    int status = 0;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds) *seconds = waited;
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (waited > limit) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool kill_when(const std::string& args, const std::string& log, const std::function<bool()>& ready, double limit) {
  const pid_t pid = start_spinlm("", args, log);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit);
  bool reached = false;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) {
      reached = true;
      break;
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;  // ended before ready() held
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return reached;
}

bool wait_for_text(const std::string& path, const std::string& text, double limit) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::duration<double>(limit)) {
    std::ifstream in(path, std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (content.find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

void write_arith_split_files(const std::string& dir, uint64_t seed, const ArithSplitSizes& sizes) {
  const ArithSplits splits = make_arith_splits(seed, sizes);
  write_arith_jsonl(dir + "/train.jsonl", splits.train);
  write_arith_jsonl(dir + "/heldout.jsonl", splits.validation);
  write_arith_jsonl(dir + "/test.jsonl", splits.test);
}

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

CommandResult run_command(const std::string& command_line) {
  CommandResult result;
  std::string full = command_line + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command_line);
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult run_spinlm(const std::string& args) {
  return run_command(shell_quote(spinlm_binary()) + " " + args);
}

CommandResult run_python_reference(const std::string& script, const std::string& args) {
  return run_command("/usr/bin/python3 " + shell_quote(source_path("tests/reference/" + script)) +
                     " " + args);
}

void randomize_parameters(Transformer& model, uint64_t seed, double std) {
  at::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  for (const auto& [name, tensor] : model.named_parameters()) {
    at::Tensor values = at::empty(tensor.sizes(), at::kDouble).normal_(0.0, std, generator);
    if (name.find("norm.weight") != std::string::npos) values = values + 1.0;
    const_cast<at::Tensor&>(tensor).copy_(values);
  }
}

ModelConfig tiny_llama_config(int64_t hidden, int64_t layers, int64_t max_positions) {
  nlohmann::json config = {{"model_type", "llama"},     {"vocab_size", kTinyVocab},   {"hidden_size", hidden},
                           {"intermediate_size", 48},   {"num_hidden_layers", layers}, {"num_attention_heads", 4},
                           {"num_key_value_heads", 2},  {"rms_norm_eps", 1e-5},       {"rope_theta", 10000.0},
                           {"bos_token_id", 1},         {"eos_token_id", kTinyEos},   {"tie_word_embeddings", false},
                           {"max_position_embeddings", max_positions}};
  return ModelConfig::from_json(config, "test config.json");
}

}  // namespace spinlm::testkit
