// `spinlm sft`: supervised fine-tuning on assistant tokens (train/sft_trainer.h).
#include <cstdio>

#include "cli/command.h"
#include "core/stop_signal.h"
#include "dist/dist_context.h"  // [dist] several processes (docs/distributed.md)
#include "train/sft_trainer.h"
#include "train/train_device.h"

namespace spinlm {

void add_train_loop_options(CLI::App& app, TrainLoopOptions& loop);  // cmd_train.cpp

namespace {

CommandAction setup_sft(CLI::App& app) {
  auto options = std::make_shared<SftTrainOptions>();
  add_train_loop_options(app, options->loop);
  app.add_option("--data", options->data_files, "conversations JSONL file(s), comma-separated")
      ->required()
      ->delimiter(',');
  app.add_option("--max-length", options->max_length, "sequences keep their first N tokens");
  app.add_option("--eval-data", options->eval_data, "conversations scored at each epoch end");
  app.add_option("--chunk-positions", options->chunk_positions, "positions per LM-head chunk");
  return [options] {
    install_stop_signals();  // SIGTERM/SIGINT/SIGUSR1: save at the next safe point, then stop
    // A bad --device/--dtype fails here, before any work.
    const TrainDevice device = resolve_train_device(options->loop);
    options->loop.parallel = dist_from_environment(device.device.str());  // [dist] null for one process
    SftTrainResult result = train_sft(*options);
    std::printf("trained %lld steps; model in %s\n", static_cast<long long>(result.steps),
                options->loop.output_dir.c_str());
  };
}

const bool registered = register_command("sft", "supervised fine-tuning on assistant tokens", setup_sft);

}  // namespace
}  // namespace spinlm
