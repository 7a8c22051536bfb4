// `spinlm train`: SPIN training on pairs (train/spin_trainer.h).
#include <cstdio>

#include "cli/command.h"
#include "core/stop_signal.h"
#include "dist/dist_context.h"  // [dist] several processes (docs/distributed.md)
#include "model/device_choice.h"
#include "train/spin_trainer.h"
#include "train/train_device.h"

namespace spinlm {
namespace {

// LoRA (model/lora.h), TRL's option names.
void add_lora_options(CLI::App& app, LoraOptions& lora) {
  app.add_option("--lora-r", lora.r, "LoRA rank: train an adapter of this rank on the frozen model (0: off)")
      ->capture_default_str();
  app.add_option("--lora-alpha", lora.alpha, "LoRA alpha (scaling alpha / r)")->capture_default_str();
  app.add_option("--lora-dropout", lora.dropout, "dropout on the adapters' input")->capture_default_str();
  app.add_option_function<std::string>(
         "--lora-target-modules", [&lora](const std::string& text) { lora.targets = LoraTargets::parse(text); },
         "modules to adapt: NAME,NAME (exact or dotted suffix), a regex (full match), or all-linear "
         "(default q_proj,v_proj)");
  app.add_flag("--use-rslora", lora.use_rslora, "rank-stabilised scaling alpha / sqrt(r)");
}

// Options shared with `spinlm sft`.
void add_loop_options(CLI::App& app, TrainLoopOptions& loop) {
  app.add_option("--model", loop.model_dir, "input HF model folder")->required();
  app.add_option("--output", loop.output_dir, "output folder")->required();
  app.add_option("--learning-rate", loop.learning_rate, "peak learning rate");
  app.add_option("--optimizer", loop.optimizer.kind, "rmsprop | adamw")->check(CLI::IsMember({"rmsprop", "adamw"}));
  app.add_option("--weight-decay", loop.optimizer.weight_decay, "weight decay");
  app.add_option("--lr-scheduler", loop.lr_scheduler, "linear | cosine | constant")
      ->check(CLI::IsMember({"linear", "cosine", "constant"}));
  app.add_option("--warmup-ratio", loop.warmup_ratio, "fraction of steps for linear warmup");
  app.add_option("--epochs", loop.epochs, "epochs");
  app.add_option("--batch-size", loop.batch_size, "examples per optimizer step");
  app.add_option("--micro-batch-size", loop.micro_batch_size, "examples per forward/backward");
  app.add_option("--max-tokens-per-micro-batch", loop.max_tokens_per_micro_batch,
                 "form micro-batches by packed tokens instead: examples up to this many tokens per "
                 "forward/backward (default: --micro-batch-size examples each)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-grad-norm", loop.max_grad_norm, "global gradient-norm clip (0: none)");
  app.add_option("--logging-steps", loop.logging_steps, "steps per metrics.jsonl row");
  app.add_option("--save-steps", loop.save_steps, "also checkpoint every N steps (0: epoch ends only)");
  app.add_option("--seed", loop.seed, "seed of the data order");
  app.add_flag("--resume", loop.resume, "continue from the last checkpoint in --output");
  app.add_option("--device", loop.device, kDeviceHelp);
  app.add_option("--dtype", loop.dtype, kTrainingDtypeHelp);
  app.add_option("--optimizer-state-dtype", loop.optimizer.state_dtype,
                 "fp32 (with fp32 master weights for bf16 models) or bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_flag("--gradient-checkpointing", loop.gradient_checkpointing,
               "recompute each decoder layer in the backward pass (less memory, one more forward)");
  add_lora_options(app, loop.lora);
  app.add_option("--adapter", loop.adapters,
                 "PEFT LoRA adapter folder merged into --model before training (repeat: merged in order)");
}

CommandAction setup_train(CLI::App& app) {
  auto options = std::make_shared<SpinTrainOptions>();
  options->loop.learning_rate = 5e-7;
  add_loop_options(app, options->loop);
  app.add_option("--data", options->data_files, "pairs JSONL file(s), comma-separated")
      ->required()
      ->delimiter(',');
  app.add_option("--loss", options->loss, "logistic | hinge | exponential | ipo")
      ->check(CLI::IsMember({"logistic", "sigmoid", "hinge", "exponential", "ipo"}));
  app.add_option("--beta", options->beta, "beta (the paper's lambda)");
  app.add_option("--max-length", options->truncation.max_length, "max prompt + response tokens");
  app.add_option("--max-prompt-length", options->truncation.max_prompt_length, "max prompt tokens when truncating");
  app.add_option("--sft-weight", options->sft_weight, "weight of the real response's NLL");
  app.add_option("--reference-mix", options->reference_mix, "BASE_DIR:ALPHA reference alpha*base + (1-alpha)*p_t");
  app.add_option("--eval-data", options->eval_data, "pairs scored at each epoch end");
  app.add_option("--chunk-positions", options->chunk_positions, "positions per LM-head chunk");
  return [options] {
    install_stop_signals();  // SIGTERM/SIGINT/SIGUSR1: save at the next safe point, then stop
    // A bad --device/--dtype fails here, before any work.
    const TrainDevice device = resolve_train_device(options->loop);
    options->loop.parallel = dist_from_environment(device.device.str());  // [dist] null for one process
    SpinTrainResult result = train_spin(*options);
    std::printf("trained %lld steps; model in %s\n", static_cast<long long>(result.steps),
                result.output_dir.c_str());
  };
}

const bool registered = register_command("train", "SPIN training on real/generated pairs", setup_train);

}  // namespace

// Declared for cmd_sft.cpp (same binary).
void add_train_loop_options(CLI::App& app, TrainLoopOptions& loop) { add_loop_options(app, loop); }

}  // namespace spinlm
