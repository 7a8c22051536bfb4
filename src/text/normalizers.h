// tokenizer.json "normalizer": NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip and
// Sequence of them, applied to each piece of text between added tokens.
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace spinlm {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(const std::string& text) const = 0;
};

// Builds the normalizer of a tokenizer.json ("null" gives nullptr). An unsupported type is an
// Error naming it and `file`.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& file);

}  // namespace spinlm
