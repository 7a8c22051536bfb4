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
    const DemoResult result = run_demo(*o);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("\nSPIN on the arithmetic task (held-out reward accuracy of p_{t+1} against p_t;\n"
                "control = continued SFT with the same compute):\n%s",
                format_summary_table(result.spin).c_str());
    std::printf("\nSPIN with verifier-filtered negatives (an extension: answers the verifier accepts are\n"
                "drawn again; paired against the control above):\n%s",
                format_summary_table(result.verified).c_str());
    std::printf("\nprimary measure (fixed in advance), SPIN: %s\n", demo_primary_endpoint(result.spin).c_str());
    std::printf("same for the verified arm: %s\n", demo_primary_endpoint(result.verified).c_str());
    const std::string report =
        write_report(o->out_dir + "/run", 4, {{"SPIN verified", o->out_dir + "/run-verified"}});
    std::printf("report: %s\ntime: %s\n", report.c_str(), format_duration(seconds).c_str());
  };
}

const bool registered = register_command("demo", "SPIN end to end on a synthetic arithmetic task (no downloads)",
                                         setup_demo);

}  // namespace
}  // namespace spinlm
