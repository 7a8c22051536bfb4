// spinlm: Self-Play fIne-tuNing (SPIN) of HuggingFace-format language models in one binary.
// main() builds the CLI from the registered subcommands, runs the chosen one, and turns
// every user mistake into `error: ...` and a non-zero exit.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/stop_signal.h"
#include "core/threads.h"
#include "core/torch_pch.h"

namespace spinlm {

std::vector<CommandSpec>& registered_commands() {
  static std::vector<CommandSpec> commands;
  return commands;
}

bool register_command(std::string name, std::string help, CommandSetup setup) {
  registered_commands().push_back({std::move(name), std::move(help), std::move(setup)});
  return true;
}

GlobalOptions& global_options() {
  static GlobalOptions options;
  return options;
}

namespace {

// The first line of a torch error, without its C++ stack trace.
std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

int run_cli(int argc, char** argv) {
  CLI::App app{"spinlm: Self-Play Fine-Tuning (SPIN) of HuggingFace-format language models"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand name
  GlobalOptions& globals = global_options();
  app.add_option("--threads", globals.threads, "intra-op and BLAS threads (default: all cores)");
  app.add_flag("--quiet", globals.quiet, "print errors and warnings only");

  auto& commands = registered_commands();
  std::sort(commands.begin(), commands.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, CommandAction>> actions;
  for (const CommandSpec& command : commands) {
    CLI::App* sub = app.add_subcommand(command.name, command.help);
    actions.emplace_back(sub, command.setup(*sub));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }

  set_quiet(globals.quiet);
  setup_threads(globals.threads);
  for (auto& [sub, action] : actions) {
    if (sub->parsed()) action();
  }
  return 0;
}

}  // namespace
}  // namespace spinlm

int main(int argc, char** argv) {
  try {
    return spinlm::run_cli(argc, argv);
  } catch (const spinlm::Preempted& stopped) {
    std::fprintf(stderr, "stopped: %s\n", stopped.what());
    return spinlm::kPreemptedExit;
  } catch (const spinlm::Error& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
  } catch (const c10::Error& error) {
    std::fprintf(stderr, "error: %s\n", spinlm::first_line(error.what_without_backtrace()).c_str());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
  }
  return 1;
}
