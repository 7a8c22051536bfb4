// Added tokens of a tokenizer.json ("added_tokens"): found in the input before the model sees
// it, as the library's AddedVocabulary does. Tokens with normalized=false are matched in the
// raw text; the others in the normalized text, against their normalized content. Matching is
// leftmost-longest; single_word, lstrip and rstrip refine each match.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/normalizers.h"

namespace spinlm {

struct AddedToken {
  std::string content;
  int64_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A piece of a text: [start, end) bytes, and the added token it is, if any.
struct Segment {
  size_t start = 0;
  size_t end = 0;
  int64_t token = -1;  // index into the token list, or -1 for plain text
};

// Leftmost-longest matcher over a set of strings (a byte trie).
class TokenMatcher {
 public:
  void add(const std::string& pattern, int64_t token);
  bool empty() const { return nodes_.size() <= 1; }
  // Longest pattern starting at text[pos]: its length, or 0; *token receives its token.
  size_t longest_at(std::string_view text, size_t pos, int64_t* token) const;
  bool may_start(unsigned char c) const { return first_[c]; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
    int64_t token = -1;
  };
  std::vector<Node> nodes_ = std::vector<Node>(1);
  bool first_[256] = {};
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }
  // Splits text on the raw (normalized=false) or the normalized tokens.
  void split(std::string_view text, bool normalized_set, std::vector<Segment>& out) const;

 private:
  std::vector<AddedToken> tokens_;
  TokenMatcher raw_;
  TokenMatcher normalized_;
};

}  // namespace spinlm
