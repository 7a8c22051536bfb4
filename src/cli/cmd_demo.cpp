// `spinlm demo [--quick] [--out DIR]`: SPIN end to end on a synthetic task (pipeline/demo.h).
#include <chrono>
#include <cstdio>

#include "cli/command.h"
#include "core/stop_signal.h"
#include "core/progress.h"
#include "pipeline/demo.h"
#include "pipeline/report.h"

namespace spinlm {
namespace {

CommandAction setup_demo(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  app.add_flag("--quick", o->quick, "a smaller model and budget (under a minute on 2 cores)");
  app.add_flag("--full", o->full, "two more arms: SPIN at beta 1.0, and SPIN from an SFT model trained to its "
                                  "validation plateau (about 20 more minutes on 2 cores)");
  app.add_option("--out", o->out_dir, "folder for data, models and the run (default demo-run); "
                                      "rerunning resumes");
  app.add_option("--seed", o->seed, "seed of the data, the model and the run (default 42)");
  return [o] {
    install_stop_signals();  // SIGTERM/SIGINT/SIGUSR1: save at the next safe point, then stop
    const auto start = std::chrono::steady_clock::now();
    const DemoResult result = run_demo(*o);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("\nSPIN on the arithmetic task (held-out reward accuracy of p_{t+1} against p_t;\n"
                "control = continued SFT with the same compute):\n%s",
                format_summary_table(result.spin).c_str());
    std::vector<ReportArm> report_arms;
    for (const DemoArm& arm : result.arms) {
      std::printf("\n%s (%s%s):\n%s", arm.label.c_str(), arm.recipe.source.c_str(),
                  arm.paired_with_spin_control ? "; paired against the control above" : "",
                  format_summary_table(arm.summary).c_str());
      if (arm.paired_with_spin_control) report_arms.push_back({arm.label, arm.recipe.output_dir});
    }
    std::printf("\nprimary measure (fixed in advance), SPIN: %s\n", demo_primary_endpoint(result.spin).c_str());
    for (const DemoArm& arm : result.arms)
      std::printf("the same for %s: %s\n", arm.label.c_str(), demo_primary_endpoint(arm.summary).c_str());
    for (const DemoArm& arm : result.arms)
      if (!arm.paired_with_spin_control) std::printf("report: %s\n", write_report(arm.recipe.output_dir).c_str());
    const std::string report = write_report(o->out_dir + "/run", 4, report_arms);
    std::printf("report: %s\ntime: %s\n", report.c_str(), format_duration(seconds).c_str());
  };
}

const bool registered = register_command("demo", "SPIN end to end on a synthetic arithmetic task (no downloads)",
                                         setup_demo);

}  // namespace
}  // namespace spinlm
