// Subcommands register themselves: each src/cli/cmd_<name>.cpp defines one static
//   const bool registered = register_command("name", "help", setup);
// where setup declares the options on the subcommand's CLI11 App and returns the action
// to run once the options are parsed. main.cpp needs no edit for a new subcommand.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace spinlm {

using CommandAction = std::function<void()>;
using CommandSetup = std::function<CommandAction(CLI::App&)>;

struct CommandSpec {
  std::string name;
  std::string help;
  CommandSetup setup;
};

bool register_command(std::string name, std::string help, CommandSetup setup);
std::vector<CommandSpec>& registered_commands();

// Options shared by every subcommand (declared on the top-level app, accepted after the
// subcommand name too).
struct GlobalOptions {
  int threads = 0;  // 0: all cores
  bool quiet = false;
};
GlobalOptions& global_options();

}  // namespace spinlm
