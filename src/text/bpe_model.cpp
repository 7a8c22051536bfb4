#include "text/bpe_model.h"

#include <cstdio>
#include <functional>
#include <queue>

#include "core/error.h"
#include "io/json_text.h"
#include "text/unicode.h"

namespace spinlm {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// A symbol of a word being merged: a doubly linked list over the initial characters.
struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t length;  // bytes covered; 0 once merged into its left neighbour
};

struct QueuedMerge {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // Lowest rank first, then leftmost.
  bool operator<(const QueuedMerge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

BpeModel::BpeModel(const nlohmann::json& j, const std::string& file) {
  const auto& vocab = j.at("vocab");
  if (!vocab.is_object()) fail(file, ": model.vocab must be an object of token -> id");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int64_t id = json_integer(it.value(), file + ": model.vocab id of \"" + it.key() + "\"");
    if (id < 0 || id > INT32_MAX) fail(file, ": model.vocab id ", id, " of \"", it.key(), "\" is out of range");
    vocab_.insert(it.key(), static_cast<int32_t>(id));
    if (static_cast<size_t>(id) >= id_to_token_.size()) id_to_token_.resize(id + 1);
    id_to_token_[id] = it.key();
  }
  if (j.contains("dropout") && !j["dropout"].is_null() && j["dropout"].get<double>() != 0.0) {
    fail(file, ": BPE dropout is not supported (spinlm tokenizes deterministically)");
  }
  if (j.contains("unk_token") && j["unk_token"].is_string()) unk_token_ = j["unk_token"].get<std::string>();
  if (j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string())
    continuing_subword_prefix_ = j["continuing_subword_prefix"].get<std::string>();
  if (j.contains("end_of_word_suffix") && j["end_of_word_suffix"].is_string())
    end_of_word_suffix_ = j["end_of_word_suffix"].get<std::string>();
  fuse_unk_ = j.value("fuse_unk", false);
  byte_fallback_ = j.value("byte_fallback", false);
  ignore_merges_ = j.value("ignore_merges", false);

  const auto& merges = j.at("merges");
  merges_.reserve(merges.size() * 2);
  int32_t rank = 0;
  for (const auto& m : merges) {
    std::string left, right;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t space = s.find(' ', 1);
      if (space == std::string::npos) fail(file, ": merge ", rank, " \"", s, "\" is not \"a b\"");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      fail(file, ": merge ", rank, " must be \"a b\" or [\"a\", \"b\"]");
    }
    int32_t l = vocab_.find(left), r = vocab_.find(right);
    if (l < 0 || r < 0)
      fail(file, ": merge ", rank, " uses a token missing from the vocabulary: \"", left, " ", right, "\"");
    std::string merged = left + right.substr(std::min(right.size(), continuing_subword_prefix_.size()));
    int32_t n = vocab_.find(merged);
    if (n < 0) fail(file, ": merge ", rank, " makes \"", merged, "\", which is not in the vocabulary");
    merges_[pair_key(l, r)] = Merge{rank, n};
    ++rank;
  }

  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_fallback_ids_[b] = vocab_.find(name);
  }
  for (int c = 0; c < 128; ++c) {
    ascii_ids_[c] = vocab_.find(std::string(1, static_cast<char>(c)));
  }
  if (unk_token_ && vocab_.find(*unk_token_) < 0)
    fail(file, ": model.unk_token \"", *unk_token_, "\" is not in the vocabulary");
}

std::optional<int64_t> BpeModel::token_to_id(std::string_view token) const {
  int32_t id = vocab_.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

const std::string* BpeModel::id_to_token(int64_t id) const {
  if (id < 0 || id >= size()) return nullptr;
  const std::string& t = id_to_token_[id];
  if (t.empty() && vocab_.find(t) != id) return nullptr;  // a hole in the id range
  return &t;
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

// The word's characters as initial symbols, as the library's merge_word does: a character
// not in the vocabulary becomes its <0xHH> byte tokens (byte_fallback) or the unknown token
// (consecutive unknowns fused with fuse_unk), or is dropped when there is no unk_token.
void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& ids,
                               std::vector<uint32_t>& lengths) const {
  const bool plain = continuing_subword_prefix_.empty() && end_of_word_suffix_.empty();
  int32_t unk_id = -1;
  uint32_t unk_length = 0;  // a pending unknown token not yet pushed
  std::string symbol;
  size_t pos = 0;
  while (pos < word.size()) {
    unsigned char lead = static_cast<unsigned char>(word[pos]);
    size_t n = unicode::sequence_length(lead);
    const bool first = pos == 0, last = pos + n == word.size();
    int32_t id = -1;
    if (plain && lead < 0x80) {
      id = ascii_ids_[lead];
      if (id < 0) symbol.assign(1, static_cast<char>(lead));
    } else {
      symbol.clear();
      if (!first) symbol += continuing_subword_prefix_;
      symbol.append(word.data() + pos, n);
      if (last) symbol += end_of_word_suffix_;
      id = vocab_.find(symbol);
    }
    if (id >= 0) {
      if (unk_id >= 0) {
        ids.push_back(unk_id);
        lengths.push_back(unk_length);
        unk_id = -1;
      }
      ids.push_back(id);
      lengths.push_back(static_cast<uint32_t>(n));
      pos += n;
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : symbol) all = all && byte_fallback_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : symbol) {
          ids.push_back(byte_fallback_ids_[b]);
          lengths.push_back(1);
        }
        pos += n;
        continue;
      }
    }
    if (unk_token_) {
      int32_t this_unk = vocab_.find(*unk_token_);
      if (unk_id >= 0 && fuse_unk_) {
        unk_length += static_cast<uint32_t>(n);
      } else {
        if (unk_id >= 0) {
          ids.push_back(unk_id);
          lengths.push_back(unk_length);
        }
        unk_id = this_unk;
        unk_length = static_cast<uint32_t>(n);
      }
    }
    pos += n;
  }
  if (unk_id >= 0) {
    ids.push_back(unk_id);
    lengths.push_back(unk_length);
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& ids) const {
  std::vector<uint32_t> lengths;
  initial_symbols(word, ids, lengths);
  if (ids.size() < 2) return;
  std::vector<Symbol> symbols(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    symbols[i] = Symbol{ids[i], static_cast<int32_t>(i) - 1,
                        i + 1 < ids.size() ? static_cast<int32_t>(i + 1) : -1, lengths[i]};
  }
  std::vector<QueuedMerge> heap_storage;
  heap_storage.reserve(symbols.size() * 2);
  std::priority_queue<QueuedMerge> queue(std::less<QueuedMerge>(), std::move(heap_storage));
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id))
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
  }
  while (!queue.empty()) {
    QueuedMerge top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.length == 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Skip entries made stale by an earlier merge.
    const Merge* current = find_merge(left.id, right.id);
    if (!current || current->new_id != top.new_id) continue;
    left.id = top.new_id;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* m = find_merge(symbols[left.prev].id, left.id))
        queue.push({m->rank, left.prev, m->new_id});
    }
    if (left.next >= 0) {
      if (const Merge* m = find_merge(left.id, symbols[left.next].id)) queue.push({m->rank, top.pos, m->new_id});
    }
  }
  ids.clear();
  for (const Symbol& s : symbols)
    if (s.length != 0) ids.push_back(s.id);
}

void BpeModel::tokenize(std::string_view word, std::vector<int64_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    int32_t id = vocab_.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  Shard* shard = nullptr;
  const uint64_t h = std::hash<std::string_view>()(word);
  if (cacheable) {
    shard = &cache_[h % kShards];
    std::lock_guard<std::mutex> lock(shard->mutex);
    auto it = shard->words.find(h);
    if (it != shard->words.end() && it->second.word == word) {
      out.insert(out.end(), it->second.ids.begin(), it->second.ids.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(shard->mutex);
    if (shard->words.size() < kShardCapacity) shard->words.emplace(h, CachedWord{std::string(word), std::move(ids)});
  }
}

}  // namespace spinlm
