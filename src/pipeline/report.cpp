// The report page is plain HTML + CSS + inline SVG written here, so it opens anywhere,
// offline, with nothing to trust but the text itself.
#include "pipeline/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "io/jsonl.h"
#include "pipeline/spin_loop.h"

namespace spinlm {
namespace {

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

std::string fmt(double value, const char* format = "%.4g") {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks.
double nice_step(double range, int count) {
  const double raw = range / count;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * power) return m * power;
  return 10 * power;
}

bool exists(const std::string& path) { return std::filesystem::exists(path); }

// Iterations present in the run folder: iter_0, iter_1, ... up to the first missing one.
int64_t count_iterations(const std::string& dir) {
  int64_t t = 0;
  while (exists(dir + "/iter_" + std::to_string(t))) ++t;
  return t;
}

// Training rows of a metrics file (rows with a loss and no eval prefix), as (x, row).
std::vector<nlohmann::json> training_rows(const std::string& path) {
  std::vector<nlohmann::json> rows;
  if (!exists(path)) return rows;
  for (JsonlRow& row : read_jsonl(path)) {
    const nlohmann::json& v = row.value;
    if (!v.contains("loss") || v.value("split", "train") != "train") continue;
    rows.push_back(std::move(row.value));
  }
  return rows;
}

int64_t count_control_iterations(const std::string& dir) {
  int64_t t = 0;
  while (exists(dir + "/control/iter_" + std::to_string(t))) ++t;
  return t;
}

// One chart's series per iteration: rows' key against the global step (each iteration's
// steps continue after the previous one's last step). color(t) gives iteration t's colour.
std::vector<ChartSeries> step_series(const std::vector<std::vector<nlohmann::json>>& iterations,
                                     const std::string& key, const std::string& label,
                                     const std::function<std::string(int64_t)>& color, bool dashed) {
  std::vector<ChartSeries> series;
  double offset = 0;  // global step where the iteration starts
  for (size_t t = 0; t < iterations.size(); ++t) {
    const std::vector<nlohmann::json>& rows = iterations[t];
    ChartSeries s{label + " " + std::to_string(t), color(int64_t(t)), {}, dashed, {}};
    double last_step = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const nlohmann::json& row = rows[i];
      const double step = row.contains("step") && row["step"].is_number() ? row["step"].get<double>() : double(i + 1);
      last_step = std::max(last_step, step);
      if (row.contains(key) && row[key].is_number()) s.points.push_back({offset + step, row[key].get<double>()});
    }
    series.push_back(std::move(s));
    offset += last_step;
  }
  return series;
}

bool any_points(const std::vector<ChartSeries>& series) {
  for (const ChartSeries& s : series)
    if (!s.points.empty()) return true;
  return false;
}

std::string curves_section(const std::string& dir, int64_t iterations) {
  const std::vector<std::string> keys = {"loss", "rewards/real", "rewards/generated",
                                         "rewards/accuracies", "rewards/margins"};
  std::vector<std::vector<nlohmann::json>> spin, control;
  for (int64_t t = 0; t < iterations; ++t)
    spin.push_back(training_rows(dir + "/iter_" + std::to_string(t) + "/metrics.jsonl"));
  for (int64_t t = 0, n = count_control_iterations(dir); t < n; ++t)
    control.push_back(training_rows(dir + "/control/iter_" + std::to_string(t) + "/metrics.jsonl"));
  std::vector<std::vector<ChartSeries>> charts;
  bool any = false;
  for (const std::string& key : keys) {
    charts.push_back(step_series(spin, key, "iter", [](int64_t t) { return kPalette[t % 8]; }, false));
    any = any || any_points(charts.back());
  }
  // The control trains with the SFT loss (NLL per token), a different quantity from the
  // SPIN loss, so it gets its own chart in its own colour, dashed.
  const std::vector<ChartSeries> control_loss =
      step_series(control, "loss", "control", [](int64_t) { return std::string(kControlColor); }, true);
  const bool any_control = any_points(control_loss);
  std::string html = "<h2>Training curves</h2>\n";
  if (!any && !any_control) return html + "<p class=\"note\">No training metrics yet.</p>\n";
  html += "<p class=\"note\">Per logging step, against the global step; one colour per iteration. "
          "rewards = beta * (log p_theta - log p_t), summed over response tokens.";
  if (any_control)
    html += " The continued-SFT control (dashed) is trained on the SFT loss, the NLL per answer token.";
  html += "</p>\n<div class=\"charts\">\n";
  for (size_t k = 0; k < keys.size(); ++k)
    if (any) html += svg_line_chart(keys[k], charts[k]) + "\n";
  if (any_control) html += svg_line_chart("control: SFT loss", control_loss) + "\n";
  return html + "</div>\n";
}

// One row of the evaluation table.
struct EvalRow {
  std::string label;
  nlohmann::json values;
  bool control = false;
  int64_t x = 0;  // 0 for SFT, t + 1 for iteration t
  int arm = 0;    // 0: the run's own SPIN iterations; a: arms[a - 1]
};

bool is_stderr_key(const std::string& key) {
  return key.size() > 7 && key.compare(key.size() - 7, 7, "_stderr") == 0;
}

// The numbers worth a column: measurements, not their standard errors or sample counts.
bool is_metric_key(const std::string& key, const nlohmann::json& value) {
  const bool is_count = key.size() > 2 && key.compare(key.size() - 2, 2, "_n") == 0;
  return value.is_number() && !is_stderr_key(key) && !is_count;
}

// What a measurement is and which split it comes from.
std::string metric_note(const std::string& key) {
  if (key == "exact_match") return "greedy exact match, test split (reported)";
  if (key == "heldout_exact_match") return "greedy exact match, validation split";
  if (key == "heldout_nll") return "NLL per answer token, validation split (lower is better)";
  if (key == "heldout_perplexity") return "perplexity, validation split";
  if (key.rfind("heldout_", 0) == 0) return "validation split, p_{t+1} against p_t";
  if (key.find('/') != std::string::npos) return "lm-evaluation-harness task";
  return "";
}

std::string evaluation_section(const std::string& dir, int64_t iterations, const std::vector<ReportArm>& arms) {
  std::vector<EvalRow> rows;
  RunSummary summary;  // for the model selected on validation
  if (exists(dir + "/sft_eval.json")) {
    rows.push_back({"SFT (p_0)", read_json_file(dir + "/sft_eval.json"), false, 0, 0});
    summary.spin.push_back({"SFT", rows.back().values});
  }
  for (int64_t t = 0; t < iterations; ++t) {
    const std::string path = dir + "/iter_" + std::to_string(t) + "/eval.json";
    if (!exists(path)) continue;
    rows.push_back({"SPIN iter " + std::to_string(t), read_json_file(path), false, t + 1, 0});
    summary.spin.push_back({"iter " + std::to_string(t), rows.back().values});
  }
  for (int64_t t = 0, n = count_control_iterations(dir); t < n; ++t) {
    const std::string path = dir + "/control/iter_" + std::to_string(t) + "/eval.json";
    if (exists(path)) rows.push_back({"control (SFT) " + std::to_string(t), read_json_file(path), true, t + 1, 0});
  }
  for (size_t a = 0; a < arms.size(); ++a)
    for (int64_t t = 0, n = count_iterations(arms[a].run_dir); t < n; ++t) {
      const std::string path = arms[a].run_dir + "/iter_" + std::to_string(t) + "/eval.json";
      if (exists(path))
        rows.push_back({arms[a].label + " " + std::to_string(t), read_json_file(path), false, t + 1, int(a) + 1});
    }
  select_on_validation(summary);
  std::string html = "<h2>Evaluation</h2>\n";
  if (rows.empty()) return html + "<p class=\"note\">No evaluation yet.</p>\n";
  // Columns: every measurement, in first-seen order; *_stderr shown as +- next to its metric.
  std::vector<std::string> columns;
  for (const EvalRow& row : rows)
    for (const auto& [key, value] : row.values.items())
      if (is_metric_key(key, value) && std::find(columns.begin(), columns.end(), key) == columns.end())
        columns.push_back(key);
  // The reported number first, then the validation measurements, then lm-eval tasks.
  const auto rank = [](const std::string& key) {
    const std::vector<std::string> order = {"exact_match", "heldout_exact_match", "heldout_reward_accuracy",
                                            "heldout_nll"};
    const auto it = std::find(order.begin(), order.end(), key);
    if (it != order.end()) return int(it - order.begin());
    return key.find('/') == std::string::npos ? 10 : 20;
  };
  std::stable_sort(columns.begin(), columns.end(),
                   [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
  html += "<div class=\"wide\"><table class=\"eval\">\n<tr><th>model</th>";
  for (const std::string& c : columns)
    html += "<th title=\"" + html_escape(metric_note(c)) + "\">" + html_escape(c) + "</th>";
  html += "</tr>\n";
  for (const EvalRow& row : rows) {
    const bool selected = !row.control && row.arm == 0 && !summary.selected.empty() &&
                          (row.x == 0 ? "SFT" : "iter " + std::to_string(row.x - 1)) == summary.selected;
    html += std::string("<tr") + (row.control ? " class=\"control\"" : "") + "><td>" + html_escape(row.label) +
            (selected ? " &#9733;" : "") + "</td>";
    for (const std::string& c : columns) {
      const nlohmann::json& v = row.values;
      std::string cell = v.contains(c) && v[c].is_number() ? fmt(v[c].get<double>()) : "&ndash;";
      if (v.contains(c + "_stderr") && v[c + "_stderr"].is_number())
        cell += " <span class=\"se\">&plusmn; " + fmt(v[c + "_stderr"].get<double>(), "%.2g") + "</span>";
      html += "<td>" + cell + "</td>";
    }
    html += "</tr>\n";
  }
  html += "</table></div>\n<p class=\"note\">exact_match is measured on the test split and only reported; "
          "heldout_* measurements use the validation split, the only one that steers choices (stop rule, "
          "selected model).";
  if (!summary.selected.empty())
    html += " &#9733; = the model selected on validation by " + html_escape(summary.selected_by) + ".";
  html += "</p>\n";

  // Each measurement against the iteration: SPIN and the control both start at SFT (x = 0).
  std::string charts;
  for (const std::string& c : columns) {
    // Series 0: SPIN, 1..: the arms, last: the control; every one starts at the SFT point.
    std::vector<ChartSeries> lines = {{"SPIN", kPalette[0], {}, false, {}}};
    for (size_t a = 0; a < arms.size(); ++a) lines.push_back({arms[a].label, kPalette[(a + 2) % 8], {}, false, {}});
    lines.push_back({"control (SFT)", kControlColor, {}, true, {}});
    ChartSeries& control = lines.back();
    const auto add = [&](ChartSeries& line, const EvalRow& row) {
      line.points.push_back({double(row.x), row.values[c].get<double>()});
      const std::string se = c + "_stderr";
      line.errors.push_back(row.values.contains(se) && row.values[se].is_number() ? row.values[se].get<double>() : 0.0);
    };
    for (const EvalRow& row : rows) {
      if (!row.values.contains(c) || !row.values[c].is_number()) continue;
      if (row.x == 0) {
        for (ChartSeries& line : lines) add(line, row);
      } else {
        add(row.control ? control : lines[size_t(row.arm)], row);
      }
    }
    std::vector<ChartSeries> series;
    for (size_t i = 0; i < lines.size(); ++i)
      if (i == 0 || lines[i].points.size() > 1) series.push_back(lines[i]);  // more than the shared SFT point
    charts += svg_line_chart(c, series, 400, 260, "iteration (0 = SFT, t + 1 = after iteration t)") + "\n";
  }
  html += "<h3>Across iterations</h3>\n<div class=\"charts\">\n" + charts + "</div>\n";
  return html;
}

// SPIN - control per iteration, paired over the same problems (RUN/iter_T/vs_control.json).
std::string paired_section(const std::string& dir, int64_t iterations) {
  std::vector<std::pair<int64_t, nlohmann::json>> found;
  for (int64_t t = 0; t < iterations; ++t) {
    const std::string path = dir + "/iter_" + std::to_string(t) + "/vs_control.json";
    if (exists(path)) found.emplace_back(t, read_json_file(path));
  }
  if (found.empty()) return "";
  std::vector<std::string> columns;
  for (const auto& [t, v] : found)
    for (const auto& [key, value] : v.items())
      if (std::find(columns.begin(), columns.end(), key) == columns.end()) columns.push_back(key);
  std::string html = "<h3>SPIN &minus; control, paired over the same problems</h3>\n<div class=\"wide\"><table class=\"eval\">"
                     "\n<tr><th>iteration</th>";
  for (const std::string& c : columns) html += "<th>" + html_escape(c) + "</th>";
  html += "</tr>\n";
  for (const auto& [t, v] : found) {
    html += "<tr><td>" + std::to_string(t) + "</td>";
    for (const std::string& c : columns) {
      std::string cell = "&ndash;";
      if (v.contains(c)) {
        const nlohmann::json& d = v[c];
        cell = fmt(d["mean"].get<double>());
        if (d["stderr"].is_number()) cell += " <span class=\"se\">&plusmn; " + fmt(d["stderr"].get<double>(), "%.2g") + "</span>";
        if (d.contains("mcnemar"))
          cell += " <span class=\"se\">(McNemar p " + fmt(d["mcnemar"]["p_value"].get<double>(), "%.3g") + ")</span>";
      }
      html += "<td>" + cell + "</td>";
    }
    html += "</tr>\n";
  }
  return html + "</table></div>\n<p class=\"note\">Per problem: SPIN iteration t minus the control at t, mean "
                "&plusmn; standard error of the differences; heldout_* on the validation split, the rest on the test "
                "split.</p>\n";
}

// The content of the last message with the given role (the answer of a conversation).
std::string message_content(const nlohmann::json& messages, const std::string& role) {
  std::string content;
  if (!messages.is_array()) return content;
  for (const auto& m : messages)
    if (m.is_object() && m.value("role", "") == role && m.contains("content") && m["content"].is_string())
      content = m["content"].get<std::string>();
  return content;
}

std::string samples_section(const std::string& dir, int64_t iterations, int per_iteration) {
  std::string html = "<h2>Sample pairs</h2>\n";
  bool any = false;
  for (int64_t t = 0; t < iterations; ++t) {
    const std::string path = dir + "/iter_" + std::to_string(t) + "/pairs.jsonl";
    if (!exists(path)) continue;
    JsonlReader reader(path);
    nlohmann::json row;
    html += "<h3>iter " + std::to_string(t) + "</h3>\n<table class=\"pairs\">\n"
            "<tr><th>prompt</th><th>real</th><th>generated by p_" + std::to_string(t) + "</th></tr>\n";
    for (int n = 0; n < per_iteration && reader.next(row); ++n) {
      any = true;
      const nlohmann::json real = row.value("real", nlohmann::json());
      const nlohmann::json generated = row.value("generated", nlohmann::json());
      html += "<tr><td><pre>" + html_escape(message_content(real, "user")) + "</pre></td><td><pre>" +
              html_escape(message_content(real, "assistant")) + "</pre></td><td><pre>" +
              html_escape(message_content(generated, "assistant")) + "</pre></td></tr>\n";
    }
    html += "</table>\n";
  }
  if (!any) html += "<p class=\"note\">No pairs yet.</p>\n";
  return html;
}

std::string status_section(const std::string& dir) {
  std::string html;
  if (exists(dir + "/state.json")) {
    const nlohmann::json state = read_json_file(dir + "/state.json");
    const size_t steps = state.contains("steps") ? state["steps"].size() : 0;
    html += "<p>" + std::to_string(steps) + " steps finished";
    if (state.contains("stopped") && state["stopped"].is_string())
      html += "; stopped early: " + html_escape(state["stopped"].get<std::string>());
    if (state.contains("finished") && state["finished"] == true) html += "; run complete";
    html += ".</p>\n";
  }
  if (exists(dir + "/recipe.json"))
    html += "<details><summary>recipe</summary><pre>" + html_escape(read_file(dir + "/recipe.json")) +
            "</pre></details>\n";
  return html;
}

const char* const kStyle = R"(<style>
body{font-family:sans-serif;margin:24px;color:#222;background:#fff;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}
.note{color:#666;font-size:13px}.charts{display:flex;flex-wrap:wrap;gap:12px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f2f2f2}.se{color:#888;font-size:11px}tr.control td{background:#fbf6ea}
.wide{overflow-x:auto}table.eval td:first-child{white-space:nowrap}
table.pairs td{max-width:360px}pre{white-space:pre-wrap;margin:0;font-size:12px}
</style>)";

}  // namespace

const char* const kControlColor = "#b8860b";

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_line_chart(const std::string& title, const std::vector<ChartSeries>& series,
                           int width, int height, const std::string& x_label) {
  const double left = 60, right = 12, top = 28, bottom = 40;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  // Half-length of point i's error bar (0 without one).
  const auto error_of = [](const ChartSeries& s, size_t i) {
    return i < s.errors.size() && std::isfinite(s.errors[i]) ? std::abs(s.errors[i]) : 0.0;
  };
  for (const ChartSeries& s : series)
    for (size_t i = 0; i < s.points.size(); ++i) {
      const auto [x, y] = s.points[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      const double e = error_of(s, i);
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y - e), y1 = std::max(y1, y + e);
    }
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
                    "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) +
                    " " + std::to_string(height) + "\" role=\"img\" aria-label=\"" + html_escape(title) +
                    "\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\" stroke=\"#ddd\"/>\n"
                    "<text x=\"" + fmt(width / 2.0) + "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" "
                    "font-family=\"sans-serif\">" + html_escape(title) + "</text>\n";
  if (!std::isfinite(x0)) {
    return svg + "<text x=\"" + fmt(width / 2.0) + "\" y=\"" + fmt(height / 2.0) +
           "\" text-anchor=\"middle\" font-size=\"12\" fill=\"#888\">no data</text>\n</svg>";
  }
  // A flat series still gets a visible range.
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  if (y1 == y0) {
    const double pad = std::max(1e-6, std::abs(y0) * 0.05);
    y0 -= pad, y1 += pad;
  }
  // Integer x (steps, iterations) gets integer ticks.
  bool integer_x = true;
  for (const ChartSeries& s : series)
    for (const auto& point : s.points) integer_x = integer_x && point.first == std::floor(point.first);
  const double y_step = nice_step(y1 - y0, 5);
  const double x_step = integer_x ? std::max(1.0, nice_step(x1 - x0, 6)) : nice_step(x1 - x0, 6);
  y0 = std::floor(y0 / y_step) * y_step, y1 = std::ceil(y1 / y_step) * y_step;
  const auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * plot_w; };
  const auto py = [&](double y) { return top + (1 - (y - y0) / (y1 - y0)) * plot_h; };
  // Grid and tick labels.
  for (double y = y0; y <= y1 + y_step * 1e-6; y += y_step) {
    const double yy = std::abs(y) < y_step * 1e-9 ? 0.0 : y;
    svg += "<line x1=\"" + fmt(left) + "\" x2=\"" + fmt(left + plot_w) + "\" y1=\"" + fmt(py(y)) +
           "\" y2=\"" + fmt(py(y)) + "\" stroke=\"#eee\"/>\n<text x=\"" + fmt(left - 6) + "\" y=\"" +
           fmt(py(y) + 4) + "\" text-anchor=\"end\" font-size=\"11\" font-family=\"sans-serif\">" +
           fmt(yy) + "</text>\n";
  }
  for (double x = std::ceil(x0 / x_step) * x_step; x <= x1 + x_step * 1e-6; x += x_step) {
    svg += "<line x1=\"" + fmt(px(x)) + "\" x2=\"" + fmt(px(x)) + "\" y1=\"" + fmt(top + plot_h) +
           "\" y2=\"" + fmt(top + plot_h + 4) + "\" stroke=\"#888\"/>\n<text x=\"" + fmt(px(x)) +
           "\" y=\"" + fmt(top + plot_h + 16) + "\" text-anchor=\"middle\" font-size=\"11\" "
           "font-family=\"sans-serif\">" + fmt(x) + "</text>\n";
  }
  svg += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(top) + "\" width=\"" + fmt(plot_w) + "\" height=\"" +
         fmt(plot_h) + "\" fill=\"none\" stroke=\"#888\"/>\n<text x=\"" + fmt(left + plot_w / 2) +
         "\" y=\"" + fmt(height - 6.0) + "\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555\" "
         "font-family=\"sans-serif\">" + html_escape(x_label) + "</text>\n";
  // Lines (a single point gets a dot), then the legend.
  double legend_x = left + 8;
  for (const ChartSeries& s : series) {
    std::string points;
    int n = 0;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      points += fmt(px(x), "%.2f") + "," + fmt(py(y), "%.2f") + " ";
      ++n;
    }
    if (n == 0) continue;
    for (size_t i = 0; i < s.points.size(); ++i) {
      const auto [x, y] = s.points[i];
      const double e = error_of(s, i);
      if (!std::isfinite(x) || !std::isfinite(y) || e <= 0) continue;
      svg += "<line class=\"error-bar\" x1=\"" + fmt(px(x), "%.2f") + "\" x2=\"" + fmt(px(x), "%.2f") + "\" y1=\"" +
             fmt(py(y - e), "%.2f") + "\" y2=\"" + fmt(py(y + e), "%.2f") + "\" stroke=\"" + s.color + "\"/>\n";
    }
    if (n == 1) {
      const size_t comma = points.find(',');
      svg += "<circle cx=\"" + points.substr(0, comma) + "\" cy=\"" +
             points.substr(comma + 1, points.size() - comma - 2) + "\" r=\"3\" fill=\"" + s.color + "\"/>\n";
    } else {
      svg += "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"" + s.color + "\"" +
             (s.dashed ? " stroke-dasharray=\"6 3\"" : "") + " points=\"" + points + "\"/>\n";
    }
    svg += "<rect x=\"" + fmt(legend_x) + "\" y=\"" + fmt(top + 6) + "\" width=\"10\" height=\"10\" fill=\"" +
           s.color + "\"/>\n<text x=\"" + fmt(legend_x + 14) + "\" y=\"" + fmt(top + 15) +
           "\" font-size=\"11\" font-family=\"sans-serif\">" + html_escape(s.label) + "</text>\n";
    legend_x += 24 + 7 * double(s.label.size());
  }
  return svg + "</svg>";
}

std::string render_report(const std::string& run_dir, int samples_per_iteration, const std::vector<ReportArm>& arms) {
  check(std::filesystem::is_directory(run_dir), run_dir, ": not a run folder");
  const int64_t iterations = count_iterations(run_dir);
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<title>spinlm report</title>\n";
  html += kStyle;
  html += "\n</head>\n<body>\n<h1>SPIN run: " +
          html_escape(std::filesystem::absolute(run_dir).lexically_normal().string()) + "</h1>\n";
  html += status_section(run_dir);
  html += evaluation_section(run_dir, iterations, arms);
  html += paired_section(run_dir, iterations);
  html += curves_section(run_dir, iterations);
  html += samples_section(run_dir, iterations, samples_per_iteration);
  return html + "</body>\n</html>\n";
}

std::string write_report(const std::string& run_dir, int samples_per_iteration, const std::vector<ReportArm>& arms) {
  const std::string path = run_dir + "/report.html";
  write_file_atomic(path, render_report(run_dir, samples_per_iteration, arms));
  return path;
}

}  // namespace spinlm
