// The batched generation engine: continuous batching over a KV cache with a fixed number of
// slots. Prompts are taken longest first; each slot holds one row; a finished row's slot
// takes the next prompt at once. New prompts are prefilled in chunks (at most
// max_batch_tokens tokens, padding included, per forward), then every generating row advances
// by one token in a single decode forward. Only the last position of each row goes through
// the LM head.
//
// Determinism: row r's token at step s is drawn with counter_uniform(seed, r, s), so a row's
// output depends on the seed, the model and its prompt only, not on batch size, chunking or
// the order rows finish in (up to floating-point differences between batch shapes, which can
// flip a sample only when u falls within ~1e-7 of a boundary of the cumulative distribution).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "generate/sampler.h"
#include "generate/slot_decoder.h"
#include "generate/stop_strings.h"
#include "model/transformer.h"

namespace spinlm {

struct GenerationRequest {
  int64_t row = 0;                  // the key of the row's random stream (e.g. input row index)
  std::vector<int64_t> prompt_ids;  // at least one token
};

enum class FinishReason { kEos, kLength, kStop };
// "eos" | "length" | "stop"
const char* finish_reason_name(FinishReason reason);

struct GenerationResult {
  int64_t request = 0;  // position of the request in the vector given to generate()
  int64_t row = 0;
  // Every sampled token in order, INCLUDING a final EOS when one was sampled and the tokens
  // that spell a stop string.
  std::vector<int64_t> ids;
  // ids decoded by EngineOptions::decode (special tokens skipped), cut before the earliest
  // stop string; empty when no decode function is given.
  std::string text;
  FinishReason finish_reason = FinishReason::kLength;
};

struct EngineOptions {
  SamplingOptions sampling;
  uint64_t seed = 42;
  int64_t max_new_tokens = 256;
  int64_t batch_size = 32;          // KV-cache slots: rows decoded together
  int64_t max_batch_tokens = 2048;  // tokens (padding included) per prefill forward
  std::vector<int64_t> eos_ids;     // sampling one of these ends the row ("eos")
  StopStrings stop_strings;         // needs decode
  // Ids -> text with special tokens skipped; used for stop strings and GenerationResult::text.
  std::function<std::string(const std::vector<int64_t>&)> decode;
  // Positions the model can attend to (prompt + answer); 0: config.max_position_embeddings.
  // A row stops with "length" when it fills the context.
  int64_t context_length = 0;
  // (issue 9) The device decoding loop (generate/slot_decoder.h): every slot steps on the
  // device for up to steps_per_sync tokens between reads of the sampled tokens, so the host
  // never waits for the GPU per token; on CUDA the step is a CUDA graph (cuda_graphs).
  // Rows that end inside a window are cut at their end as usual; the window's remaining
  // steps for them are wasted work. kAuto: on for models on a GPU, off on the CPU, where
  // the host sampler is faster and no launches need hiding.
  enum class DeviceLoop { kAuto, kOn, kOff };
  DeviceLoop device_loop = DeviceLoop::kAuto;
  int64_t steps_per_sync = 16;
  bool cuda_graphs = true;
  // Device loop: keys are read up to a multiple of this many positions (SlotDecoder).
  int64_t decode_key_bucket = 128;
};

struct EngineStats {
  int64_t prefill_tokens = 0;   // prompt tokens processed
  int64_t decode_tokens = 0;    // tokens sampled
  int64_t prefill_forwards = 0;
  int64_t decode_forwards = 0;
  double prefill_seconds = 0;   // forward + LM head + sampling of prefill forwards
  double decode_seconds = 0;
  int64_t decode_windows = 0;     // device loop: host reads of the sampled tokens
  int64_t cuda_graphs = 0;        // device loop: graphs captured (one per key-length bucket; 0: none ran)
};

class GenerationEngine {
 public:
  GenerationEngine(const Transformer& model, EngineOptions options);

  // Generates an answer for every request, calling on_finished once per request as it
  // finishes (in completion order, from the calling thread). A prompt that leaves no room
  // in the context for one new token is an Error naming the request's row.
  void generate(const std::vector<GenerationRequest>& requests,
                const std::function<void(GenerationResult&&)>& on_finished);

  const EngineStats& stats() const { return stats_; }
  const EngineOptions& options() const { return options_; }

 private:
  struct Slot;
  void prefill(std::vector<Slot>& slots, KVCache& cache,
               const std::vector<GenerationRequest>& requests);
  void decode_step(std::vector<Slot>& slots, KVCache& cache);
  // The device loop's step: up to steps_per_sync tokens for every generating row.
  void decode_window(std::vector<Slot>& slots, KVCache& cache, SlotDecoder& decoder);
  // Appends a sampled token to the row and decides whether the row ends (EOS, stop
  // string, length limit).
  void accept_token(Slot& slot, int64_t token);
  bool uses_device_loop() const;
  // hidden [N, C]: the rows' hidden states at positions (one per row) go through the LM
  // head, then one token is sampled per row; rows that end are marked finished.
  void sample_rows(const at::Tensor& hidden, const std::vector<int64_t>& positions,
                   const std::vector<Slot*>& rows);

  const Transformer& model_;
  EngineOptions options_;
  int64_t context_length_;
  EngineStats stats_;
};

}  // namespace spinlm
