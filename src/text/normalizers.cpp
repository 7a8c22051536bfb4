#include "text/normalizers.h"

#include <vector>

#include "core/error.h"
#include "text/pattern.h"
#include "text/unicode.h"

namespace spinlm {
namespace {

class UnicodeForm : public Normalizer {
 public:
  explicit UnicodeForm(std::string (*form)(std::string_view)) : form_(form) {}
  std::string normalize(const std::string& text) const override { return form_(text); }

 private:
  std::string (*form_)(std::string_view);
};

class Lowercase : public Normalizer {
 public:
  std::string normalize(const std::string& text) const override { return unicode::lowercase(text); }
};

// Prepends a string to non-empty text (SentencePiece's "▁" before the first word).
class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(const std::string& text) const override {
    return text.empty() ? text : prefix_ + text;
  }

 private:
  std::string prefix_;
};

class Replace : public Normalizer {
 public:
  Replace(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(const std::string& text) const override {
    return pattern_.replace_all(text, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Removes whitespace (Rust char::is_whitespace) on the left and/or right.
class Strip : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(const std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t n;
        char32_t cp = unicode::decode_at(text, begin, &n);
        if (!unicode::is_whitespace(cp)) break;
        begin += n;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t n;
        char32_t cp = unicode::decode_at(text, start, &n);
        if (!unicode::is_whitespace(cp)) break;
        end = start;
      }
    }
    return text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class Sequence : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  std::string normalize(const std::string& text) const override {
    std::string current = text;
    for (const auto& step : steps_) current = step->normalize(current);
    return current;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  const std::string where = file + ": normalizer " + type;
  if (type == "NFC") return std::make_unique<UnicodeForm>(&unicode::nfc);
  if (type == "NFD") return std::make_unique<UnicodeForm>(&unicode::nfd);
  if (type == "NFKC") return std::make_unique<UnicodeForm>(&unicode::nfkc);
  if (type == "NFKD") return std::make_unique<UnicodeForm>(&unicode::nfkd);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Prepend") return std::make_unique<Prepend>(j.at("prepend").get<std::string>());
  if (type == "Replace") {
    return std::make_unique<Replace>(Pattern::from_json(j.at("pattern"), where),
                                     j.at("content").get<std::string>());
  }
  if (type == "Strip") {
    return std::make_unique<Strip>(j.value("strip_left", true), j.value("strip_right", true));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& step : j.at("normalizers")) {
      auto n = make_normalizer(step, file);
      if (n) steps.push_back(std::move(n));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  fail(file, ": unsupported normalizer type \"", type, "\" (supported: NFC, NFD, NFKC, NFKD, ",
       "Lowercase, Prepend, Replace, Strip, Sequence)");
}

}  // namespace spinlm
