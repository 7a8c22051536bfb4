// The embedded default: every size and hyperparameter of `spinlm demo` is here.
#include "pipeline/demo.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "io/jsonl.h"
#include "data/arith_task.h"
#include "model/hf_model.h"
#include "text/byte_vocab.h"
#include "train/sft_trainer.h"

namespace spinlm {
namespace {

struct DemoPlan {
  ArithSplitSizes splits;
  // The model: a Llama with the byte vocabulary.
  int64_t hidden = 128, intermediate = 352, layers = 4, heads = 4;
  // SFT from random weights: 4000 problems x 5 epochs = 625 steps of 32 (the prototype
  // reached 25% greedy exact match after 900 such steps and was still improving).
  int64_t sft_epochs = 5, sft_batch = 32;
  double sft_lr = 2e-3;
  // --full's plateaued SFT: the same schedule stretched over this many epochs, scored on the
  // validation split at every epoch end; the epoch of least validation loss is kept.
  int64_t plateau_epochs = 15;
  // SPIN: prompts answered per iteration, held-out pairs, test problems. Sized for the
  // 15-minute budget: measured here, one SFT step of 32 at this size costs about 0.5 s of
  // one core, a SPIN step about twice that.
  int64_t spin_prompts = 600, heldout = 200, test = 500;
};

DemoPlan plan_for(bool quick) {
  DemoPlan p;
  if (quick) {
    p.splits = {800, 64, 100};
    p.hidden = 64, p.intermediate = 176, p.layers = 2, p.heads = 2;
    p.sft_epochs = 3;
    p.plateau_epochs = 6;
    p.spin_prompts = 64, p.heldout = 32, p.test = 100;
  } else {
    p.splits = {4000, 500, 1000};
  }
  return p;
}

std::string data_path(const DemoOptions& o, const char* split) { return o.out_dir + "/data/" + split + ".jsonl"; }

void write_data(const DemoOptions& o, const DemoPlan& plan) {
  if (file_exists(data_path(o, "test"))) return;  // deterministic: written once
  const ArithSplits splits = make_arith_splits(o.seed, plan.splits);
  make_directories(o.out_dir + "/data");
  write_arith_jsonl(data_path(o, "train"), splits.train);
  write_arith_jsonl(data_path(o, "validation"), splits.validation);
  write_arith_jsonl(data_path(o, "test"), splits.test);  // last: its presence means all are there
  log_info("demo: wrote ", splits.train.size(), "/", splits.validation.size(), "/", splits.test.size(),
           " train/validation/test problems to ", o.out_dir, "/data");
}

// A random-weight Llama with the byte tokenizer (what `spinlm init-model --vocab byte` writes).
void init_model(const std::string& dir, const DemoPlan& plan, uint64_t seed) {
  if (file_exists(dir + "/model.safetensors")) return;
  const std::string temp = dir + ".tmp";
  std::filesystem::remove_all(temp);
  make_directories(temp);
  write_byte_tokenizer(temp);
  const nlohmann::json config = {
      {"model_type", "llama"}, {"architectures", {"LlamaForCausalLM"}}, {"hidden_size", plan.hidden},
      {"intermediate_size", plan.intermediate}, {"num_hidden_layers", plan.layers},
      {"num_attention_heads", plan.heads}, {"num_key_value_heads", plan.heads},
      {"head_dim", plan.hidden / plan.heads}, {"max_position_embeddings", 256}, {"rope_theta", 10000.0},
      {"rms_norm_eps", 1e-6}, {"tie_word_embeddings", false}, {"hidden_act", "silu"},
      {"initializer_range", 0.02}, {"attention_bias", false}, {"mlp_bias", false},
      {"vocab_size", byte_vocab_size()}, {"bos_token_id", kByteBosId}, {"eos_token_id", kByteEosId},
      {"pad_token_id", kBytePadId}};
  Transformer model(ModelConfig::from_json(config, "demo model"));
  model.init_random(seed, 0.02);
  save_model(model, temp, temp);
  std::filesystem::rename(temp, dir);  // whole folder or nothing
}

void sft(const DemoOptions& o, const DemoPlan& plan, const std::string& out, int64_t epochs, bool score_validation) {
  SftTrainOptions s;
  s.loop.model_dir = o.out_dir + "/init";
  s.loop.output_dir = out;
  s.loop.learning_rate = plan.sft_lr;
  s.loop.optimizer.kind = "adamw";
  s.loop.lr_scheduler = "cosine";
  s.loop.warmup_ratio = 0.05;
  s.loop.epochs = epochs;
  s.loop.batch_size = plan.sft_batch;
  s.loop.micro_batch_size = plan.sft_batch;
  s.loop.logging_steps = 25;
  s.loop.seed = o.seed;
  s.loop.resume = true;
  s.data_files = {data_path(o, "train")};
  if (score_validation) s.eval_data = data_path(o, "validation");
  s.max_length = 192;
  log_info("demo: SFT of the tiny model, ", epochs, " epochs (", out, ")");
  train_sft(s);
}

// The epoch checkpoint of least validation loss (metrics.jsonl's eval_loss rows): the SFT
// model at its plateau, chosen on the validation split only.
std::string plateau_checkpoint(const std::string& sft_dir) {
  double best = INFINITY;
  int64_t best_epoch = 0;
  for (const JsonlRow& row : read_jsonl(sft_dir + "/metrics.jsonl")) {
    if (!row.value.contains("eval_loss")) continue;
    const double loss = row.value["eval_loss"].get<double>();
    if (loss < best) best = loss, best_epoch = std::llround(row.value.at("epoch").get<double>());
  }
  check(best_epoch > 0, sft_dir, "/metrics.jsonl: no eval_loss rows (the plateau SFT scores the validation split)");
  log_info("demo: plateaued SFT model: epoch ", best_epoch, " (validation loss ", best, ")");
  return sft_dir + "/epoch-" + std::to_string(best_epoch);
}

}  // namespace

Recipe demo_recipe(const DemoOptions& o) {
  const DemoPlan plan = plan_for(o.quick);
  Recipe r;
  r.source = o.quick ? "demo --quick" : "demo";
  r.model_name_or_path = o.out_dir + "/sft";
  r.output_dir = o.out_dir + "/run";
  r.seed = o.seed;
  r.data.train = data_path(o, "train");
  r.data.heldout = data_path(o, "validation");
  r.data.test = data_path(o, "test");
  r.data.max_train_samples = plan.spin_prompts;
  r.data.max_heldout_samples = plan.heldout;
  r.data.max_test_samples = plan.test;
  r.generation.max_new_tokens = 48;  // answers are at most about 30 bytes
  r.generation.temperature = 1.0;
  r.generation.batch_size = 64;
  r.evaluation.max_new_tokens = 48;
  // Choices read the validation split only: the model the demo selects is the best greedy
  // exact match on validation problems; the test problems give only the reported numbers.
  // (The recipe has no stop rule: the demo runs its three iterations.)
  r.evaluation.heldout_exact_match = true;
  TrainSettings t;
  // The prototype's finding (demo-prototype.md): lr 1e-4 collapses, 1e-5 is stable.
  t.learning_rate = 1e-5;
  t.beta = 0.1;
  t.loss = "logistic";
  t.num_train_epochs = 2;
  t.per_device_train_batch_size = 32;
  t.gradient_accumulation_steps = 1;
  t.max_length = 192;
  t.max_prompt_length = 128;
  t.warmup_ratio = 0.1;
  t.lr_scheduler_type = "linear";
  t.optim = "rmsprop";
  t.logging_steps = o.quick ? 1 : 5;
  r.iterations.assign(3, t);
  // uclaml/SPIN: iteration t trains on the pairs of t-1 and t.
  r.iterations[1].mix_previous = r.iterations[2].mix_previous = true;
  r.control.enabled = true;
  // The measurements of the experiment (demo.h): the exact distance to p_data and one sample
  // at temperature 1 on both splits, beside greedy exact match.
  r.evaluation.distribution = true;
  r.evaluation.sample_accuracy = true;
  return r;
}

std::vector<DemoArm> demo_arms(const DemoOptions& o) {
  std::vector<DemoArm> arms;
  DemoArm verified{"SPIN verified", demo_recipe(o), true, {}};
  verified.recipe.source += " (verifier-filtered negatives)";
  verified.recipe.output_dir = o.out_dir + "/run-verified";
  verified.recipe.generation.negatives.reject_verified = true;
  verified.recipe.generation.negatives.verifier = "final_answer";
  verified.recipe.generation.negatives.max_resamples = 4;
  verified.recipe.control.enabled = false;  // the SPIN run's control: same SFT model, data, seeds
  arms.push_back(verified);
  if (!o.full) return arms;
  DemoArm beta1{"SPIN beta 1.0", demo_recipe(o), true, {}};
  beta1.recipe.source += " (beta 1.0)";
  beta1.recipe.output_dir = o.out_dir + "/run-beta1";
  for (TrainSettings& t : beta1.recipe.iterations) t.beta = 1.0;
  beta1.recipe.control.enabled = false;
  arms.push_back(beta1);
  // The paper's setting: SPIN from an SFT model that has stopped improving, with a control of
  // its own (the model differs from the other arms').
  DemoArm plateau{"plateaued SFT", demo_recipe(o), false, {}};
  plateau.recipe.source += " (from the plateaued SFT model)";
  plateau.recipe.model_name_or_path = "";  // the checkpoint plateau_checkpoint picks, once trained
  plateau.recipe.output_dir = o.out_dir + "/run-plateau";
  arms.push_back(plateau);
  return arms;
}

std::string demo_primary_endpoint(const RunSummary& summary) {
  if (summary.vs_control.empty()) return "";
  const size_t t = summary.vs_control.size() - 1;
  const nlohmann::json& v = summary.vs_control[t];
  if (!v.contains("forward_kl")) return "";
  const nlohmann::json& d = v["forward_kl"];
  const double mean = d["mean"].get<double>();
  const double se = d["stderr"].is_number() ? d["stderr"].get<double>() : NAN;
  char text[256];
  std::snprintf(text, sizeof text, "iter %zu - control %zu, test forward KL(p_data || p): %+.4f +- %.4f nats (n %lld)",
                t, t, mean, se, static_cast<long long>(d["n"].get<int64_t>()));
  return text;
}

namespace {

RunSummary run_arm(const Recipe& recipe, const DemoOptions& o) {
  RunOptions run;
  run.run_dir = recipe.output_dir;
  run.resume = file_exists(run.run_dir + "/state.json");
  run.show_progress = o.show_progress;
  return run_spin(recipe, run);
}

}  // namespace

DemoResult run_demo(const DemoOptions& o) {
  const DemoPlan plan = plan_for(o.quick);
  make_directories(o.out_dir);
  write_data(o, plan);
  init_model(o.out_dir + "/init", plan, o.seed);
  sft(o, plan, o.out_dir + "/sft", plan.sft_epochs, false);
  DemoResult result;
  result.spin = run_arm(demo_recipe(o), o);
  const std::string control = demo_recipe(o).output_dir + "/control/";
  for (DemoArm& arm : demo_arms(o)) {
    if (arm.recipe.model_name_or_path.empty()) {
      sft(o, plan, o.out_dir + "/sft-plateau", plan.plateau_epochs, true);
      arm.recipe.model_name_or_path = plateau_checkpoint(o.out_dir + "/sft-plateau");
    }
    run_arm(arm.recipe, o);
    // An arm without a control of its own against the SPIN run's, iteration by iteration.
    if (arm.paired_with_spin_control)
      for (size_t t = 0; t < arm.recipe.iterations.size(); ++t) {
        const std::string it = arm.recipe.output_dir + "/iter_" + std::to_string(t);
        const nlohmann::json paired = compare_with_control(it, control + "iter_" + std::to_string(t));
        if (!paired.empty()) write_file_atomic(it + "/vs_control.json", paired.dump(2) + "\n");
      }
    arm.summary = read_run_summary(arm.recipe.output_dir);
    select_on_validation(arm.summary);
    result.arms.push_back(std::move(arm));
  }
  return result;
}

}  // namespace spinlm
