// Typed access to task rows for the doc processors: every error names the place
// ("FILE:LINE") and the field path ("choices.label").
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace spinlm {

const nlohmann::json& doc_field(const nlohmann::json& row, const std::string& path, const std::string& where);
std::string doc_string(const nlohmann::json& row, const std::string& path, const std::string& where);
std::vector<std::string> doc_strings(const nlohmann::json& row, const std::string& path, const std::string& where);
// An integer, or a string of decimal digits (HF datasets keep some labels as "1").
int64_t doc_integer(const nlohmann::json& row, const std::string& path, const std::string& where);
// Checks 0 <= index < count, naming the field when not.
void check_answer_index(int64_t index, size_t count, const std::string& path, const std::string& where);

}  // namespace spinlm
