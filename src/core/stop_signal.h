// Preemption. SLURM and Kubernetes stop a job with SIGTERM (some clusters send SIGUSR1 a
// grace period earlier), then SIGKILL. After install_stop_signals(), the first SIGTERM, SIGINT
// or SIGUSR1 only sets a flag; long jobs read it at their safe points (training after an
// optimizer step, generation after a row is written), save what they have atomically and
// throw Preempted, which the CLI reports with the way to resume and exit status
// kPreemptedExit. A second signal ends the process at once with the default action: every
// file spinlm writes is written atomically or appended line by line, so nothing is corrupted,
// only the work since the last safe point is lost.
#pragma once
#include <string>

#include "core/error.h"

namespace spinlm {

// EX_TEMPFAIL (sysexits.h): stopped by a signal after saving; the same command with
// --resume (generation: the same command) continues.
constexpr int kPreemptedExit = 75;

class Preempted : public Error {
 public:
  using Error::Error;
};

// Installs the handlers (idempotent).
void install_stop_signals();

// The first signal received (SIGTERM, SIGINT, SIGUSR1), or 0.
int stop_signal();
inline bool stop_requested() { return stop_signal() != 0; }

// "SIGTERM", "SIGINT", "SIGUSR1" (or "signal N").
std::string signal_name(int signal);

// What stopped a job that several ranks agreed to stop: this rank's signal, or "a signal to
// another rank".
std::string stop_cause();

}  // namespace spinlm
