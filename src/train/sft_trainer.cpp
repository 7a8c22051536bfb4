#include "train/sft_trainer.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "model/hf_model.h"
#include "train/spin_trainer.h"
#include "train/train_device.h"

namespace spinlm {

SftScore sft_score(const Transformer& model, const std::vector<LabeledSequence>& sequences,
                   int64_t chunk_positions) {
  const PackedBatch batch = pack_sequences(sequences);  // one block per conversation (data/packing.h)
  const at::Tensor logps = model.packed_logprobs(batch.tokens, chunk_positions);  // [scored tokens]
  SftScore score;
  score.nll_sum = -logps.sum();
  score.scored_tokens = logps.numel();
  score.tokens = batch.stream_tokens;
  return score;
}

double evaluate_sft(const Transformer& model, const std::vector<SftExample>& examples,
                    const MicroBatching& micro_batching, int64_t chunk_positions) {
  at::NoGradGuard no_grad;
  double nll = 0.0;
  int64_t tokens = 0;
  std::vector<int64_t> all(examples.size()), lengths(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    all[i] = static_cast<int64_t>(i);
    lengths[i] = static_cast<int64_t>(examples[i].sequence.ids.size());
  }
  for (const auto& micro : split_micro_batches(all, lengths, lengths, micro_batching)) {
    std::vector<LabeledSequence> seqs;
    for (int64_t i : micro) seqs.push_back(examples[i].sequence);
    SftScore s = sft_score(model, seqs, chunk_positions);
    nll += s.nll_sum.to(at::kDouble).item<double>();
    tokens += s.scored_tokens;
  }
  return tokens > 0 ? nll / static_cast<double>(tokens) : 0.0;
}

namespace {

int64_t scored_count(const LabeledSequence& seq) {
  int64_t n = 0;
  // A token is scored when a position predicts it: every scored token but a first one.
  for (size_t t = 1; t < seq.scored.size(); ++t) n += seq.scored[t];
  return n;
}

}  // namespace

SftTrainResult train_sft(const SftTrainOptions& options) {
  check(!options.data_files.empty(), "no training data (--data)");
  const std::string& model_dir = options.loop.model_dir;
  ModelText text = load_model_text(model_dir);
  std::vector<SftExample> examples =
      load_sft_examples(options.data_files, text.codec.get(), text.stop, options.max_length, text.vocab_size);
  std::vector<SftExample> eval_examples;
  if (!options.eval_data.empty()) {
    eval_examples = load_sft_examples({options.eval_data}, text.codec.get(), text.stop, options.max_length,
                                      text.vocab_size);
  }
  log_info("sft: ", examples.size(), " examples from ", options.data_files.size(), " file(s)");

  Transformer model = load_training_model(model_dir, options.loop);  // --device, --dtype (train_device.h)
  TrainLoopHooks hooks;
  hooks.num_examples = static_cast<int64_t>(examples.size());
  std::vector<int64_t> scored;
  for (const SftExample& e : examples) {
    hooks.lengths.push_back(static_cast<int64_t>(e.sequence.ids.size()));
    hooks.tokens.push_back(static_cast<int64_t>(e.sequence.ids.size()));
    scored.push_back(scored_count(e.sequence));
  }
  int64_t total_ids = 0;
  for (int64_t len : hooks.lengths) total_ids += len;
  hooks.fingerprint = {{"kind", "sft"}, {"max_length", options.max_length}, {"data_tokens", total_ids}};
  hooks.micro_step = [&](const std::vector<int64_t>& micro, const std::vector<int64_t>& batch) {
    int64_t batch_tokens = 0;
    for (int64_t i : batch) batch_tokens += scored[i];
    const double normaliser = static_cast<double>(std::max<int64_t>(1, batch_tokens));
    std::vector<LabeledSequence> seqs;
    for (int64_t i : micro) seqs.push_back(examples[i].sequence);
    SftScore s = sft_score(model, seqs, options.chunk_positions);
    at::Tensor loss = s.nll_sum / normaliser;
    loss.backward();
    return MetricMap{{"loss", loss.detach().to(at::kDouble).item<double>()},
                     {"tokens", static_cast<double>(s.tokens)}};
  };
  if (!eval_examples.empty()) {
    hooks.evaluate = [&] {
      return MetricMap{{"loss", evaluate_sft(model, eval_examples, micro_batching(options.loop),
                                             options.chunk_positions)}};
    };
  }
  TrainLoopResult loop = run_train_loop(model, options.loop, hooks);
  return SftTrainResult{loop.steps, loop.last_logged, loop.last_eval};
}

}  // namespace spinlm
