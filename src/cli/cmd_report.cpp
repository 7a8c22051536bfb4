// `spinlm report RUN`: writes RUN/report.html (see pipeline/report.h).
#include <cstdio>

#include "cli/command.h"
#include "pipeline/report.h"

namespace spinlm {
namespace {

struct ReportOptions {
  std::string run_dir;
  int samples = 4;
};

CommandAction setup_report(CLI::App& app) {
  auto options = std::make_shared<ReportOptions>();
  app.add_option("run", options->run_dir, "run folder written by `spinlm run` or `spinlm demo`")->required();
  app.add_option("--samples", options->samples, "sample pairs shown per iteration")->check(CLI::Range(0, 1000));
  return [options] {
    const std::string path = write_report(options->run_dir, options->samples);
    std::printf("%s\n", path.c_str());
  };
}

const bool registered = register_command("report", "write RUN/report.html: curves, evaluation, sample pairs",
                                         setup_report);

}  // namespace
}  // namespace spinlm
