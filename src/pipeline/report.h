// `spinlm report RUN`: RUN/report.html, one self-contained page (inline SVG, no scripts, no
// network) showing what a SPIN run did:
//   - the evaluation table across models: SFT (RUN/sft_eval.json), iter 0, 1, ...
//     (RUN/iter_T/eval.json) and the continued-SFT control (RUN/control/iter_T/eval.json),
//     with lm-eval task columns ("<task>/<metric>") when the recipe runs tasks, and the model
//     selected on the validation split marked;
//   - evaluation curves: each measurement against the iteration, SPIN next to the control
//     and any further arms (both start at the SFT model), with +- one standard error bars
//     where the measurement has one (exact match, forward KL, valid mass, ...);
//   - the paired differences SPIN - control per iteration (RUN/iter_T/vs_control.json);
//   - training curves per iteration against the global step: loss, rewards/real,
//     rewards/generated, rewards/accuracies, rewards/margins (from RUN/iter_T/metrics.jsonl),
//     and the control's SFT loss (RUN/control/iter_T/metrics.jsonl);
//   - sample pairs per iteration, the real answer next to the generated one
//     (RUN/iter_T/pairs.jsonl), HTML-escaped.
// Missing pieces (a run still going, no control) are left out, not errors.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace spinlm {

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(const std::string& text);

struct ChartSeries {
  std::string label;
  std::string color;                            // CSS colour
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite y are skipped
  bool dashed = false;
  std::vector<double> errors;  // empty, or one half-length per point: a bar y +- error (0: none)
};

// A further arm of an experiment drawn next to the run's own: another run folder from the
// same SFT model (e.g. verified-filtered SPIN), labelled in the charts and the table.
struct ReportArm {
  std::string label;
  std::string run_dir;
};

// The colour of the continued-SFT control in every chart (no iteration colour uses it).
extern const char* const kControlColor;

// An SVG line chart with axes, ticks, a title and a legend.
std::string svg_line_chart(const std::string& title, const std::vector<ChartSeries>& series,
                           int width = 560, int height = 300, const std::string& x_label = "step");

// Builds the page for run_dir (see above) and returns it.
std::string render_report(const std::string& run_dir, int samples_per_iteration = 4,
                          const std::vector<ReportArm>& arms = {});

// Writes run_dir/report.html atomically and returns its path.
std::string write_report(const std::string& run_dir, int samples_per_iteration = 4,
                         const std::vector<ReportArm>& arms = {});

}  // namespace spinlm
