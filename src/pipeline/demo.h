// `spinlm demo`: SPIN end to end on this machine, with no downloads. No pretrained weights
// exist here, so the demo makes its own weak SFT model:
//   1. the synthetic arithmetic task (data/arith_task.h): train/validation/test splits;
//   2. a tiny Llama with the byte vocabulary, random init, then SFT on the train split;
//   3. the SPIN loop (pipeline/spin_loop.h) for three iterations from that model, with
//      greedy exact match on test problems and held-out reward accuracy after each, and the
//      same compute spent on continued SFT as the control;
//   4. a table on the terminal and OUT/run/report.html.
// Rerunning the same command in the same folder resumes where it stopped.
#pragma once
#include <string>

#include "pipeline/recipe.h"
#include "pipeline/spin_loop.h"

namespace spinlm {

struct DemoOptions {
  std::string out_dir = "demo-run";
  bool quick = false;  // a smaller model, data and budget (about 3 minutes on 2 cores)
  uint64_t seed = 42;
  bool show_progress = true;
};


// The recipe the demo runs once its SFT model exists (paths inside out_dir).
Recipe demo_recipe(const DemoOptions& options);

// Runs every stage (each resumable) and returns the run's summary.
RunSummary run_demo(const DemoOptions& options);

}  // namespace spinlm
