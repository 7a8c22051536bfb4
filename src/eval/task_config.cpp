#include "eval/task_config.h"

namespace spinlm {

nlohmann::json TaskConfig::to_json() const {
  nlohmann::json out = {
      {"task", name},
      {"output_type", output_type == OutputType::kMultipleChoice ? "multiple_choice" : "generate_until"},
      {"description", description},
      {"target_delimiter", target_delimiter},
      {"fewshot_delimiter", fewshot_delimiter},
      {"num_fewshot", num_fewshot},
      {"fewshot_config", {{"sampler", sampler == FewshotSamplerKind::kFirstN ? "first_n" : "default"}}},
      {"metric_list", nlohmann::json::array()},
      {"metadata", {{"version", version}}},
  };
  for (const auto& metric : metrics) {
    nlohmann::json entry = {{"metric", metric}, {"aggregation", "mean"}, {"higher_is_better", true}};
    if (metric == "exact_match") {
      entry["ignore_case"] = exact_match.ignore_case;
      entry["ignore_punctuation"] = exact_match.ignore_punctuation;
      entry["regexes_to_ignore"] = exact_match.regexes_to_ignore;
    }
    out["metric_list"].push_back(entry);
  }
  if (output_type == OutputType::kGenerateUntil) {
    out["generation_kwargs"] = {{"until", generation.until}, {"max_gen_toks", generation.max_gen_toks},
                                {"do_sample", false}};
    if (!filter.regex_pattern.empty()) {
      out["filter_list"] = nlohmann::json::array(
          {{{"name", filter.name},
            {"filter", nlohmann::json::array({{{"function", "regex"}, {"regex_pattern", filter.regex_pattern}},
                                              {{"function", "take_first"}}})}}});
    }
  }
  return out;
}

}  // namespace spinlm
