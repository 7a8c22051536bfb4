// The whole `spinlm generate` job as a library call: read conversations, build each row's
// prompt from its first user turn, generate with the batched engine, write one output row per
// input row in input order, resumably. `spinlm generate` only parses options into
// GenerateOptions; `spinlm run` calls generate_file() in-process.
//
// Output rows (JSONL, input order; keys as nlohmann::json writes them, alphabetically):
//   {"finish_reason": "eos"|"length"|"stop",
//    "generated": [user, {"role":"assistant","content": TEXT}],
//    "generated_ids": [...], "index": i, "prompt_ids": [...],
//    "real": [user, assistant]}          (just [user] when the input row has no answer)
// - index: the row's position among the non-blank lines of the input (0-based), counted
//   before --limit and --shard, so shards of one input merge by index.
// - prompt_ids: exactly the tokens the model was conditioned on (chat template with the
//   generation prompt, or the spin-legacy text with the tokenizer's special tokens).
// - generated_ids: CONTRACT WITH THE TRAINER: every sampled token of the response, in order,
//   INCLUDING the final EOS token when the row finished with "eos" (and including the tokens
//   that spell a stop string when it finished with "stop"). The trainer scores exactly these
//   ids as the response and appends an EOS only when the last id is not an EOS.
// - TEXT: generated_ids decoded with skip_special_tokens, cut before the earliest stop string;
//   with --prompt-format spin-legacy also left-stripped of whitespace, as uclaml/SPIN's
//   generate.py did (`text.replace("</s>", "").lstrip()`).
//
// Sampling options come from GenerateOptions only: generation_config.json's sampling defaults
// (temperature, top_p, ...) are not applied, as uclaml/SPIN's vLLM call (temperature 1,
// top_p 1) did not apply them; only its eos_token_id is read.
//
// Resuming: rows are appended to OUTPUT.partial as they finish (any order) and flushed; a
// rerun of the same command keeps those rows, generates the missing ones, and writes OUTPUT
// in input order. Every row depends only on (seed, model, its prompt), so the final file is
// byte-identical to an uninterrupted run's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/limits.h"
#include "generate/sampler.h"
#include "model/transformer.h"
#include "text/text_codec.h"

namespace spinlm {

struct GenerateOptions {
  std::string model_dir;    // HF folder (model, tokenizer, generation_config.json)
  std::string adapter_dir;  // PEFT LoRA adapter run on top of the model unmerged (empty: none)
  std::string input_path;   // conversation JSONL (any format of data/conversation.h)
  std::string output_path;  // JSONL as above
  std::string device = "auto";  // auto | cpu | cuda | cuda:N (model/device_choice.h)
  std::string dtype = "auto";   // auto (bf16 on a GPU, fp32 on the CPU) | fp32 | bf16 | fp16
  int64_t max_new_tokens = 256;
  SamplingOptions sampling;
  uint64_t seed = 42;
  int64_t batch_size = 32;          // rows decoded together (KV-cache slots)
  int64_t max_batch_tokens = 2048;  // tokens per prefill forward
  std::string prompt_format = "chat";  // chat | spin-legacy
  std::string system;                  // chat only: a system message before the user turn
  std::vector<std::string> stop;       // stop strings
  int64_t limit = kNoLimit;            // only rows with index < limit
  int64_t shard_index = 0;             // only rows with index % shard_count == shard_index
  int64_t shard_count = 1;
  bool skip_bad = false;  // bad rows: warn, count and leave out, instead of an Error
  bool show_progress = true;
  // The device decoding loop on a GPU (EngineOptions::steps_per_sync, cuda_graphs).
  int64_t steps_per_sync = 16;
  bool cuda_graphs = true;
};

struct GenerateSummary {
  int64_t rows_selected = 0;   // rows this run is responsible for (after --limit/--shard)
  int64_t rows_resumed = 0;    // found in OUTPUT.partial
  int64_t rows_generated = 0;  // generated now
  int64_t rows_skipped = 0;    // bad rows left out (--skip-bad)
  int64_t new_tokens = 0;      // tokens sampled now
  double seconds = 0;
  int64_t decode_windows = 0;  // device decoding loop: host reads of sampled tokens (0: host loop)
  int64_t cuda_graphs = 0;     // CUDA graphs the decoding step was captured as (0: none)
};

// Loads the model (on options.device in options.dtype) and tokenizer from options.model_dir and runs the job.
GenerateSummary generate_file(const GenerateOptions& options);

// Runs the job with a model and codec already in memory; options.model_dir is still read for
// generation_config.json (the stop ids, model/stop_tokens.h) when it is not empty.
GenerateSummary generate_file(const Transformer& model, const TextCodec& codec,
                              const GenerateOptions& options);

// "I/N" -> (I, N) with 0 <= I < N; Error naming --shard otherwise.
std::pair<int64_t, int64_t> parse_shard(const std::string& text);

}  // namespace spinlm
