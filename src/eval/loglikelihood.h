// Log-likelihood requests, scored as lm-evaluation-harness's HFLM scores them:
// - tokenisation (_encode_pair): trailing whitespace of the context moves to the front of the
//   continuation; context and context + continuation are encoded without special tokens;
//   the continuation's tokens are whole[len(context tokens):]. An empty context becomes the
//   EOS token (the harness's eot_token_id).
// - scoring (_loglikelihood_tokens): the model reads (context + continuation)[-(L + 1):][:-1]
//   (L the model's maximum length); the result is the sum of the continuation tokens'
//   log-probs and whether each of them is the argmax (is_greedy).
// Requests that share a context (as the model reads it, after truncation) are one packed
// block (data/packing.h): the context once, then each distinct continuation attending to the
// context and itself only (lm-eval's multiple-choice tasks: one context, 4 continuations).
// Blocks are sorted longest first and batch_size of them make one padding-free forward;
// results come back in the original order.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/work_journal.h"
#include "model/transformer.h"
#include "text/tokenizer.h"

namespace spinlm {

struct LoglikelihoodRequest {
  std::vector<int64_t> context;       // at least one token
  std::vector<int64_t> continuation;  // at least one token
};

struct LoglikelihoodResult {
  double logprob = 0.0;
  bool is_greedy = true;
};

struct LoglikelihoodOptions {
  int64_t batch_size = 16;  // contexts (packed blocks) per forward
  int64_t max_length = 0;   // 0: the model's max_position_embeddings
  bool show_progress = false;
  // Requests with the same context share one block (off: one block per request; for
  // benchmarks).
  bool merge_identical_inputs = true;
  JournalPart journal;  // each forward's results one unit (io/work_journal.h)
};

// The harness's _encode_pair; empty_context_id replaces an empty context (EOS), bos_id (when
// set) is put before every context.
LoglikelihoodRequest encode_loglikelihood_request(const Tokenizer& tokenizer, const std::string& context,
                                                  const std::string& continuation, int64_t empty_context_id,
                                                  std::optional<int64_t> bos_id = std::nullopt);

std::vector<LoglikelihoodResult> score_loglikelihood(const Transformer& model,
                                                     const std::vector<LoglikelihoodRequest>& requests,
                                                     const LoglikelihoodOptions& options);

}  // namespace spinlm
