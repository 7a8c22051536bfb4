// Generation requests of generate_until tasks, as HFLM.generate_until runs them: the context
// encoded without special tokens and left-truncated to max_length - max_gen_toks tokens,
// greedy decoding of at most max_gen_toks tokens, stopping at EOS or when a stop string
// appears; the text is cut before the earliest stop string. Runs on the generation engine
// (continuous batching over a KV cache).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/work_journal.h"
#include "model/transformer.h"
#include "text/tokenizer.h"

namespace spinlm {

struct GreedyRequest {
  std::string context;
  std::vector<std::string> until;
  int64_t max_gen_toks = 256;
};

struct GreedyOptions {
  int64_t batch_size = 16;  // rows decoded together
  int64_t max_length = 0;   // 0: the model's max_position_embeddings
  std::vector<int64_t> eos_ids;
  bool show_progress = false;
  JournalPart journal;  // each text one unit (io/work_journal.h)
};

// One generated text per request, in request order.
std::vector<std::string> generate_greedy(const Transformer& model, const Tokenizer& tokenizer,
                                         const std::vector<GreedyRequest>& requests, const GreedyOptions& options);

}  // namespace spinlm
