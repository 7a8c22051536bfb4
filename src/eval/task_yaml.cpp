#include "eval/task_yaml.h"

#include <yaml-cpp/yaml.h>

#include <memory>
#include <regex>

#include "core/error.h"
#include "eval/doc_fields.h"
#include "eval/py_regex.h"
#include "eval/py_string.h"
#include "text/chat_template.h"

namespace spinlm {
namespace {

// A doc_to_* entry: a field name, a {{path}}, a Jinja template, a literal list or integer.
class DocValue {
 public:
  DocValue() = default;
  DocValue(const YAML::Node& node, const std::string& key, const std::string& file) : key_(key) {
    if (!node) return;
    set_ = true;
    if (node.IsSequence()) {
      literal_ = nlohmann::json::array();
      for (const auto& item : node) literal_.push_back(item.as<std::string>());
      return;
    }
    check(node.IsScalar(), file, ": '", key, "' must be a string, an integer or a list");
    const std::string text = node.as<std::string>();
    int64_t integer = 0;
    if (node.Tag() != "!" && YAML::convert<int64_t>::decode(node, integer) && py::is_digits(text)) {
      literal_ = integer;
      return;
    }
    source_ = text;
    static const std::regex simple_path(R"(^\{\{\s*([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*)\s*\}\}$)");
    std::smatch match;
    if (std::regex_match(text, match, simple_path)) {
      path_ = match[1].str();
    } else if (text.find("{{") != std::string::npos || text.find("{%") != std::string::npos) {
      template_ = std::make_shared<ChatTemplate>(text, file + ": " + key);
    }
  }

  bool set() const { return set_; }

  // The value for one row (a JSON string, number or list).
  nlohmann::json evaluate(const nlohmann::json& row, const std::string& where) const {
    if (!literal_.is_null()) return literal_;
    if (!path_.empty()) return resolve_path(row, where);
    if (template_) return template_->render_context(row);
    if (row.is_object() && row.contains(source_)) return row[source_];  // a field name
    return source_;  // a constant string
  }

 private:
  nlohmann::json resolve_path(const nlohmann::json& row, const std::string& where) const {
    const nlohmann::json* node = &row;
    size_t pos = 0;
    while (pos < path_.size()) {
      if (path_[pos] == '.') ++pos;
      if (path_[pos] == '[') {
        const size_t close = path_.find(']', pos);
        const size_t index = std::stoul(path_.substr(pos + 1, close - pos - 1));
        check(node->is_array() && index < node->size(), where, ": '", key_, "': index [", index, "] out of range in ",
              path_);
        node = &(*node)[index];
        pos = close + 1;
      } else {
        size_t end = pos;
        while (end < path_.size() && path_[end] != '.' && path_[end] != '[') ++end;
        const std::string name = path_.substr(pos, end - pos);
        check(node->is_object() && node->contains(name), where, ": missing field '", name, "' (", key_, ": ", path_,
              ")");
        node = &(*node)[name];
        pos = end;
      }
    }
    return *node;
  }

  std::string key_;
  bool set_ = false;
  nlohmann::json literal_;
  std::string source_;
  std::string path_;
  std::shared_ptr<ChatTemplate> template_;
};

std::string as_text(const nlohmann::json& value, const std::string& key, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  fail(where, ": '", key, "' must give a string, got ", value.dump());
}

std::vector<std::string> as_choices(const nlohmann::json& value, const std::string& where) {
  std::vector<std::string> choices;
  if (value.is_array()) {
    for (const auto& item : value) choices.push_back(as_text(item, "doc_to_choice", where));
  } else if (value.is_object()) {
    for (const auto& [k, item] : value.items()) choices.push_back(as_text(item, "doc_to_choice", where));
  } else {
    fail(where, ": 'doc_to_choice' must give a list (use a field or a {{path}} to a list), got ", value.dump());
  }
  check(!choices.empty(), where, ": 'doc_to_choice' gave no choices");
  return choices;
}

int64_t choice_index(const nlohmann::json& value, const std::vector<std::string>& choices, const std::string& key,
                     const std::string& where) {
  int64_t index = -1;
  if (value.is_number_integer()) {
    index = value.get<int64_t>();
  } else if (value.is_string() && py::is_digits(value.get<std::string>())) {
    index = std::stoll(value.get<std::string>());
  } else if (value.is_string()) {
    for (size_t i = 0; i < choices.size(); ++i) {
      if (choices[i] == value.get<std::string>()) index = static_cast<int64_t>(i);
    }
    check(index >= 0, where, ": '", key, "' gave \"", value.get<std::string>(), "\", which is not one of the choices");
  } else {
    fail(where, ": '", key, "' must give an index or a choice, got ", value.dump());
  }
  check_answer_index(index, choices.size(), key, where);
  return index;
}

template <class T>
T get_or(const YAML::Node& root, const std::string& key, const T& fallback, const std::string& file) {
  if (!root[key]) return fallback;
  try {
    return root[key].as<T>();
  } catch (const YAML::Exception&) {
    fail(file, ": '", key, "' has the wrong type");
  }
}

}  // namespace

TaskDefinition load_task_yaml(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    fail("task file not found: ", path);
  } catch (const YAML::Exception& e) {
    fail(path, ":", e.mark.line + 1, ": invalid YAML: ", e.msg);
  }
  check(root.IsMap(), path, ": a task file must be a YAML mapping");
  static const std::vector<std::string> known = {
      "task", "output_type", "data_file", "fewshot_file", "description", "doc_to_text", "doc_to_choice",
      "doc_to_target", "target_delimiter", "fewshot_delimiter", "num_fewshot", "fewshot_split", "test_split",
      "training_split", "validation_split", "fewshot_config", "metric_list", "mc2_labels", "generation_kwargs",
      "filter_list", "dataset_path", "dataset_name", "metadata", "group", "should_decontaminate",
      "doc_to_decontamination_query", "repeats", "add_bos"};
  for (const auto& entry : root) {
    const std::string key = entry.first.as<std::string>();
    check(std::find(known.begin(), known.end(), key) != known.end(), path, ": unknown key '", key,
          "' (see docs/eval.md for the supported subset of the harness's task YAML)");
  }

  TaskDefinition task;
  TaskConfig& config = task.config;
  config.name = get_or<std::string>(root, "task", "", path);
  check(!config.name.empty(), path, ": missing 'task' (the task's name)");
  const std::string output_type = get_or<std::string>(root, "output_type", "multiple_choice", path);
  check(output_type == "multiple_choice" || output_type == "generate_until", path, ": output_type '", output_type,
        "' is not supported (multiple_choice or generate_until)");
  config.output_type = output_type == "multiple_choice" ? OutputType::kMultipleChoice : OutputType::kGenerateUntil;
  config.data_file = get_or<std::string>(root, "data_file", config.name + ".jsonl", path);
  config.fewshot_file = get_or<std::string>(root, "fewshot_file", config.name + ".fewshot.jsonl", path);
  config.description = get_or<std::string>(root, "description", "", path);
  config.target_delimiter = get_or<std::string>(root, "target_delimiter", " ", path);
  config.fewshot_delimiter = get_or<std::string>(root, "fewshot_delimiter", "\n\n", path);
  config.num_fewshot = get_or<int>(root, "num_fewshot", 0, path);
  config.add_bos = get_or<bool>(root, "add_bos", false, path);
  // The harness compares the split names; unset ones are None == None.
  config.fewshot_draws_extra = get_or<std::string>(root, "fewshot_split", "\x01", path) ==
                               get_or<std::string>(root, "test_split", "\x01", path);
  if (root["fewshot_config"] && root["fewshot_config"]["sampler"]) {
    const std::string sampler = root["fewshot_config"]["sampler"].as<std::string>();
    check(sampler == "first_n" || sampler == "default", path, ": fewshot_config.sampler '", sampler,
          "' is not supported (default or first_n)");
    config.sampler = sampler == "first_n" ? FewshotSamplerKind::kFirstN : FewshotSamplerKind::kRandom;
  }
  if (root["metadata"] && root["metadata"]["version"]) config.version = root["metadata"]["version"].as<double>();

  if (root["metric_list"]) {
    for (const auto& entry : root["metric_list"]) {
      const std::string metric = entry["metric"] ? entry["metric"].as<std::string>() : "";
      const bool mc = config.output_type == OutputType::kMultipleChoice;
      check((mc && (metric == "acc" || metric == "acc_norm" || metric == "mc2")) || (!mc && metric == "exact_match"),
            path, ": metric '", metric, "' is not supported for ", output_type,
            mc ? " (acc, acc_norm, mc2)" : " (exact_match)");
      config.metrics.push_back(metric);
      if (metric == "exact_match") {
        config.exact_match.ignore_case = get_or<bool>(entry, "ignore_case", false, path);
        config.exact_match.ignore_punctuation = get_or<bool>(entry, "ignore_punctuation", false, path);
        if (entry["regexes_to_ignore"]) {
          for (const auto& regex : entry["regexes_to_ignore"]) {
            config.exact_match.regexes_to_ignore.push_back(regex.as<std::string>());
            py::Regex check_pattern(regex.as<std::string>());  // fail now on a bad pattern
          }
        }
      }
    }
  } else {
    config.metrics = {config.output_type == OutputType::kMultipleChoice ? "acc" : "exact_match"};
  }
  if (root["generation_kwargs"]) {
    const auto& kwargs = root["generation_kwargs"];
    if (kwargs["until"]) {
      if (kwargs["until"].IsSequence()) {
        for (const auto& stop : kwargs["until"]) config.generation.until.push_back(stop.as<std::string>());
      } else {
        config.generation.until.push_back(kwargs["until"].as<std::string>());
      }
    }
    config.generation.max_gen_toks = get_or<int64_t>(kwargs, "max_gen_toks", 256, path);
  }
  if (root["filter_list"]) {
    check(root["filter_list"].size() == 1, path, ": exactly one filter_list entry is supported");
    const auto& entry = root["filter_list"][0];
    config.filter.name = get_or<std::string>(entry, "name", "none", path);
    for (const auto& step : entry["filter"]) {
      const std::string function = step["function"].as<std::string>();
      if (function == "regex") {
        config.filter.regex_pattern = step["regex_pattern"].as<std::string>();
        config.filter.group_select = get_or<int>(step, "group_select", 0, path);
        config.filter.fallback = get_or<std::string>(step, "fallback", "[invalid]", path);
        py::Regex check_pattern(config.filter.regex_pattern);
      } else {
        check(function == "take_first", path, ": filter function '", function,
              "' is not supported (regex, take_first)");
      }
    }
  }

  const DocValue text(root["doc_to_text"], "doc_to_text", path);
  const DocValue target(root["doc_to_target"], "doc_to_target", path);
  const DocValue choice(root["doc_to_choice"], "doc_to_choice", path);
  const std::string mc2_labels = get_or<std::string>(root, "mc2_labels", "", path);
  check(text.set(), path, ": missing 'doc_to_text'");
  check(target.set(), path, ": missing 'doc_to_target'");
  const bool multiple_choice = config.output_type == OutputType::kMultipleChoice;
  check(!multiple_choice || choice.set(), path, ": a multiple_choice task needs 'doc_to_choice'");
  for (const auto& metric : config.metrics) {
    check(metric != "mc2" || !mc2_labels.empty(), path, ": metric mc2 needs 'mc2_labels' (the field of 1/0 labels)");
  }
  task.process = [text, target, choice, multiple_choice, mc2_labels](const nlohmann::json& row,
                                                                     const std::string& where) {
    EvalDoc doc;
    const nlohmann::json text_value = text.evaluate(row, where);
    if (!multiple_choice) {
      doc.text = as_text(text_value, "doc_to_text", where);
      doc.target = as_text(target.evaluate(row, where), "doc_to_target", where);
      return doc;
    }
    doc.choices = as_choices(choice.evaluate(row, where), where);
    const bool index_text = text_value.is_number_integer() ||
                            (text_value.is_string() && py::is_digits(text_value.get<std::string>()));
    if (index_text) {
      doc.multiple_input = true;
      doc.gold = choice_index(text_value, doc.choices, "doc_to_text", where);
      doc.target = as_text(target.evaluate(row, where), "doc_to_target", where);
    } else {
      doc.text = as_text(text_value, "doc_to_text", where);
      doc.gold = choice_index(target.evaluate(row, where), doc.choices, "doc_to_target", where);
    }
    if (!mc2_labels.empty()) {
      const auto& labels = doc_field(row, mc2_labels, where);
      check(labels.is_array() && labels.size() == doc.choices.size(), where, ": '", mc2_labels,
            "' must be a list as long as the choices");
      for (const auto& label : labels) {
        check(label.is_number_integer(), where, ": '", mc2_labels, "' must hold 0/1 integers");
        doc.mc2_labels.push_back(label.get<int>());
      }
    }
    return doc;
  };
  return task;
}

}  // namespace spinlm
