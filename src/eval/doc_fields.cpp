#include "eval/doc_fields.h"

#include "core/error.h"
#include "eval/py_string.h"

namespace spinlm {

const nlohmann::json& doc_field(const nlohmann::json& row, const std::string& path, const std::string& where) {
  // Dotted paths walk nested objects: "mc2_targets.choices".
  const nlohmann::json* node = &row;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    check(node->is_object() && node->contains(key), where, ": missing field '", path, "'");
    node = &(*node)[key];
    if (dot == std::string::npos) return *node;
    start = dot + 1;
  }
}

std::string doc_string(const nlohmann::json& row, const std::string& path, const std::string& where) {
  const auto& value = doc_field(row, path, where);
  check(value.is_string(), where, ": field '", path, "' must be a string, got ", value.dump());
  return value.get<std::string>();
}

std::vector<std::string> doc_strings(const nlohmann::json& row, const std::string& path, const std::string& where) {
  const auto& value = doc_field(row, path, where);
  check(value.is_array(), where, ": field '", path, "' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : value) {
    check(item.is_string(), where, ": field '", path, "' must be a list of strings, got item ", item.dump());
    out.push_back(item.get<std::string>());
  }
  return out;
}

int64_t doc_integer(const nlohmann::json& row, const std::string& path, const std::string& where) {
  const auto& value = doc_field(row, path, where);
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_string() && py::is_digits(value.get<std::string>()) && value.get<std::string>().size() < 18) {
    return std::stoll(value.get<std::string>());
  }
  fail(where, ": field '", path, "' must be an integer, got ", value.dump());
}

void check_answer_index(int64_t index, size_t count, const std::string& path, const std::string& where) {
  check(index >= 0 && index < static_cast<int64_t>(count), where, ": answer index ", index, " in field '", path,
        "' is out of range for ", count, " choices");
}

}  // namespace spinlm
