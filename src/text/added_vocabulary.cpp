#include "text/added_vocabulary.h"

#include <algorithm>

#include "text/unicode.h"

namespace spinlm {
namespace {

// Start of the whitespace run that ends text (text.size() when none).
size_t trailing_space_start(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t n;
    if (!unicode::is_whitespace(unicode::decode_at(text, start, &n))) break;
    end = start;
  }
  return end;
}

// Byte length of the whitespace run that starts text.
size_t leading_space_length(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t n;
    if (!unicode::is_whitespace(unicode::decode_at(text, pos, &n))) break;
    pos += n;
  }
  return pos;
}

bool ends_with_word(std::string_view text) {
  if (text.empty()) return false;
  size_t start = text.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  size_t n;
  return unicode::is_word_character(unicode::decode_at(text, start, &n));
}

bool starts_with_word(std::string_view text) {
  if (text.empty()) return false;
  size_t n;
  return unicode::is_word_character(unicode::decode_at(text, 0, &n));
}

}  // namespace

void TokenMatcher::add(const std::string& pattern, int64_t token) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (unsigned char c : pattern) {
    auto& children = nodes_[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(c, int32_t{-1}));
    if (it != children.end() && it->first == c) {
      node = it->second;
    } else {
      int32_t next = static_cast<int32_t>(nodes_.size());
      children.insert(it, {c, next});
      nodes_.emplace_back();
      node = next;
    }
  }
  if (nodes_[node].token < 0) nodes_[node].token = token;  // the first of duplicates wins
  first_[static_cast<unsigned char>(pattern[0])] = true;
}

size_t TokenMatcher::longest_at(std::string_view text, size_t pos, int64_t* token) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& children = nodes_[node].children;
    unsigned char c = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(c, int32_t{-1}));
    if (it == children.end() || it->first != c) break;
    node = it->second;
    if (nodes_[node].token >= 0) {
      best = i + 1 - pos;
      *token = nodes_[node].token;
    }
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  // The library builds its matchers from the special tokens first, then the others.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const AddedToken& t = tokens_[i];
      if (t.special != (pass == 0)) continue;
      if (t.normalized) {
        normalized_.add(normalizer ? normalizer->normalize(t.content) : t.content, static_cast<int64_t>(i));
      } else {
        raw_.add(t.content, static_cast<int64_t>(i));
      }
    }
  }
}

void AddedVocabulary::split(std::string_view text, bool normalized_set, std::vector<Segment>& out) const {
  const TokenMatcher& matcher = normalized_set ? normalized_ : raw_;
  if (matcher.empty()) {
    if (!text.empty()) out.push_back({0, text.size(), -1});
    return;
  }
  size_t done = 0;  // end of the last emitted segment
  size_t pos = 0;   // where the matcher resumes (it never revisits a match it skipped)
  while (pos < text.size()) {
    if (!matcher.may_start(static_cast<unsigned char>(text[pos]))) {
      ++pos;
      continue;
    }
    int64_t index = -1;
    size_t length = matcher.longest_at(text, pos, &index);
    if (length == 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + length;
    pos = stop;
    const AddedToken& t = tokens_[index];
    if (t.single_word) {
      bool space_before = start == 0 || !ends_with_word(text.substr(0, start));
      bool space_after = stop == text.size() || !starts_with_word(text.substr(stop));
      if (!space_before || !space_after) continue;
    }
    if (t.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), done);
    if (t.rstrip) {
      stop += leading_space_length(text.substr(stop));
      pos = stop;
    }
    if (done < start) out.push_back({done, start, -1});
    out.push_back({start, stop, index});
    done = stop;
  }
  if (done < text.size()) out.push_back({done, text.size(), -1});
}

}  // namespace spinlm
