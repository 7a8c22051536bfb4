// The opponent's (reference) log-probs of every pair, computed once with no gradient and
// cached on disk, so training keeps only the trained model in memory.
//
// Cache: OUT/reference_logprobs-<key>.json, key = a 64-bit hash of the model's weight files
// (their bytes), the pairs' token ids after truncation and the truncation settings. A cache
// whose key differs is recomputed, never reused.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/collective.h"
#include "data/collate.h"
#include "data/packing.h"
#include "data/pairs.h"
#include "io/work_journal.h"
#include "model/transformer.h"

namespace spinlm {

// Summed response log-probs (real and generated) and response lengths, one entry per pair.
struct ReferenceLogprobs {
  std::vector<double> real;
  std::vector<double> generated;
  std::vector<int64_t> real_tokens;
  std::vector<int64_t> generated_tokens;
};

// Scores of m pairs under a model, from one padding-free forward of their packed blocks
// (data/packing.h: each prompt once, then its two answers).
struct PairScores {
  at::Tensor real;              // [m] summed log-probs of the real responses (fp32, with grad if any)
  at::Tensor generated;         // [m]
  at::Tensor real_tokens;       // [m] fp32 response lengths
  at::Tensor generated_tokens;  // [m]
  int64_t tokens = 0;           // tokens the forward computed (the packed stream)
};
PairScores score_pairs(const Transformer& model, const std::vector<const TokenPair*>& pairs,
                       int64_t chunk_positions = 1024);

// Scores every pair without gradient, one forward per micro-batch (data/packing.h); each
// micro-batch's scores are one unit of journal (io/work_journal.h), taken from it when
// recorded there.
ReferenceLogprobs compute_reference_logprobs(const Transformer& model, const std::vector<TokenPair>& pairs,
                                             const MicroBatching& micro_batching, int64_t chunk_positions = 1024,
                                             const std::string& label = "reference log-probs",
                                             const JournalPart& journal = {});

// Hex hash of a model folder's weight files (model.safetensors or its shards), or of an
// adapter folder's adapter_model.safetensors.
std::string hash_model_weights(const std::string& model_dir);
// Hex hash of pairs (token ids) and truncation settings.
std::string hash_pairs(const std::vector<TokenPair>& pairs, const TruncationOptions& truncation);

// Loads cache_path when its key equals key and it holds expected_pairs rows; otherwise runs
// compute and writes the cache atomically. compute records its work in the journal it is
// given (cache_path + ".journal", this rank's), so a computation stopped by a signal or a
// kill resumes where it stopped; the journal goes once the cache is written.
ReferenceLogprobs load_or_compute_reference(const std::string& cache_path, const std::string& key,
                                            size_t expected_pairs, const Ranks& ranks,
                                            const std::function<ReferenceLogprobs(const JournalPart&)>& compute);

// --reference-mix BASE:ALPHA (Alami et al. 2024): alpha * log p_base + (1 - alpha) * log p_t.
struct ReferenceMix {
  std::string base_dir;  // empty: no mixing
  double alpha = 0.0;
};
ReferenceMix parse_reference_mix(const std::string& text);  // Error naming the option
ReferenceLogprobs mix_reference(const ReferenceLogprobs& base, const ReferenceLogprobs& current, double alpha);

}  // namespace spinlm
