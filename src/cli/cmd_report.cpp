// `spinlm report RUN`: writes RUN/report.html (see pipeline/report.h).
#include <cstdio>
#include <filesystem>

#include "core/error.h"

#include "cli/command.h"
#include "pipeline/report.h"

namespace spinlm {
namespace {

struct ReportOptions {
  std::string run_dir;
  int samples = 4;
  std::vector<std::string> arms;  // LABEL=DIR
};

CommandAction setup_report(CLI::App& app) {
  auto options = std::make_shared<ReportOptions>();
  app.add_option("run", options->run_dir, "run folder written by `spinlm run` or `spinlm demo`")->required();
  app.add_option("--samples", options->samples, "sample pairs shown per iteration")->check(CLI::Range(0, 1000));
  app.add_option("--arm", options->arms,
                 "LABEL=RUN: another run folder from the same SFT model, drawn next to this run's curves "
                 "(repeatable)");
  return [options] {
    std::vector<ReportArm> arms;
    for (const std::string& arm : options->arms) {
      const size_t equals = arm.find('=');
      check(equals != std::string::npos && equals > 0 && equals + 1 < arm.size(), "--arm must be LABEL=RUN_FOLDER, got \"",
            arm, "\"");
      arms.push_back({arm.substr(0, equals), arm.substr(equals + 1)});
      check(std::filesystem::is_directory(arms.back().run_dir), "--arm ", arm, ": ", arms.back().run_dir,
            " is not a folder");
    }
    const std::string path = write_report(options->run_dir, options->samples, arms);
    std::printf("%s\n", path.c_str());
  };
}

const bool registered = register_command("report", "write RUN/report.html: curves, evaluation, sample pairs",
                                         setup_report);

}  // namespace
}  // namespace spinlm
