#include "eval/prompt_builder.h"

#include "core/error.h"

namespace spinlm {

std::string fewshot_example(const TaskConfig& config, const EvalDoc& doc) {
  if (config.output_type == OutputType::kGenerateUntil) return doc.text + config.target_delimiter + doc.target;
  // doc_to_text is the gold index when multiple_input: the example is that choice's
  // context followed by the shared continuation.
  if (doc.multiple_input) return doc.choices.at(doc.gold) + config.target_delimiter + doc.target;
  return doc.text + config.target_delimiter + doc.choices.at(doc.gold);
}

std::string fewshot_prefix(const TaskConfig& config, const EvalDoc& doc, const std::vector<const EvalDoc*>& shots) {
  std::string prefix = doc.description.empty() ? config.description : doc.description;
  for (const EvalDoc* shot : shots) prefix += fewshot_example(config, *shot) + config.fewshot_delimiter;
  return prefix;
}

std::vector<std::pair<std::string, std::string>> loglikelihood_requests(const TaskConfig& config, const EvalDoc& doc,
                                                                        const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> requests;
  for (const auto& choice : doc.choices) {
    if (doc.multiple_input) {
      requests.emplace_back(prefix + choice, config.target_delimiter + doc.target);
    } else {
      requests.emplace_back(prefix + doc.text, config.target_delimiter + choice);
    }
  }
  return requests;
}

std::string generation_context(const EvalDoc& doc, const std::string& prefix) { return prefix + doc.text; }

}  // namespace spinlm
