#include "data/verifier.h"

#include "core/error.h"
#include "data/arith_task.h"

namespace spinlm {
namespace {

// The content of the row's last assistant message ("messages", a pair's "real", or "response").
std::optional<std::string> assistant_text(const nlohmann::json& row) {
  for (const char* field : {"messages", "real"}) {
    if (!row.contains(field) || !row[field].is_array()) continue;
    std::optional<std::string> text;
    for (const nlohmann::json& m : row[field])
      if (m.is_object() && m.value("role", "") == "assistant" && m.contains("content") && m["content"].is_string())
        text = m["content"].get<std::string>();
    if (text) return text;
  }
  if (row.contains("response") && row["response"].is_string()) return row["response"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Verifier parse_verifier(const std::string& name) {
  if (name == "final_answer") return Verifier::kFinalAnswer;
  if (name == "solution") return Verifier::kSolution;
  fail("unknown verifier '", name, "' (known: final_answer, solution)");
}

std::optional<int64_t> row_final_answer(const nlohmann::json& row) {
  if (row.contains("answer") && row["answer"].is_number_integer()) return row["answer"].get<int64_t>();
  if (const std::optional<std::string> text = assistant_text(row)) return extract_final_answer(*text);
  return std::nullopt;
}

bool verify_response(Verifier verifier, const nlohmann::json& row, const std::string& response,
                     const std::string& where) {
  if (verifier == Verifier::kFinalAnswer) {
    const std::optional<int64_t> answer = row_final_answer(row);
    check(answer.has_value(), where,
          ": the row has no final answer to verify against (an integer \"answer\" field or \"#### N\" in the "
          "assistant message)");
    return arith_answer_correct(response, *answer);
  }
  if (row.contains("solutions") && row["solutions"].is_array()) {
    for (const nlohmann::json& s : row["solutions"])
      if (s.is_string() && s.get<std::string>() == response) return true;
    return false;
  }
  const std::optional<std::string> text = assistant_text(row);
  check(text.has_value(), where, ": the row has no \"solutions\" and no assistant answer to verify against");
  return *text == response;
}

}  // namespace spinlm
