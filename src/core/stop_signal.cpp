#include "core/stop_signal.h"

#include <csignal>
#include <cstring>

namespace spinlm {
namespace {

volatile std::sig_atomic_t first_signal = 0;

void on_signal(int signal) {
  if (first_signal != 0) {
    // The second signal: stop now, as the signal would without a handler.
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  first_signal = signal;
}

}  // namespace

void install_stop_signals() {
  for (int signal : {SIGTERM, SIGINT, SIGUSR1}) {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // reads and writes in progress continue
    sigaction(signal, &action, nullptr);
  }
}

int stop_signal() { return first_signal; }

std::string signal_name(int signal) {
  switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    default: return "signal " + std::to_string(signal);
  }
}

std::string stop_cause() { return stop_requested() ? signal_name(stop_signal()) : "a signal to another rank"; }

}  // namespace spinlm
