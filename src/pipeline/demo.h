// `spinlm demo`: SPIN end to end on this machine, with no downloads. No pretrained weights
// exist here, so the demo makes its own weak SFT model:
//   1. the synthetic arithmetic task (data/arith_task.h): train/validation/test splits;
//   2. a tiny Llama with the byte vocabulary, random init, then SFT on the train split;
//   3. the SPIN loop (pipeline/spin_loop.h) for three iterations from that model, with
//      greedy exact match on test problems and held-out reward accuracy after each, and the
//      same compute spent on continued SFT as the control;
//   4. the same loop with verifier-filtered negatives (an extension, generation.negatives)
//      in OUT/run-verified, compared with the SPIN run's control;
//   5. tables on the terminal and OUT/run/report.html with both arms.
//
// The experiment, fixed before any run: hyperparameters as in demo_recipe (chosen on a
// separate prototype's problems, shared/notes/demo-prototype.md); the primary measure is
// the forward KL(p_data || p) per test answer, paired over the test problems, of the last
// SPIN iteration minus the control at the same iteration (negative: SPIN nearer p_data),
// with its standard error. Secondary: greedy and T=1 exact match, valid mass, TV, with
// McNemar's test for exact match; the same for the verified arm. The model the table marks
// is chosen on the validation split only.
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

// The verified arm: demo_recipe with verifier-filtered negatives, in OUT/run-verified,
// without a control of its own.
Recipe demo_verified_recipe(const DemoOptions& options);

struct DemoResult {
  RunSummary spin;      // OUT/run: SPIN and the control
  RunSummary verified;  // OUT/run-verified, vs_control against OUT/run's control
};

// Runs every stage (each resumable) and returns both arms' summaries.
DemoResult run_demo(const DemoOptions& options);

// The primary measure as one line ("iter 2 - control 2, test forward KL ...: -0.0123 +-
// 0.0045 nats (n 500)"); empty when it was not measured.
std::string demo_primary_endpoint(const RunSummary& summary);

}  // namespace spinlm
