#include "text/pre_tokenizers.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "core/error.h"
#include "text/byte_level.h"
#include "text/pattern.h"
#include "text/unicode.h"

namespace spinlm {
namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return Behavior::Removed;
  if (name == "Isolated") return Behavior::Isolated;
  if (name == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::MergedWithNext;
  if (name == "Contiguous") return Behavior::Contiguous;
  fail(where, ": unsupported split behavior \"", name, "\"");
}

struct Span {
  size_t start, end;
  bool is_match;
};

// Covers text with the matches and the gaps between them, as the library's
// Pattern::find_matches does.
void cover(size_t length, const std::vector<std::pair<size_t, size_t>>& matches, bool invert, std::vector<Span>& spans) {
  spans.clear();
  if (length == 0) {
    spans.push_back({0, 0, invert});
    return;
  }
  size_t prev = 0;
  for (auto [s, e] : matches) {
    if (s != prev) spans.push_back({prev, s, invert});
    spans.push_back({s, e, !invert});
    prev = e;
  }
  if (prev != length) spans.push_back({prev, length, invert});
}

// Applies a split behaviour to covering spans; out receives the kept [start, end) ranges.
void apply_behavior(const std::vector<Span>& spans, Behavior behavior, std::vector<std::pair<size_t, size_t>>& out) {
  out.clear();
  bool previous_match = false;
  switch (behavior) {
    case Behavior::Removed:
      for (const auto& s : spans)
        if (!s.is_match) out.emplace_back(s.start, s.end);
      break;
    case Behavior::Isolated:
      for (const auto& s : spans) out.emplace_back(s.start, s.end);
      break;
    case Behavior::MergedWithPrevious:
      for (const auto& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.start, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().first = it->start;
        } else {
          out.emplace_back(it->start, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    case Behavior::Contiguous:
      for (const auto& s : spans) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.start, s.end);
        }
        previous_match = s.is_match;
      }
      break;
  }
}

// Splits every piece with `find` (which lists the matches of one piece) and `behavior`.
void split_pieces(std::vector<Piece>& pieces,
                  const std::function<void(std::string_view, std::vector<std::pair<size_t, size_t>>&)>& find,
                  Behavior behavior, bool invert) {
  std::vector<Piece> result;
  result.reserve(pieces.size() * 4);
  // Scratch buffers reused across calls on this thread.
  thread_local std::vector<std::pair<size_t, size_t>> matches, kept;
  thread_local std::vector<Span> spans;
  for (auto& piece : pieces) {
    matches.clear();
    find(piece.text, matches);
    cover(piece.text.size(), matches, invert, spans);
    apply_behavior(spans, behavior, kept);
    for (auto [s, e] : kept) {
      if (e > s) result.push_back({piece.text.substr(s, e - s), piece.at_origin && s == 0});
    }
  }
  pieces.swap(result);
}

// Matches every character for which `pred` holds, one match per character.
auto char_matcher(bool (*pred)(char32_t)) {
  return [pred](std::string_view text, std::vector<std::pair<size_t, size_t>>& out) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t n;
      char32_t cp = unicode::decode_at(text, pos, &n);
      if (pred(cp)) out.emplace_back(pos, pos + n);
      pos += n;
    }
  };
}

void word_or_symbol_runs(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) {
  int run_kind = 0;  // 0 none, 1 word characters, 2 other non-space characters
  size_t pos = 0;
  while (pos < text.size()) {
    size_t n;
    char32_t cp = unicode::decode_at(text, pos, &n);
    int kind = unicode::is_word_character(cp) ? 1 : unicode::is_whitespace(cp) ? 0 : 2;
    if (kind != 0 && kind == run_kind) {
      out.back().second = pos + n;
    } else if (kind != 0) {
      out.emplace_back(pos, pos + n);
    }
    run_kind = kind;
    pos += n;
  }
}

class Split : public PreTokenizer {
 public:
  Split(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, [this](std::string_view t, auto& out) { pattern_.find_all(t, out); }, behavior_, invert_);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::make_unique<Regex>(byte_level::gpt2_regex()) : nullptr) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (auto& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, 1, ' ');
    }
    if (regex_) {
      split_pieces(pieces, [this](std::string_view t, auto& out) { regex_->find_all(t, out); },
                   Behavior::Isolated, false);
    }
    for (auto& p : pieces) p.text = byte_level::encode(p.text);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

enum class PrependScheme { Always, First, Never };

class Metaspace : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    Pattern space = Pattern::literal(" ");
    for (auto& p : pieces) {
      p.text = space.replace_all(p.text, replacement_);
      bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_origin))) {
        p.text.insert(0, replacement_);
      }
    }
    if (split_) {
      Pattern rep = Pattern::literal(replacement_);
      split_pieces(pieces, [&rep](std::string_view t, auto& out) { rep.find_all(t, out); },
                   Behavior::MergedWithNext, false);
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class Sequence : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

// Splits with a per-piece matcher and fixed behaviour (Digits, WhitespaceSplit, ...).
class FunctionSplit : public PreTokenizer {
 public:
  using Finder = std::function<void(std::string_view, std::vector<std::pair<size_t, size_t>>&)>;
  FunctionSplit(Finder find, Behavior behavior, bool invert)
      : find_(std::move(find)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, find_, behavior_, invert_);
  }

 private:
  Finder find_;
  Behavior behavior_;
  bool invert_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  const std::string where = file + ": pre_tokenizer " + type;
  if (type == "Split") {
    return std::make_unique<Split>(Pattern::from_json(j.at("pattern"), where),
                                   parse_behavior(j.at("behavior").get<std::string>(), where),
                                   j.value("invert", false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevel>(j.value("add_prefix_space", true), j.value("use_regex", true));
  }
  if (type == "Metaspace") {
    PrependScheme scheme = PrependScheme::Always;
    if (j.contains("prepend_scheme")) {
      std::string s = j["prepend_scheme"].get<std::string>();
      if (s == "always") scheme = PrependScheme::Always;
      else if (s == "first") scheme = PrependScheme::First;
      else if (s == "never") scheme = PrependScheme::Never;
      else fail(where, ": unknown prepend_scheme \"", s, "\"");
    } else if (j.contains("add_prefix_space")) {
      scheme = j["add_prefix_space"].get<bool>() ? PrependScheme::Always : PrependScheme::Never;
    }
    std::string replacement = j.value("replacement", std::string("\xE2\x96\x81"));
    return std::make_unique<Metaspace>(replacement, scheme, j.value("split", true));
  }
  if (type == "Digits") {
    bool individual = j.value("individual_digits", false);
    return std::make_unique<FunctionSplit>(char_matcher(&unicode::is_numeric),
                                           individual ? Behavior::Isolated : Behavior::Contiguous, false);
  }
  if (type == "Whitespace") {
    // The library's regex \w+|[^\w\s]+ (Rust regex classes): runs of word characters or
    // runs of other non-space characters are kept, whitespace removed.
    return std::make_unique<FunctionSplit>(&word_or_symbol_runs, Behavior::Removed, true);
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<FunctionSplit>(char_matcher(&unicode::is_whitespace), Behavior::Removed, false);
  }
  if (type == "Punctuation") {
    return std::make_unique<FunctionSplit>(char_matcher(&unicode::is_punctuation),
                                           parse_behavior(j.value("behavior", std::string("Isolated")), where),
                                           false);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& step : j.at("pretokenizers")) {
      auto p = make_pre_tokenizer(step, file);
      if (p) steps.push_back(std::move(p));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  fail(file, ": unsupported pre_tokenizer type \"", type, "\" (supported: Split, ByteLevel, Metaspace, ",
       "Digits, Whitespace, WhitespaceSplit, Punctuation, Sequence)");
}

}  // namespace spinlm
