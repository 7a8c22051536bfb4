// `spinlm demo [--quick] [--out DIR]`: SPIN end to end on a synthetic task (pipeline/demo.h).
#include <chrono>
#include <cstdio>

#include "cli/command.h"
#include "core/progress.h"
#include "pipeline/demo.h"
#include "pipeline/report.h"

namespace spinlm {
namespace {

CommandAction setup_demo(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  app.add_flag("--quick", o->quick, "a smaller model and budget (about 3 minutes on 2 cores)");
  app.add_option("--out", o->out_dir, "folder for data, models and the run (default demo-run); "
                                      "rerunning resumes");
  app.add_option("--seed", o->seed, "seed of the data, the model and the run (default 42)");
  return [o] {
    const auto start = std::chrono::steady_clock::now();
    const RunSummary summary = run_demo(*o);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("\nSPIN on the arithmetic task (greedy exact match on test problems; held-out reward\n"
                "accuracy of p_{t+1} against p_t; control = continued SFT with the same compute):\n%s",
                format_summary_table(summary).c_str());
    if (!summary.stopped.empty()) std::printf("stopped early: %s\n", summary.stopped.c_str());
    std::printf("report: %s\ntime: %s\n", write_report(o->out_dir + "/run").c_str(), format_duration(seconds).c_str());
  };
}

const bool registered = register_command("demo", "SPIN end to end on a synthetic arithmetic task (no downloads)",
                                         setup_demo);

}  // namespace
}  // namespace spinlm
