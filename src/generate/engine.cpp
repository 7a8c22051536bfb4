#include "generate/engine.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "core/error.h"

namespace spinlm {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos: return "eos";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
  }
  return "length";
}

// One KV-cache slot and the row it is generating.
struct GenerationEngine::Slot {
  int64_t cache_slot = 0;
  int64_t request = -1;                      // -1: free
  const GenerationRequest* source = nullptr;
  int64_t prefilled = 0;                     // prompt tokens already in the cache
  int64_t limit = 0;                         // most new tokens this row may take
  std::vector<int64_t> ids;                  // sampled so far
  bool finished = false;
  FinishReason reason = FinishReason::kLength;
  std::string text;

  static Slot empty(int64_t cache_slot) {
    Slot slot;
    slot.cache_slot = cache_slot;
    return slot;
  }
  bool busy() const { return request >= 0; }
  int64_t prompt_length() const { return static_cast<int64_t>(source->prompt_ids.size()); }
  bool prefilling() const { return busy() && prefilled < prompt_length(); }
  bool generating() const { return busy() && !prefilling() && !finished; }
};

GenerationEngine::GenerationEngine(const Transformer& model, EngineOptions options)
    : model_(model), options_(std::move(options)) {
  options_.sampling.validate();
  check(options_.max_new_tokens >= 1, "--max-new-tokens must be >= 1, got ", options_.max_new_tokens);
  check(options_.batch_size >= 1, "--batch-size must be >= 1, got ", options_.batch_size);
  check(options_.max_batch_tokens >= 1, "--max-batch-tokens must be >= 1, got ",
        options_.max_batch_tokens);
  check(options_.stop_strings.empty() || options_.decode, "stop strings need a decode function");
  context_length_ = options_.context_length > 0 ? options_.context_length
                                                : model_.config().max_position_embeddings;
  check(context_length_ > 0, "the model's context length is unknown (max_position_embeddings)");
  check(options_.steps_per_sync >= 1, "--steps-per-sync must be >= 1, got ", options_.steps_per_sync);
  check(options_.decode_key_bucket >= 1, "decode_key_bucket must be >= 1, got ", options_.decode_key_bucket);
}

bool GenerationEngine::uses_device_loop() const {
  switch (options_.device_loop) {
    case EngineOptions::DeviceLoop::kOn: return true;
    case EngineOptions::DeviceLoop::kOff: return false;
    case EngineOptions::DeviceLoop::kAuto: return !model_.device().is_cpu();
  }
  return false;
}

void GenerationEngine::generate(const std::vector<GenerationRequest>& requests,
                                const std::function<void(GenerationResult&&)>& on_finished) {
  at::NoGradGuard no_grad;  // also lets the one-row LM head take the gemv path
  const int64_t count = static_cast<int64_t>(requests.size());
  if (count == 0) return;
  std::vector<int64_t> limits(count);
  int64_t cache_tokens = 1;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t length = static_cast<int64_t>(requests[i].prompt_ids.size());
    check(length >= 1, "row ", requests[i].row, ": the prompt has no tokens");
    check(length < context_length_, "row ", requests[i].row, ": the prompt has ", length,
          " tokens, which leaves no room for an answer in the model's context of ", context_length_,
          " tokens");
    limits[i] = std::min(options_.max_new_tokens, context_length_ - length);
    // The last sampled token is never fed back, so a row needs length + limit - 1 positions.
    cache_tokens = std::max(cache_tokens, length + limits[i] - 1);
  }

  // Longest prompts first: rows prefilled together have similar lengths (less padding) and
  // the short ones fill the gaps at the end.
  std::vector<int64_t> order(count);
  for (int64_t i = 0; i < count; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return requests[a].prompt_ids.size() > requests[b].prompt_ids.size();
  });

  const int64_t num_slots = std::min(options_.batch_size, count);
  KVCache cache(model_.config(), num_slots, cache_tokens, model_.device(), model_.dtype());
  std::vector<Slot> slots(num_slots);
  for (int64_t s = 0; s < num_slots; ++s) slots[s] = Slot::empty(s);
  std::unique_ptr<SlotDecoder> decoder;
  if (uses_device_loop()) {
    decoder = std::make_unique<SlotDecoder>(model_, cache, options_.sampling, options_.cuda_graphs,
                                            options_.decode_key_bucket);
  }

  int64_t next = 0;
  int64_t remaining = count;
  auto emit_finished = [&] {
    for (Slot& slot : slots) {
      if (!slot.busy() || !slot.finished) continue;
      GenerationResult result;
      result.request = slot.request;
      result.row = slot.source->row;
      result.ids = std::move(slot.ids);
      result.text = std::move(slot.text);
      result.finish_reason = slot.reason;
      slot = Slot::empty(slot.cache_slot);
      --remaining;
      on_finished(std::move(result));
    }
  };

  while (remaining > 0) {
    for (Slot& slot : slots) {
      if (slot.busy() || next >= count) continue;
      const int64_t request = order[next++];
      slot = Slot::empty(slot.cache_slot);
      slot.request = request;
      slot.source = &requests[request];
      slot.limit = limits[request];
      cache.reset(slot.cache_slot);
    }
    prefill(slots, cache, requests);
    emit_finished();
    if (decoder) {
      decode_window(slots, cache, *decoder);
      stats_.cuda_graphs = decoder->graphs_captured();
    } else {
      decode_step(slots, cache);
    }
    emit_finished();
  }
}

void GenerationEngine::prefill(std::vector<Slot>& slots, KVCache& cache,
                               const std::vector<GenerationRequest>& requests) {
  while (true) {
    std::vector<Slot*> pending;
    for (Slot& slot : slots) {
      if (slot.prefilling()) pending.push_back(&slot);
    }
    if (pending.empty()) return;
    auto start = std::chrono::steady_clock::now();
    auto left = [](const Slot* slot) { return slot->prompt_length() - slot->prefilled; };
    std::stable_sort(pending.begin(), pending.end(),
                     [&](const Slot* a, const Slot* b) { return left(a) > left(b); });
    // One forward of [B, T] with B * T <= max_batch_tokens (at least one row).
    const int64_t width = std::min(left(pending.front()), options_.max_batch_tokens);
    const int64_t rows = std::clamp<int64_t>(options_.max_batch_tokens / width, 1,
                                             static_cast<int64_t>(pending.size()));
    pending.resize(rows);

    at::Tensor input = at::zeros({rows, width}, at::kLong);  // [B, T] right-padded
    auto* input_data = input.data_ptr<int64_t>();
    std::vector<int64_t> token_counts(rows), cache_slots(rows);
    for (int64_t b = 0; b < rows; ++b) {
      Slot& slot = *pending[b];
      token_counts[b] = std::min(left(&slot), width);
      cache_slots[b] = slot.cache_slot;
      const int64_t* prompt = slot.source->prompt_ids.data() + slot.prefilled;
      std::copy(prompt, prompt + token_counts[b], input_data + b * width);
    }
    at::Tensor hidden = model_.forward_cached(input.to(model_.device()), token_counts, cache_slots,
                                              cache);  // [B, T, C]
    stats_.prefill_forwards += 1;

    // Rows whose whole prompt is now in the cache sample their first token from the hidden
    // state at their last prompt position.
    std::vector<int64_t> positions;
    std::vector<Slot*> complete;
    for (int64_t b = 0; b < rows; ++b) {
      Slot& slot = *pending[b];
      slot.prefilled += token_counts[b];
      stats_.prefill_tokens += token_counts[b];
      if (!slot.prefilling()) {
        positions.push_back(b * width + token_counts[b] - 1);
        complete.push_back(&slot);
      }
    }
    if (!complete.empty()) sample_rows(hidden.reshape({rows * width, -1}), positions, complete);
    stats_.prefill_seconds += seconds_since(start);
  }
}

void GenerationEngine::decode_step(std::vector<Slot>& slots, KVCache& cache) {
  std::vector<Slot*> rows;
  for (Slot& slot : slots) {
    if (slot.generating()) rows.push_back(&slot);
  }
  if (rows.empty()) return;
  auto start = std::chrono::steady_clock::now();
  const int64_t count = static_cast<int64_t>(rows.size());
  at::Tensor input = at::empty({count, 1}, at::kLong);  // [B, 1]: each row's last token
  std::vector<int64_t> token_counts(count, 1), cache_slots(count), positions(count);
  for (int64_t b = 0; b < count; ++b) {
    input.data_ptr<int64_t>()[b] = rows[b]->ids.back();
    cache_slots[b] = rows[b]->cache_slot;
    positions[b] = b;
  }
  at::Tensor hidden = model_.forward_cached(input.to(model_.device()), token_counts, cache_slots,
                                            cache);  // [B, 1, C]
  sample_rows(hidden.reshape({count, -1}), positions, rows);
  stats_.decode_forwards += 1;
  stats_.decode_seconds += seconds_since(start);
}

void GenerationEngine::decode_window(std::vector<Slot>& slots, KVCache& cache, SlotDecoder& decoder) {
  std::vector<Slot*> rows;
  int64_t most_left = 0;  // the longest any generating row may still go
  for (Slot& slot : slots) {
    if (!slot.generating()) continue;
    rows.push_back(&slot);
    most_left = std::max(most_left, slot.limit - static_cast<int64_t>(slot.ids.size()));
  }
  if (rows.empty()) return;
  auto start = std::chrono::steady_clock::now();
  const int64_t num_slots = cache.num_slots();
  const int64_t steps = std::min(options_.steps_per_sync, most_left);
  // Slots without a generating row step on garbage at position 0 of their own slot.
  std::vector<int64_t> last_tokens(num_slots, 0), positions(num_slots, 0);
  at::Tensor uniforms = at::full({steps, num_slots}, 0.5, at::kDouble);  // [K, S]
  auto u = uniforms.accessor<double, 2>();
  for (const Slot* row : rows) {
    last_tokens[row->cache_slot] = row->ids.back();
    positions[row->cache_slot] = cache.length(row->cache_slot);
    const uint64_t sampled = row->ids.size();
    for (int64_t k = 0; k < steps; ++k) {
      u[k][row->cache_slot] = counter_uniform(options_.seed, static_cast<uint64_t>(row->source->row), sampled + k);
    }
  }
  const at::Tensor tokens = decoder.run(last_tokens, positions, uniforms);  // [K, S] on the CPU
  auto drawn = tokens.accessor<int64_t, 2>();
  for (Slot* row : rows) {
    for (int64_t k = 0; k < steps && !row->finished; ++k) {
      accept_token(*row, drawn[k][row->cache_slot]);
      stats_.decode_tokens += 1;
    }
    // The window fed `steps` tokens into the slot (a finished row's extra keys are never read).
    cache.set_length(row->cache_slot, cache.length(row->cache_slot) + steps);
  }
  stats_.decode_forwards += steps;
  stats_.decode_windows += 1;
  stats_.decode_seconds += seconds_since(start);
}

void GenerationEngine::sample_rows(const at::Tensor& hidden, const std::vector<int64_t>& positions,
                                   const std::vector<Slot*>& rows) {
  at::Tensor index = at::tensor(positions, at::kLong).to(hidden.device());
  at::Tensor logits = model_.logits(hidden.index_select(0, index));  // [R, V] fp32
  std::vector<double> uniforms(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    uniforms[r] = counter_uniform(options_.seed, static_cast<uint64_t>(rows[r]->source->row),
                                  rows[r]->ids.size());
  }
  std::vector<int64_t> tokens = sample_tokens(logits, options_.sampling, uniforms);
  stats_.decode_tokens += static_cast<int64_t>(rows.size());

  for (size_t r = 0; r < rows.size(); ++r) accept_token(*rows[r], tokens[r]);
}

void GenerationEngine::accept_token(Slot& slot, int64_t token) {
  slot.ids.push_back(token);
  bool have_text = false;
  if (std::find(options_.eos_ids.begin(), options_.eos_ids.end(), token) != options_.eos_ids.end()) {
    slot.finished = true;
    slot.reason = FinishReason::kEos;
  } else if (!options_.stop_strings.empty()) {
    slot.text = options_.decode(slot.ids);
    have_text = true;
    size_t at = options_.stop_strings.find(slot.text);
    if (at != std::string::npos) {
      slot.text.resize(at);
      slot.finished = true;
      slot.reason = FinishReason::kStop;
    }
  }
  if (!slot.finished && static_cast<int64_t>(slot.ids.size()) >= slot.limit) {
    slot.finished = true;
    slot.reason = FinishReason::kLength;
  }
  if (slot.finished && !have_text && options_.decode) slot.text = options_.decode(slot.ids);
}

}  // namespace spinlm
