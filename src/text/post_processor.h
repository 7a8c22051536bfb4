// tokenizer.json "post_processor", applied when encoding with add_special_tokens:
// TemplateProcessing (its "single" template), ByteLevel (ids unchanged), RobertaProcessing,
// BertProcessing and Sequence.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace spinlm {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens around one sequence of ids.
  virtual std::vector<int64_t> process(std::vector<int64_t> ids) const = 0;
};

// "null" gives nullptr; an unsupported type is an Error naming it and `file`.
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j, const std::string& file);

}  // namespace spinlm
