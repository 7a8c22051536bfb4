#include "model/stop_tokens.h"

#include <algorithm>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"

namespace spinlm {
namespace {

// generation_config.json's eos_token_id; empty when the file or the field is absent.
std::vector<int64_t> generation_config_eos(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "generation_config.json").string();
  if (model_dir.empty() || !file_exists(path)) return {};
  const nlohmann::json generation = read_json_file(path);
  check(generation.is_object(), path, ": expected a JSON object");
  auto eos = generation.find("eos_token_id");
  if (eos == generation.end() || eos->is_null()) return {};
  std::vector<int64_t> ids;
  if (eos->is_number_integer()) {
    ids.push_back(eos->get<int64_t>());
  } else {
    check(eos->is_array(), path, ": field \"eos_token_id\" must be an integer or a list of integers");
    for (const nlohmann::json& id : *eos) {
      check(id.is_number_integer(), path, ": field \"eos_token_id\" must hold integers, got ", id.dump());
      ids.push_back(id.get<int64_t>());
    }
  }
  return ids;
}

}  // namespace

bool StopTokens::stops(int64_t id) const { return std::find(ids.begin(), ids.end(), id) != ids.end(); }

std::vector<int64_t> StopTokens::end_response(std::vector<int64_t> response) const {
  const auto first_stop = std::find_if(response.begin(), response.end(), [&](int64_t id) { return stops(id); });
  if (first_stop == response.end()) {
    response.push_back(eos);
  } else {
    response.erase(first_stop + 1, response.end());
  }
  return response;
}

StopTokens load_stop_tokens(const std::string& model_dir, const ModelConfig& config, const TextCodec* codec) {
  StopTokens stop;
  stop.ids = generation_config_eos(model_dir);
  if (stop.ids.empty()) stop.ids = config.eos_token_ids;
  const std::optional<int64_t> tokenizer_eos = codec ? codec->eos_id() : std::nullopt;
  if (stop.ids.empty() && tokenizer_eos) stop.ids = {*tokenizer_eos};
  check(!stop.ids.empty(), model_dir,
        ": no EOS token id (generation_config.json, config.json and the tokenizer name none)");
  stop.eos = tokenizer_eos && stop.stops(*tokenizer_eos) ? *tokenizer_eos : stop.ids.front();
  return stop;
}

}  // namespace spinlm
