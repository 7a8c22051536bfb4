// A read-only map from strings to ids with lookups by string_view that allocate nothing:
// open addressing over one arena of key bytes (the vocabulary lookups of BPE are the hottest
// path of encoding, and std::unordered_map<std::string, int> needs a std::string per lookup).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace spinlm {

class StringIndex {
 public:
  // Adds or replaces a key (before or after lookups; not thread-safe with them).
  void insert(std::string_view key, int32_t id);
  // The id of key, or -1.
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    uint64_t h = hash(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.hash == h && s.length == key.size() && std::string_view(arena_.data() + s.offset, s.length) == key)
        return s.id;
    }
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0;
    uint32_t length = 0;
    int32_t id = -1;
  };
  static uint64_t hash(std::string_view key) { return std::hash<std::string_view>()(key); }
  void grow();

  std::vector<Slot> slots_;
  std::string arena_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

}  // namespace spinlm
