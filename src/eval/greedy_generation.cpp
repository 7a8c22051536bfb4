#include "eval/greedy_generation.h"

#include <map>
#include <memory>

#include "core/error.h"
#include "core/progress.h"
#include "generate/engine.h"

namespace spinlm {

std::vector<std::string> generate_greedy(const Transformer& model, const Tokenizer& tokenizer,
                                         const std::vector<GreedyRequest>& requests, const GreedyOptions& options) {
  const int64_t max_length =
      options.max_length > 0 ? options.max_length : model.config().max_position_embeddings;
  std::vector<std::string> texts(requests.size());
  // The engine takes one stop list and one length limit: requests are run in groups that
  // share them (a task's requests all do).
  std::map<std::pair<std::vector<std::string>, int64_t>, std::vector<size_t>> groups;
  for (size_t i = 0; i < requests.size(); ++i) groups[{requests[i].until, requests[i].max_gen_toks}].push_back(i);
  std::unique_ptr<Progress> progress;
  if (options.show_progress) progress = std::make_unique<Progress>("generation", static_cast<int64_t>(requests.size()), "rows");
  int64_t done = 0;
  for (const auto& [key, members] : groups) {
    const auto& [until, max_gen_toks] = key;
    check(max_gen_toks >= 1 && max_gen_toks < max_length, "max_gen_toks ", max_gen_toks,
          " must be in [1, model length ", max_length, ")");
    EngineOptions engine_options;
    engine_options.sampling.greedy = true;
    engine_options.max_new_tokens = max_gen_toks;
    engine_options.batch_size = options.batch_size;
    engine_options.eos_ids = options.eos_ids;
    std::vector<std::string> stops;
    for (const auto& stop : until) {
      if (!stop.empty()) stops.push_back(stop);
    }
    engine_options.stop_strings = StopStrings(stops);
    engine_options.decode = [&tokenizer](const std::vector<int64_t>& ids) { return tokenizer.decode(ids, true); };
    engine_options.context_length = max_length;
    std::vector<GenerationRequest> engine_requests;
    std::vector<size_t> engine_members;  // the request of each engine request
    std::vector<std::string> keys;       // its journal key
    for (size_t i : members) {
      GenerationRequest request;
      request.row = static_cast<int64_t>(i);
      auto ids = tokenizer.encode(requests[i].context, false);
      check(!ids.empty(), "generation request ", i, " has an empty context");
      // context_enc[:, -(max_length - max_gen_toks):]
      const size_t room = static_cast<size_t>(max_length - max_gen_toks);
      if (ids.size() > room) ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(room));
      std::string unit_key;
      if (options.journal) {
        UnitKey unit;
        unit.add(ids).add(std::to_string(max_gen_toks));
        for (const std::string& stop : until) unit.add(stop);
        unit_key = unit.hex();
        if (const nlohmann::json* recorded = options.journal.find(unit_key)) {
          texts[i] = recorded->get<std::string>();
          ++done;
          continue;
        }
      }
      request.prompt_ids = std::move(ids);
      engine_requests.push_back(std::move(request));
      engine_members.push_back(i);
      keys.push_back(std::move(unit_key));
    }
    if (progress) progress->update(done);
    if (engine_requests.empty()) continue;
    GenerationEngine engine(model, engine_options);
    engine.generate(engine_requests, [&](GenerationResult&& result) {
      texts[engine_members[result.request]] = std::move(result.text);
      ++done;
      if (progress) progress->update(done);
      options.journal.record(keys[result.request], texts[engine_members[result.request]]);
    });
  }
  if (progress) progress->finish();
  return texts;
}

}  // namespace spinlm
