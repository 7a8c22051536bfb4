#include "text/decoders.h"

#include "core/error.h"
#include "io/json_text.h"
#include "text/byte_level.h"
#include "text/pattern.h"
#include "text/unicode.h"

namespace spinlm {
namespace {

// Characters back to bytes; a token with a character outside the map keeps its own bytes.
// Invalid UTF-8 in the result becomes U+FFFD.
class ByteLevel : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      size_t mark = bytes.size();
      size_t pos = 0;
      bool mapped = true;
      while (pos < t.size()) {
        size_t n;
        int b = byte_level::char_to_byte(unicode::decode_at(t, pos, &n));
        if (b < 0) {
          mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
        pos += n;
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, unicode::from_utf8_lossy(bytes));
  }
};

// Replacement character back to spaces; dropped in the first token unless nothing was
// prepended when encoding.
class Metaspace : public Decoder {
 public:
  Metaspace(std::string replacement, bool drop_first) : replacement_(std::move(replacement)), drop_first_(drop_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    Pattern rep = Pattern::literal(replacement_);
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = rep.replace_all(tokens[i], i == 0 && drop_first_ ? "" : " ");
    }
  }

 private:
  std::string replacement_;
  bool drop_first_;
};

class Replace : public Decoder {
 public:
  Replace(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = pattern_.replace_all(t, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of <0xHH> tokens become their bytes when those are valid UTF-8, else one U+FFFD per byte.
class ByteFallback : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    size_t byte_count = 0;
    auto flush = [&] {
      if (byte_count == 0) return;
      if (unicode::find_invalid_utf8(bytes) == std::string::npos) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < byte_count; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      bytes.clear();
      byte_count = 0;
    };
    for (auto& t : tokens) {
      int value = byte_value(t);
      if (value >= 0) {
        bytes.push_back(static_cast<char>(value));
        ++byte_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  static int byte_value(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class Fuse : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing occurrences of one character per token.
class Strip : public Decoder {
 public:
  Strip(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::vector<std::pair<size_t, char32_t>> chars;  // (byte offset, code point)
      size_t pos = 0;
      while (pos < t.size()) {
        size_t n;
        chars.emplace_back(pos, unicode::decode_at(t, pos, &n));
        pos += n;
      }
      size_t first = 0;
      while (first < start_ && first < chars.size() && chars[first].second == content_) ++first;
      size_t last = chars.size();
      for (size_t i = 0; i < stop_ && last > first && chars[last - 1].second == content_; ++i) --last;
      size_t begin = first < chars.size() ? chars[first].first : t.size();
      size_t end = last < chars.size() ? chars[last].first : t.size();
      t = end > begin ? t.substr(begin, end - begin) : std::string();
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class Sequence : public Decoder {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  const std::string where = file + ": decoder " + type;
  if (type == "ByteLevel") return std::make_unique<ByteLevel>();
  if (type == "Metaspace") {
    bool drop_first = true;
    if (j.contains("prepend_scheme")) {
      drop_first = j["prepend_scheme"].get<std::string>() != "never";
    } else if (j.contains("add_prefix_space")) {
      drop_first = j["add_prefix_space"].get<bool>();
    }
    return std::make_unique<Metaspace>(j.value("replacement", std::string("\xE2\x96\x81")), drop_first);
  }
  if (type == "Replace") {
    return std::make_unique<Replace>(Pattern::from_json(j.at("pattern"), where), j.at("content").get<std::string>());
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallback>();
  if (type == "Fuse") return std::make_unique<Fuse>();
  if (type == "Strip") {
    std::string content = j.at("content").get<std::string>();
    size_t n = 0;
    if (content.empty() || unicode::find_invalid_utf8(content) != std::string::npos)
      fail(where, ": content must be one character");
    char32_t cp = unicode::decode_at(content, 0, &n);
    if (n != content.size()) fail(where, ": content must be one character");
    const int64_t start = json_integer(j.at("start"), where + ": start");
    const int64_t stop = json_integer(j.at("stop"), where + ": stop");
    if (start < 0 || stop < 0) fail(where, ": start and stop must not be negative");
    return std::make_unique<Strip>(cp, static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const auto& step : j.at("decoders")) {
      auto d = make_decoder(step, file);
      if (d) steps.push_back(std::move(d));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  fail(file, ": unsupported decoder type \"", type, "\" (supported: ByteLevel, Metaspace, Replace, ",
       "ByteFallback, Fuse, Strip, Sequence)");
}

}  // namespace spinlm
