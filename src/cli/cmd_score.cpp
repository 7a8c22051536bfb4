// `spinlm score`: log-probabilities of token sequences under a model, one JSONL row per
// input row: {"logprobs": [log p(ids[i] | ids[<i]) for i >= 1], "sum": ...}.
#include <cstdio>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/progress.h"
#include "data/packing.h"
#include "io/jsonl.h"
#include "model/device_choice.h"
#include "model/hf_model.h"
#include "model/lora.h"
#include "text/tokenizer.h"

namespace spinlm {
namespace {

struct ScoreOptions {
  std::string model;
  std::string adapter;  // PEFT LoRA adapter folder (empty: none)
  std::string input;
  std::string output;
  int batch_size = 8;
  bool packed = false;  // a padding-free stream per batch (data/packing.h), as training and evaluation score
  bool no_special_tokens = false;
  std::string device = "auto";
  std::string dtype = "auto";
};

// The ids of each input row: "ids" as given, or "text" through the model's tokenizer.
std::vector<std::vector<int64_t>> read_rows(const ScoreOptions& options, int64_t vocab_size) {
  std::optional<Tokenizer> tokenizer;
  std::vector<std::vector<int64_t>> rows;
  JsonlReader reader(options.input);
  json row;
  while (reader.next(row)) {
    std::vector<int64_t> ids;
    if (row.contains("ids")) {
      ids = require_ids(row, "ids", reader.where());
    } else if (row.contains("text")) {
      if (!tokenizer) {
        check(file_exists(options.model + "/tokenizer.json"), reader.where(), ": a \"text\" row needs ",
              options.model, "/tokenizer.json (or give \"ids\")");
        tokenizer = Tokenizer::load(options.model);
      }
      ids = tokenizer->encode(require_string(row, "text", reader.where()), !options.no_special_tokens);
    } else {
      fail(reader.where(), ": expected a field \"ids\" (token ids) or \"text\"");
    }
    check(!ids.empty(), reader.where(), ": the row has no tokens");
    for (int64_t id : ids) {
      check(id >= 0 && id < vocab_size, reader.where(), ": token id ", id, " is outside the vocabulary (size ",
            vocab_size, ")");
    }
    rows.push_back(std::move(ids));
  }
  return rows;
}

void run_score(const ScoreOptions& options) {
  check(options.batch_size > 0, "--batch-size must be positive");
  const at::Device device = choose_device(options.device);
  const at::ScalarType dtype = choose_dtype(options.dtype, device);
  ModelConfig config = load_config(options.model + "/config.json");
  std::vector<std::vector<int64_t>> rows = read_rows(options, config.vocab_size);
  log_info("score: model on ", device.str(), " in ", dtype_option_name(dtype));
  Transformer model = load_model(options.model, device, dtype);
  attach_lora_adapter(model, options.adapter);
  c10::InferenceMode inference;

  std::vector<json> out;
  Progress progress("score", int64_t(rows.size()), "rows");
  for (size_t first = 0; first < rows.size(); first += options.batch_size) {
    size_t last = std::min(rows.size(), first + size_t(options.batch_size));
    std::vector<std::vector<double>> values(last - first);  // per row, log p(ids[t] | ids[<t]) for t >= 1
    if (options.packed) {
      std::vector<LabeledSequence> sequences;
      for (size_t i = first; i < last; ++i) {
        LabeledSequence s;
        s.ids = rows[i];
        s.scored.assign(rows[i].size(), 1);
        s.scored[0] = 0;
        sequences.push_back(std::move(s));
      }
      const PackedBatch batch = pack_sequences(sequences);
      const at::Tensor logprobs = model.packed_logprobs(batch.tokens).to(at::kCPU).to(at::kDouble).contiguous();  // [S]
      const int64_t* owner = batch.score_outputs.data_ptr<int64_t>();
      for (int64_t k = 0; k < logprobs.numel(); ++k) values[size_t(owner[k])].push_back(logprobs.data_ptr<double>()[k]);
    } else {
      int64_t T = 0;
      for (size_t i = first; i < last; ++i) T = std::max<int64_t>(T, rows[i].size());
      // Right-padded batch [B, T].
      at::Tensor ids = at::zeros({int64_t(last - first), T}, at::kLong);
      at::Tensor mask = at::zeros({int64_t(last - first), T}, at::kLong);
      for (size_t i = first; i < last; ++i) {
        int64_t n = rows[i].size();
        ids[i - first].narrow(0, 0, n).copy_(at::tensor(rows[i], at::kLong));
        mask[i - first].narrow(0, 0, n).fill_(1);
      }
      at::Tensor logprobs = model.token_logprobs(ids, mask).to(at::kCPU).to(at::kDouble);  // [B, T]
      auto values_of = logprobs.accessor<double, 2>();
      for (size_t i = first; i < last; ++i)
        for (int64_t t = 1; t < int64_t(rows[i].size()); ++t) values[i - first].push_back(values_of[i - first][t]);
    }
    for (const std::vector<double>& row : values) {
      double sum = 0;
      for (double v : row) sum += v;
      out.push_back({{"logprobs", row}, {"sum", sum}});
    }
    progress.update(int64_t(last));
  }
  progress.finish();
  if (options.output.empty()) {
    for (const json& row : out) std::printf("%s\n", json_line(row).c_str());
  } else {
    write_jsonl_atomic(options.output, out);
  }
}

CommandAction setup_score(CLI::App& app) {
  auto options = std::make_shared<ScoreOptions>();
  app.add_option("--model", options->model, "model folder (config.json, safetensors, tokenizer)")->required();
  app.add_option("--adapter", options->adapter, "PEFT LoRA adapter folder run on top of --model, unmerged");
  app.add_option("--input", options->input,
                 "JSONL, one row per sequence: {\"ids\": [...]} or {\"text\": \"...\"}; text is encoded "
                 "like transformers' tokenizer(text) (add_special_tokens=True, e.g. Llama's BOS)")
      ->required();
  app.add_option("--output", options->output,
                 "JSONL written atomically, one {\"logprobs\": [log p(ids[i] | ids[<i]) for i >= 1], "
                 "\"sum\": ...} per input row (default: standard output)");
  app.add_option("--batch-size", options->batch_size, "rows per forward pass (default 8)");
  app.add_flag("--packed", options->packed,
               "score each batch as one padding-free packed stream, the path training and evaluation take "
               "(on a GPU: causal views through the fused kernels)");
  app.add_flag("--no-special-tokens", options->no_special_tokens,
               "encode \"text\" rows without the tokenizer's special tokens (add_special_tokens=False)");
  app.add_option("--device", options->device, kDeviceHelp);
  app.add_option("--dtype", options->dtype, kInferenceDtypeHelp);
  return [options] { run_score(*options); };
}

const bool registered = register_command("score", "log-probabilities of token sequences under a model", setup_score);

}  // namespace
}  // namespace spinlm
