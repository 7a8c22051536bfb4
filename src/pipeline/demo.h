// `spinlm demo`: SPIN end to end on this machine, with no downloads. No pretrained weights
// exist here, so the demo makes its own weak SFT model:
//   1. the synthetic arithmetic task (data/arith_task.h): train/validation/test splits;
//   2. a tiny Llama with the byte vocabulary, random init, then SFT on the train split;
//   3. the SPIN loop (pipeline/spin_loop.h) for three iterations from that model, with
//      greedy exact match on test problems and held-out reward accuracy after each, and the
//      same compute spent on continued SFT as the control;
//   4. the same loop with verifier-filtered negatives (an extension, generation.negatives)
//      in OUT/run-verified, compared with the SPIN run's control; with --full also SPIN at
//      beta 1.0 (OUT/run-beta1) and, the paper's setting, SPIN and a control of its own from
//      an SFT model trained until validation loss stopped falling (OUT/run-plateau);
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
  bool quick = false;  // a smaller model, data and budget (under a minute on 2 cores)
  // Two more arms: SPIN at beta 1.0, and SPIN (with its own control) from an SFT model
  // trained to its validation plateau (about 20 more minutes on 2 cores).
  bool full = false;
  uint64_t seed = 42;
  bool show_progress = true;
};


// The recipe the demo runs once its SFT model exists (paths inside out_dir).
Recipe demo_recipe(const DemoOptions& options);

// An arm of the experiment beside OUT/run (SPIN and its control).
struct DemoArm {
  std::string label;
  Recipe recipe;
  // Paired against OUT/run's control (the arm starts from the same SFT model and has no
  // control of its own); else the recipe has its own control.
  bool paired_with_spin_control = true;
  RunSummary summary;  // filled by run_demo
};

// The further arms: verifier-filtered negatives (OUT/run-verified); with --full also beta 1.0
// (OUT/run-beta1) and the plateaued SFT model (OUT/run-plateau, its model_name_or_path empty
// until run_demo has trained OUT/sft-plateau and picked its epoch on the validation split).
std::vector<DemoArm> demo_arms(const DemoOptions& options);

struct DemoResult {
  RunSummary spin;            // OUT/run: SPIN and the control
  std::vector<DemoArm> arms;  // demo_arms, each run
};

// Runs every stage (each resumable) and returns every arm's summary.
DemoResult run_demo(const DemoOptions& options);

// The primary measure as one line ("iter 2 - control 2, test forward KL ...: -0.0123 +-
// 0.0045 nats (n 500)"); empty when it was not measured.
std::string demo_primary_endpoint(const RunSummary& summary);

}  // namespace spinlm
