// tokenizer.json "model" of type BPE: vocabulary, ranked merges, byte_fallback (<0xHH>),
// unk_token / fuse_unk, ignore_merges, continuing_subword_prefix / end_of_word_suffix, and a
// per-word cache (results do not depend on it).
#pragma once
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/string_index.h"

namespace spinlm {

class BpeModel {
 public:
  // From the "model" object; errors name `file`.
  BpeModel(const nlohmann::json& j, const std::string& file);
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int64_t>& out) const;

  std::optional<int64_t> token_to_id(std::string_view token) const;
  // nullptr when the id is not in the model's vocabulary.
  const std::string* id_to_token(int64_t id) const;
  // One more than the largest id of the vocabulary.
  int64_t size() const { return static_cast<int64_t>(id_to_token_.size()); }
  // Number of vocabulary entries (the library numbers new added tokens from here).
  int64_t entries() const { return static_cast<int64_t>(vocab_.size()); }
  // The id of a vocabulary entry, or -1.
  int32_t find(std::string_view token) const { return vocab_.find(token); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  void merge_word(std::string_view word, std::vector<int32_t>& ids) const;
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids, std::vector<uint32_t>& lengths) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  StringIndex vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<std::string> unk_token_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_fallback_ids_{};  // id of <0xHH>, -1 when missing
  std::array<int32_t, 128> ascii_ids_{};          // id of each one-byte token, -1 when missing

  // Word -> ids cache, sharded to keep lock contention low when several threads encode.
  static constexpr size_t kShards = 16;
  static constexpr size_t kShardCapacity = 16384;
  static constexpr size_t kMaxCachedWordBytes = 256;
  // Keyed by the word's hash; the word is kept to tell hash collisions apart.
  struct CachedWord {
    std::string word;
    std::vector<int32_t> ids;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<uint64_t, CachedWord> words;
  };
  mutable std::array<Shard, kShards> cache_;
};

}  // namespace spinlm
