// `spinlm report`: the page holds every section with escaped text and renders in headless
// Chromium to a non-blank screenshot without console errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "io/jsonl.h"
#include "pipeline/report.h"
#include "testkit.h"

namespace spinlm {
namespace {

using testkit::shell_quote;

// A run folder as `spinlm run` leaves it: two iterations with metrics, pairs and evaluations,
// the SFT evaluation and one control iteration.
std::string make_fake_run() {
  const std::string dir = testkit::make_temp_dir("report");
  write_file_atomic(dir + "/state.json", R"({"steps":["iter_0/generate","iter_0/train"],"results":{},"finished":true})");
  write_file_atomic(dir + "/recipe.json", R"({"model_name_or_path":"sft <model>"})");
  write_file_atomic(dir + "/sft_eval.json", R"({"exact_match":0.25,"exact_match_stderr":0.014,"heldout_nll":0.91})");
  for (int t = 0; t < 2; ++t) {
    const std::string it = dir + "/iter_" + std::to_string(t);
    make_directories(it);
    std::vector<json> metrics;
    for (int step = 10; step <= 60; step += 10) {
      const double p = step / 60.0;
      metrics.push_back({{"step", step}, {"loss", 0.69 - 0.3 * p + 0.05 * t},
                         {"rewards/real", 0.1 * p}, {"rewards/generated", -0.2 * p},
                         {"rewards/accuracies", 0.5 + 0.4 * p}, {"rewards/margins", 0.3 * p},
                         {"learning_rate", 1e-5}});
    }
    metrics.push_back({{"split", "eval"}, {"step", 60}, {"loss", 5.0}});  // not a training row
    write_jsonl_atomic(it + "/metrics.jsonl", metrics);
    write_jsonl_atomic(it + "/pairs.jsonl",
                       {json{{"real", {{{"role", "user"}, {"content", "Is 2<3 & 4>1?"}},
                                       {{"role", "assistant"}, {"content", "yes <script>alert(1)</script>"}}}},
                             {"generated", {{{"role", "user"}, {"content", "Is 2<3 & 4>1?"}},
                                            {{"role", "assistant"}, {"content", "\"no\" 'maybe'"}}}}}});
    write_file_atomic(it + "/eval.json", json{{"exact_match", 0.27 + 0.01 * t}, {"exact_match_stderr", 0.014},
                                              {"heldout_reward_accuracy", 0.6 - 0.05 * t}}.dump());
  }
  make_directories(dir + "/control/iter_0");
  write_file_atomic(dir + "/control/iter_0/eval.json", R"({"exact_match":0.26})");
  return dir;
}

// The same run with the continued-SFT control beside both iterations: its SFT loss per step
// and its evaluations, with lm-eval task columns in every eval file.
std::string make_fake_run_with_control() {
  const std::string dir = make_fake_run();
  const auto with_task = [](json eval, double acc) {
    eval["arc_challenge/acc_norm"] = acc;
    eval["arc_challenge/acc_norm_stderr"] = 0.05;
    return eval;
  };
  write_file_atomic(dir + "/sft_eval.json",
                    with_task(json::parse(read_file(dir + "/sft_eval.json")), 0.30).dump());
  for (int t = 0; t < 2; ++t) {
    const std::string it = dir + "/iter_" + std::to_string(t) + "/eval.json";
    write_file_atomic(it, with_task(json::parse(read_file(it)), 0.31 + 0.01 * t).dump());
    const std::string control = dir + "/control/iter_" + std::to_string(t);
    make_directories(control);
    std::vector<json> metrics;
    for (int step = 10; step <= 60; step += 10) metrics.push_back({{"step", step}, {"loss", 1.5 - 0.01 * step - 0.2 * t}});
    write_jsonl_atomic(control + "/metrics.jsonl", metrics);
    write_file_atomic(control + "/eval.json",
                      with_task(json{{"exact_match", 0.26 + 0.02 * t}, {"heldout_nll", 0.85 - 0.02 * t}}, 0.29).dump());
  }
  return dir;
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = 0; (pos = text.find(needle, pos)) != std::string::npos; ++pos) ++n;
  return n;
}

TEST(Report, HtmlEscapes) {
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(html_escape("plain"), "plain");
}

TEST(Report, ChartHasOneLinePerSeriesInsideThePlot) {
  const std::string svg = svg_line_chart(
      "loss", {{"iter 0", "#f00", {{0, 1}, {1, 2}, {2, 0.5}}}, {"iter 1", "#00f", {{3, 1}, {4, NAN}, {5, 1.5}}}});
  size_t lines = 0;
  for (size_t pos = 0; (pos = svg.find("<polyline", pos)) != std::string::npos; ++pos) ++lines;
  EXPECT_EQ(lines, 2u);
  EXPECT_NE(svg.find("iter 1"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_NE(svg_line_chart("empty", {}).find("no data"), std::string::npos);
}

TEST(Report, PageHasEverySectionEscaped) {
  const std::string dir = make_fake_run();
  const auto result = testkit::run_spinlm("report " + shell_quote(dir));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string html = read_file(dir + "/report.html");
  for (const char* needle : {"Training curves", "rewards/margins", "Evaluation", "SFT (p_0)", "SPIN iter 1",
                             "control (SFT) 0", "Sample pairs", "&lt;script&gt;alert(1)&lt;/script&gt;",
                             "Is 2&lt;3 &amp; 4&gt;1?", "&quot;no&quot; &#39;maybe&#39;", "0.28",
                             "sft &lt;model&gt;"})
    EXPECT_NE(html.find(needle), std::string::npos) << needle;
  EXPECT_EQ(html.find("<script"), std::string::npos);  // no scripts at all, no network
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  // Five training charts, two iterations each, no control chart (the control has no
  // metrics), and one chart across iterations per measurement (exact_match, heldout_nll,
  // heldout_reward_accuracy).
  EXPECT_EQ(count_of(html, "<svg"), 5u + 3u);
  EXPECT_EQ(html.find("control: SFT loss"), std::string::npos);
}

// With the control: its SFT loss gets a chart (one dashed line per control iteration), every
// measurement's chart across iterations has a control line beside SPIN's, and the table has a
// row per control iteration with the task column.
TEST(Report, ControlCurvesAndColumns) {
  const std::string dir = make_fake_run_with_control();
  const std::string html = render_report(dir);
  for (const char* needle : {"aria-label=\"control: SFT loss\"", "control (SFT) 0", "control (SFT) 1",
                             "<th title=\"lm-evaluation-harness task\">arc_challenge/acc_norm</th>",
                             "aria-label=\"arc_challenge/acc_norm\""})
    EXPECT_NE(html.find(needle), std::string::npos) << needle;
  const std::string control_line = std::string("stroke=\"") + kControlColor + "\" stroke-dasharray";
  // Control loss: 2 lines; across iterations: exact_match, arc_challenge/acc_norm and
  // heldout_nll have control values after SFT (heldout_reward_accuracy has none).
  EXPECT_EQ(count_of(html, control_line), 2u + 3u) << html;
  // The control's exact_match line goes SFT (x = 0) -> control 0 -> control 1: 3 points.
  const size_t chart = html.find("aria-label=\"exact_match\"");
  ASSERT_NE(chart, std::string::npos);
  const size_t line = html.find(control_line, chart);
  ASSERT_NE(line, std::string::npos);
  const size_t points = html.find("points=\"", line) + 8;
  const std::string coordinates = html.substr(points, html.find('"', points) - points);
  EXPECT_EQ(count_of(coordinates, ","), 3u) << coordinates;
  // Control rows come with a task cell and its standard error.
  const size_t row = html.find("control (SFT) 1");
  EXPECT_NE(html.substr(row, html.find("</tr>", row) - row).find("0.29 <span class=\"se\">&plusmn; 0.05"),
            std::string::npos);
}

TEST(Report, MissingRunFolderIsAnError) {
  const auto result = testkit::run_spinlm("report /nonexistent/run");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("error: /nonexistent/run: not a run folder"), std::string::npos) << result.output;
}

TEST(Report, RendersInHeadlessChromium) {
  ASSERT_EQ(std::system("command -v chromium >/dev/null 2>&1"), 0)
      << "chromium is not installed (scripts/install-deps.sh installs it)";
  const std::string dir = make_fake_run();
  ASSERT_EQ(testkit::run_spinlm("report " + shell_quote(dir)).exit_code, 0);
  const std::string png = dir + "/report.png";
  const std::string profile = testkit::make_temp_dir("chromium-profile");
  const auto shot = testkit::run_command(
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--enable-logging=stderr --v=0 --user-data-dir=" + shell_quote(profile) +
      " --screenshot=" + shell_quote(png) + " --window-size=1200,2000 " +
      shell_quote("file://" + dir + "/report.html") + " 2>&1");
  ASSERT_TRUE(file_exists(png)) << shot.output;
  EXPECT_EQ(shot.output.find("Uncaught"), std::string::npos) << shot.output;
  EXPECT_EQ(shot.output.find("CONSOLE"), std::string::npos) << shot.output;
  const auto stats = testkit::run_python_reference("png_nonwhite.py", shell_quote(png));
  ASSERT_EQ(stats.exit_code, 0) << stats.output;
  std::istringstream in(stats.output);
  long width = 0, height = 0, nonwhite = 0, coloured = 0;
  in >> width >> height >> nonwhite >> coloured;
  EXPECT_EQ(width, 1200);
  EXPECT_EQ(height, 2000);
  EXPECT_GT(nonwhite, 20000) << stats.output;  // text, tables, axes
  EXPECT_GT(coloured, 500) << stats.output;    // the coloured curves were drawn
}

// Chromium draws the control: pixels of the control's colour appear in the screenshot of a
// run with the control and none in one without it.
TEST(Report, ChromiumDrawsTheControlCurves) {
  ASSERT_EQ(std::system("command -v chromium >/dev/null 2>&1"), 0)
      << "chromium is not installed (scripts/install-deps.sh installs it)";
  std::vector<long> counts;
  const std::string without = make_fake_run();
  std::filesystem::remove_all(without + "/control");
  for (const std::string& dir : {without, make_fake_run_with_control()}) {
    ASSERT_EQ(testkit::run_spinlm("report " + shell_quote(dir)).exit_code, 0);
    const std::string png = dir + "/report.png";
    const auto shot = testkit::run_command(
        "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
        "--disable-background-networking --disable-component-update --disable-sync "
        "--enable-logging=stderr --v=0 --user-data-dir=" + shell_quote(testkit::make_temp_dir("chromium-profile")) +
        " --screenshot=" + shell_quote(png) + " --window-size=1200,2100 " +
        shell_quote("file://" + dir + "/report.html") + " 2>&1");
    ASSERT_TRUE(file_exists(png)) << shot.output;
    EXPECT_EQ(shot.output.find("Uncaught"), std::string::npos) << shot.output;
    EXPECT_EQ(shot.output.find("CONSOLE"), std::string::npos) << shot.output;
    const auto count = testkit::run_python_reference("png_colour_count.py", shell_quote(png) + " " +
                                                     std::string(kControlColor + 1));
    ASSERT_EQ(count.exit_code, 0) << count.output;
    counts.push_back(std::stol(count.output));
  }
  EXPECT_EQ(counts[0], 0) << "control colour drawn without a control";
  EXPECT_GT(counts[1], 300) << "control curves not drawn";
}

}  // namespace
}  // namespace spinlm
