// Chat template rendering speed: spinlm's Jinja2 interpreter against Python jinja2 (the
// engine transformers uses) on the same template and conversation, in the same run.
// Usage: bench_chat_template [renders]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/atomic_file.h"
#include "text/chat_template.h"

namespace fs = std::filesystem;

namespace {

// The repository root, from this file's path (benchmarks get no source-dir definition).
std::string source_dir() { return fs::path(__FILE__).parent_path().parent_path().string(); }

// A SPIN-sized conversation: system prompt and four exchanges, about 3 KB of text.
nlohmann::ordered_json conversation() {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "system"}, {"content", "You are a helpful assistant."}});
  for (int i = 0; i < 4; ++i) {
    std::string question = "Question " + std::to_string(i) + ": explain relativity in simple words. ";
    std::string answer = "<think>\nLet me think.\n</think>\n\nAnswer " + std::to_string(i) + ": ";
    for (int k = 0; k < 20; ++k) answer += "Space and time are linked. ";
    messages.push_back({{"role", "user"}, {"content", question + question + question}});
    messages.push_back({{"role", "assistant"}, {"content", answer}});
  }
  return messages;
}

std::string run_baseline(const std::string& case_path, int renders) {
  std::string cmd = "/usr/bin/python3 " + source_dir() + "/bench/chat_template_baseline.py " + case_path + " " +
                    std::to_string(renders);
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return "failed";
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  pclose(pipe);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int renders = argc > 1 ? std::atoi(argv[1]) : 2000;
  const std::string dir = fs::temp_directory_path() / "spinlm-bench-chat-template";
  fs::create_directories(dir);
  std::printf("%-10s %14s %14s %10s %8s\n", "template", "spinlm r/s", "jinja2 r/s", "speedup", "bytes");
  for (const char* name : {"qwen3", "llama3.1", "zephyr", "mistral-v0.3"}) {
    const std::string source = spinlm::read_file(source_dir() + "/tests/data/templates/" + name + ".jinja");
    nlohmann::ordered_json context = {{"messages", conversation()}, {"add_generation_prompt", true},
                                      {"bos_token", "<s>"}, {"eos_token", "</s>"}};
    if (std::string(name) == "mistral-v0.3") context["messages"].erase(0);  // no system turn in the middle
    const std::string case_path = dir + "/" + name + ".json";
    spinlm::write_file_atomic(case_path, nlohmann::ordered_json{{"template", source}, {"context", context}}.dump());

    spinlm::ChatTemplate chat_template(source, name);
    size_t bytes = chat_template.render_ordered(context).size();
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < renders; ++i) chat_template.render_ordered(context);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double ours = renders / seconds;

    double theirs = 0;
    size_t their_bytes = 0;
    std::sscanf(run_baseline(case_path, renders).c_str(), "%lf %zu", &theirs, &their_bytes);
    std::printf("%-10s %14.0f %14.0f %9.1fx %8zu%s\n", name, ours, theirs, theirs > 0 ? ours / theirs : 0.0, bytes,
                their_bytes == bytes ? "" : "  (output sizes differ!)");
  }
  return 0;
}
