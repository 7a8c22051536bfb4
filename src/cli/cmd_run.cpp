// `spinlm run --config RECIPE.yaml [--output RUN] [--resume]`: the SPIN loop of a recipe
// (pipeline/spin_loop.h), then the summary table and RUN/report.html.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "dist/dist_context.h"  // [dist] several processes (docs/distributed.md)
#include "model/device_choice.h"
#include "pipeline/recipe.h"
#include "pipeline/report.h"
#include "pipeline/spin_loop.h"
#include "train/train_device.h"

namespace spinlm {
namespace {

struct RunCliOptions {
  std::string config;
  std::string output;
  bool resume = false;
  bool validate_only = false;
  std::string device = "auto";
  std::string dtype = "auto";
};

CommandAction setup_run(CLI::App& app) {
  auto o = std::make_shared<RunCliOptions>();
  app.add_option("--config", o->config, "recipe YAML (see examples/)")->required();
  app.add_option("--output", o->output, "run folder (default: the recipe's output_dir)");
  app.add_flag("--resume", o->resume, "continue a killed run in the same folder");
  app.add_flag("--check", o->validate_only, "validate the recipe (and --device/--dtype) and exit");
  app.add_option("--device", o->device, std::string(kDeviceHelp) + "; every model of the run (not part of the "
                                        "recipe: --resume may continue on another device)");
  app.add_option("--dtype", o->dtype, kTrainingDtypeHelp);
  return [o] {
    // The whole recipe is validated before anything is written.
    const Recipe recipe = load_recipe(o->config);
    if (o->validate_only) {
      // The same resolution run_spin does first: a bad --device/--dtype fails the check too.
      TrainLoopOptions placement;
      placement.device = o->device;
      placement.dtype = o->dtype;
      const TrainDevice device = resolve_train_device(placement);
      std::printf("%s: valid recipe, %zu iterations; models on %s in %s\n", o->config.c_str(),
                  recipe.iterations.size(), device.device.str().c_str(), dtype_option_name(device.dtype).c_str());
      return;
    }
    RunOptions options;
    options.run_dir = o->output.empty() ? recipe.output_dir : o->output;
    options.resume = o->resume;
    options.device = o->device;
    options.dtype = o->dtype;
    TrainLoopOptions placement;
    placement.device = o->device;
    placement.dtype = o->dtype;
    options.dist = dist_from_environment(resolve_train_device(placement).device.str());  // [dist] null: one process
    const bool rank0 = options.dist == nullptr || options.dist->rank() == 0;
    options.show_progress = rank0;
    const RunSummary summary = run_spin(recipe, options);
    if (!rank0) return;  // rank 0 prints the table and writes the report
    std::printf("%s", format_summary_table(summary).c_str());
    if (!summary.stopped.empty()) std::printf("stopped early: %s\n", summary.stopped.c_str());
    std::printf("final model: %s\nreport: %s\n", summary.final_model.c_str(),
                write_report(options.run_dir).c_str());
  };
}

const bool registered = register_command("run", "run the SPIN loop of a recipe (generate, train, evaluate)", setup_run);

}  // namespace
}  // namespace spinlm
