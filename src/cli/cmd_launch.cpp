// `spinlm launch --nproc N [--nnodes M --node-rank K] [--master-addr A] [--master-port P]
//  [--dist-timeout S] -- COMMAND ARGS...`: starts N local processes of COMMAND the way torchrun
// does, each with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT
// and SPINLM_DIST_TIMEOUT in its environment (src/dist/dist_env.h reads them). COMMAND
// "spinlm" means this binary.
//
// Each child runs in its own process group; SIGINT/SIGTERM/SIGHUP sent to the launcher are
// forwarded to every child. When a child fails (non-zero exit or killed by a signal) the
// others get SIGTERM (SIGKILL 10 s later) and the launcher exits with the failing child's
// status (128 + signal for a signal), so a broken rank never leaves the job running.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "cli/command.h"
#include "core/error.h"
#include "core/logging.h"

namespace spinlm {
namespace {

struct LaunchOptions {
  int nproc = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double dist_timeout = 300;
  std::vector<std::string> command;
};

volatile std::sig_atomic_t pending_signal = 0;
extern "C" void remember_signal(int signal) { pending_signal = signal; }

struct Child {
  pid_t pid = -1;
  int rank = 0;
  bool running = false;
};

std::string program_path(const std::string& name) {
  if (name != "spinlm") return name;
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return name;
  path[n] = '\0';
  return path;
}

pid_t start_child(const LaunchOptions& o, int local_rank) {
  const int world = o.nproc * o.nnodes;
  const int rank = o.node_rank * o.nproc + local_rank;
  std::vector<std::string> args = o.command;
  args[0] = program_path(args[0]);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  check(pid >= 0, "launch: fork failed (", std::strerror(errno), ")");
  if (pid > 0) return pid;
  // Child: its own process group (signals come through the launcher), then exec.
  ::setpgid(0, 0);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGHUP, SIG_DFL);
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(local_rank).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
  ::setenv("GROUP_RANK", std::to_string(o.node_rank).c_str(), 1);
  ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
  ::setenv("MASTER_PORT", std::to_string(o.master_port).c_str(), 1);
  ::setenv("SPINLM_DIST_TIMEOUT", std::to_string(o.dist_timeout).c_str(), 1);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  std::fprintf(stderr, "error: launch: cannot run %s (%s)\n", argv[0], std::strerror(errno));
  std::_Exit(127);
}

void signal_all(std::vector<Child>& children, int signal) {
  for (Child& c : children) {
    if (c.running) ::kill(-c.pid, signal);  // the child's whole process group
  }
}

int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string status_text(int status) {
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) +
                                  " (" + strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(status_code(status));
}

// Reaps finished children without blocking; returns the first failure's status code or 0.
int reap(std::vector<Child>& children, int& running, bool report) {
  int failure = 0;
  for (Child& c : children) {
    if (!c.running) continue;
    int status = 0;
    const pid_t done = ::waitpid(c.pid, &status, WNOHANG);
    if (done != c.pid) continue;
    c.running = false;
    --running;
    const int code = status_code(status);
    if (code != 0 && failure == 0) {
      failure = code;
      if (report) log_warning("launch: rank ", c.rank, " (pid ", c.pid, ") ", status_text(status));
    }
  }
  return failure;
}

int run_launch(const LaunchOptions& o) {
  check(o.nproc >= 1, "--nproc must be at least 1, got ", o.nproc);
  check(o.nnodes >= 1, "--nnodes must be at least 1, got ", o.nnodes);
  check(o.node_rank >= 0 && o.node_rank < o.nnodes, "--node-rank must be in [0, --nnodes), got ", o.node_rank);
  check(o.master_port >= 1 && o.master_port <= 65535, "--master-port must be in 1..65535");
  check(o.dist_timeout > 0, "--dist-timeout must be positive");
  check(!o.command.empty(), "no command to launch (spinlm launch --nproc N -- spinlm train ...)");

  std::signal(SIGINT, remember_signal);
  std::signal(SIGTERM, remember_signal);
  std::signal(SIGHUP, remember_signal);
  std::vector<Child> children;
  for (int local = 0; local < o.nproc; ++local) {
    Child c;
    c.pid = start_child(o, local);
    c.rank = o.node_rank * o.nproc + local;
    c.running = true;
    children.push_back(c);
  }
  log_info("launch: ", o.nproc, " processes (ranks ", o.node_rank * o.nproc, "..",
           o.node_rank * o.nproc + o.nproc - 1, " of ", o.nproc * o.nnodes, "), master ", o.master_addr, ":",
           o.master_port);

  int running = o.nproc;
  int exit_code = 0;
  int forwarded = 0;
  while (running > 0) {
    if (pending_signal != 0) {
      forwarded = pending_signal;
      pending_signal = 0;
      signal_all(children, forwarded);
    }
    const int failure = reap(children, running, forwarded == 0);
    if (failure != 0 && exit_code == 0) {
      exit_code = failure;
      if (running > 0) {
        log_warning("launch: stopping the other ", running, " rank(s)");
        signal_all(children, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (running > 0 && std::chrono::steady_clock::now() < deadline) {
          reap(children, running, false);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        signal_all(children, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (forwarded != 0 && exit_code == 0) exit_code = 128 + forwarded;
  return exit_code;
}

CommandAction setup_launch(CLI::App& app) {
  auto options = std::make_shared<LaunchOptions>();
  LaunchOptions& o = *options;
  app.add_option("--nproc", o.nproc, "processes on this machine (one per GPU; CPU: cores / threads each)")
      ->required();
  app.add_option("--nnodes", o.nnodes, "machines in the job")->capture_default_str();
  app.add_option("--node-rank", o.node_rank, "this machine's index, 0..nnodes-1")->capture_default_str();
  app.add_option("--master-addr", o.master_addr, "address of the machine with node rank 0")
      ->capture_default_str();
  app.add_option("--master-port", o.master_port, "a free TCP port there (rendezvous)")->capture_default_str();
  app.add_option("--dist-timeout", o.dist_timeout,
                 "seconds a rank waits for the others before it stops with an error")
      ->capture_default_str();
  app.add_option("command", o.command, "the command each process runs, after --")->required();
  return [options] {
    const int code = run_launch(*options);
    if (code != 0) {
      std::fprintf(stderr, "error: launch: a rank failed (exit status %d); the job was stopped\n", code);
      std::fflush(nullptr);
      std::exit(code);
    }
  };
}

const bool registered = register_command("launch", "start N data-parallel processes (like torchrun)", setup_launch);

}  // namespace
}  // namespace spinlm
