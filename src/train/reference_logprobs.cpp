#include "train/reference_logprobs.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "core/logging.h"
#include "core/progress.h"

namespace spinlm {
namespace fs = std::filesystem;

PairScores score_pairs(const Transformer& model, const std::vector<const TokenPair*>& pairs,
                       int64_t chunk_positions) {
  const int64_t m = static_cast<int64_t>(pairs.size());
  const PackedBatch batch = pack_pairs(pairs);  // outputs: real then generated
  const at::Tensor sums = sum_by_output(batch, model.packed_logprobs(batch.tokens, chunk_positions));  // [2m]
  const at::Tensor counts = at::tensor(batch.scored_per_output, at::kLong).to(sums.device()).to(at::kFloat);
  PairScores scores;
  scores.real = sums.slice(0, 0, m);
  scores.generated = sums.slice(0, m, 2 * m);
  scores.real_tokens = counts.slice(0, 0, m);
  scores.generated_tokens = counts.slice(0, m, 2 * m);
  scores.tokens = batch.stream_tokens;
  return scores;
}

ReferenceLogprobs compute_reference_logprobs(const Transformer& model, const std::vector<TokenPair>& pairs,
                                             const MicroBatching& micro_batching, int64_t chunk_positions,
                                             const std::string& label, const JournalPart& journal) {
  at::NoGradGuard no_grad;
  const size_t n = pairs.size();
  ReferenceLogprobs out;
  out.real.assign(n, 0.0);
  out.generated.assign(n, 0.0);
  out.real_tokens.assign(n, 0);
  out.generated_tokens.assign(n, 0);
  std::vector<int64_t> all(n), lengths(n), tokens(n);
  for (size_t i = 0; i < n; ++i) {
    all[i] = static_cast<int64_t>(i);
    lengths[i] = pair_length(pairs[i]);
    tokens[i] = packed_pair_tokens(pairs[i]);
  }
  Progress progress(label, static_cast<int64_t>(n), "pairs");
  int64_t done = 0;
  for (const auto& micro : split_micro_batches(all, lengths, tokens, micro_batching)) {
    std::vector<const TokenPair*> ptrs;
    for (int64_t i : micro) ptrs.push_back(&pairs[i]);
    std::string key;
    if (journal) {
      UnitKey unit;
      for (const TokenPair* pair : ptrs) unit.add(pair->prompt).add(pair->real).add(pair->generated);
      key = unit.hex();
    }
    const nlohmann::json* recorded = journal.find(key);
    nlohmann::json scores;  // the micro-batch's scores, in its order
    if (recorded != nullptr) {
      scores = *recorded;
      check(scores.at("real").size() == micro.size(), "work journal: a recorded micro-batch of ", journal.name, " has ",
            scores.at("real").size(), " pairs, not ", micro.size());
    } else {
      PairScores s = score_pairs(model, ptrs, chunk_positions);
      at::Tensor real = s.real.to(at::kDouble).cpu(), gen = s.generated.to(at::kDouble).cpu();
      at::Tensor rt = s.real_tokens.cpu(), gt = s.generated_tokens.cpu();
      for (size_t k = 0; k < micro.size(); ++k) {
        scores["real"].push_back(real[k].item<double>());
        scores["generated"].push_back(gen[k].item<double>());
        scores["real_tokens"].push_back(static_cast<int64_t>(rt[k].item<float>()));
        scores["generated_tokens"].push_back(static_cast<int64_t>(gt[k].item<float>()));
      }
    }
    for (size_t k = 0; k < micro.size(); ++k) {
      const int64_t i = micro[k];
      out.real[i] = scores["real"][k].get<double>();
      out.generated[i] = scores["generated"][k].get<double>();
      out.real_tokens[i] = scores["real_tokens"][k].get<int64_t>();
      out.generated_tokens[i] = scores["generated_tokens"][k].get<int64_t>();
    }
    done += static_cast<int64_t>(micro.size());
    progress.update(done);
    if (recorded == nullptr) journal.record(key, scores);
  }
  progress.finish();
  return out;
}

namespace {

// FNV-1a over 64-bit words (bytes for the tail): fast enough for multi-GB weight files.
struct Hasher {
  uint64_t h = 1469598103934665603ULL;
  void bytes(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 1099511628211ULL;
    }
    for (; i < size; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  }
  void value(int64_t v) { bytes(&v, sizeof(v)); }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

void hash_file(Hasher& hasher, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  check(f != nullptr, path, ": cannot read");
  std::vector<char> buffer(1 << 22);
  size_t got;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) hasher.bytes(buffer.data(), got);
  std::fclose(f);
}

}  // namespace

std::string hash_model_weights(const std::string& model_dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(model_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0 && (name.rfind("model", 0) == 0 || name == "adapter_model.safetensors")) {
      files.push_back(entry.path().string());
    }
  }
  check(!files.empty(), model_dir, ": no model*.safetensors weight files");
  std::sort(files.begin(), files.end());
  Hasher hasher;
  for (const std::string& file : files) {
    const std::string name = fs::path(file).filename().string();
    hasher.bytes(name.data(), name.size());
    hash_file(hasher, file);
  }
  return hasher.hex();
}

std::string hash_pairs(const std::vector<TokenPair>& pairs, const TruncationOptions& truncation) {
  Hasher hasher;
  hasher.value(truncation.max_length);
  hasher.value(truncation.max_prompt_length);
  hasher.value(static_cast<int64_t>(pairs.size()));
  for (const TokenPair& p : pairs) {
    for (const auto* ids : {&p.prompt, &p.real, &p.generated}) {
      hasher.value(static_cast<int64_t>(ids->size()));
      hasher.bytes(ids->data(), ids->size() * sizeof(int64_t));
    }
  }
  return hasher.hex();
}

ReferenceLogprobs load_or_compute_reference(const std::string& cache_path, const std::string& key,
                                            size_t expected_pairs, const Ranks& ranks,
                                            const std::function<ReferenceLogprobs(const JournalPart&)>& compute) {
  if (file_exists(cache_path)) {
    try {
      const nlohmann::json j = read_json_file(cache_path);
      if (j.at("key").get<std::string>() == key) {
        ReferenceLogprobs r;
        r.real = j.at("real").get<std::vector<double>>();
        r.generated = j.at("generated").get<std::vector<double>>();
        r.real_tokens = j.at("real_tokens").get<std::vector<int64_t>>();
        r.generated_tokens = j.at("generated_tokens").get<std::vector<int64_t>>();
        if (r.real.size() == expected_pairs && r.generated.size() == expected_pairs &&
            r.real_tokens.size() == expected_pairs && r.generated_tokens.size() == expected_pairs) {
          log_info("reference log-probs from cache ", cache_path);
          return r;
        }
      }
      log_warning(cache_path, " does not match the model and data; recomputing it");
    } catch (const std::exception& error) {
      // A damaged cache (unreadable, not JSON, wrong fields) is recomputed.
      log_warning(cache_path, " is damaged (", error.what(), "); recomputing it");
    }
  }
  make_directories(fs::path(cache_path).parent_path().string());
  WorkJournal journal(cache_path + ".journal", {{"key", key}}, ranks, "reference scoring");
  ReferenceLogprobs r = compute(JournalPart{&journal, "reference"});
  nlohmann::json j = {{"key", key},
                      {"real", r.real},
                      {"generated", r.generated},
                      {"real_tokens", r.real_tokens},
                      {"generated_tokens", r.generated_tokens}};
  write_file_atomic(cache_path, j.dump() + "\n");
  journal.remove();
  return r;
}

ReferenceMix parse_reference_mix(const std::string& text) {
  ReferenceMix mix;
  if (text.empty()) return mix;
  const size_t colon = text.rfind(':');
  check(colon != std::string::npos && colon > 0 && colon + 1 < text.size(),
        "--reference-mix must be BASE_DIR:ALPHA, got '", text, "'");
  mix.base_dir = text.substr(0, colon);
  try {
    size_t used = 0;
    mix.alpha = std::stod(text.substr(colon + 1), &used);
    check(used == text.size() - colon - 1, "");
  } catch (const std::exception&) {
    fail("--reference-mix: ALPHA must be a number in [0, 1], got '", text.substr(colon + 1), "'");
  }
  check(mix.alpha >= 0 && mix.alpha <= 1, "--reference-mix: ALPHA must be in [0, 1], got ", mix.alpha);
  return mix;
}

ReferenceLogprobs mix_reference(const ReferenceLogprobs& base, const ReferenceLogprobs& current, double alpha) {
  check(base.real.size() == current.real.size(), "reference mix: the base and current log-probs cover different pairs");
  ReferenceLogprobs out = current;
  for (size_t i = 0; i < out.real.size(); ++i) {
    out.real[i] = alpha * base.real[i] + (1 - alpha) * current.real[i];
    out.generated[i] = alpha * base.generated[i] + (1 - alpha) * current.generated[i];
  }
  return out;
}

}  // namespace spinlm
