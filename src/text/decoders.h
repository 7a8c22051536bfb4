// tokenizer.json "decoder": tokens back to text. ByteLevel, Metaspace, Replace, ByteFallback,
// Fuse, Strip and Sequence, each a step over the list of token strings as in the library.
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace spinlm {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// "null" gives nullptr; an unsupported type is an Error naming it and `file`.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& file);

}  // namespace spinlm
