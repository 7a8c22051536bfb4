// Background spinlm processes for the tests that start ranks by hand and kill them.
#pragma once
#include <sys/types.h>

#include <functional>
#include <string>

namespace spinlm::testkit {

// Starts `ENV spinlm ARGS` in the background (ENV: "NAME=value ..." or empty), stdout and
// stderr into log; returns its pid.
pid_t start_spinlm(const std::string& env, const std::string& args, const std::string& log);

// Waits up to limit seconds for a started process: its exit status (128 + the signal when a
// signal ended it), or -1 when it is still running; *seconds gets the time waited.
int wait_for_exit(pid_t pid, double limit, double* seconds = nullptr);

// Starts `spinlm ARGS` (output into log), kills it with SIGKILL once ready() holds, and waits
// for it; true when ready() held before the command ended on its own (within limit seconds).
bool kill_when(const std::string& args, const std::string& log, const std::function<bool()>& ready,
               double limit = 300);

// Waits up to limit seconds until the file contains text.
bool wait_for_text(const std::string& path, const std::string& text, double limit);

}  // namespace spinlm::testkit
