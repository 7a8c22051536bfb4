// Verifiers: whether a response answers a data row correctly, for tasks with a checkable
// answer. They serve verifier-filtered negatives (a SPIN extension borrowed from ReST-EM's
// filter, not the paper's method: a generated answer the verifier accepts is drawn again,
// since SPIN would otherwise push down the model's own correct answers) and exact match.
//   final_answer  the number after the response's last "#### " (data/arith_task.h) equals the
//                 row's final answer: its integer "answer" field, else the "#### N" of its
//                 last assistant message (GSM8K's convention)
//   solution      the response text equals one of the row's "solutions", else its assistant
//                 message
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace spinlm {

enum class Verifier { kFinalAnswer, kSolution };

// "final_answer" | "solution"; Error naming the value otherwise.
Verifier parse_verifier(const std::string& name);

// The row's final answer (see final_answer above); nullopt when it has none.
std::optional<int64_t> row_final_answer(const nlohmann::json& row);

// Error naming where when the row has nothing to check against.
bool verify_response(Verifier verifier, const nlohmann::json& row, const std::string& response,
                     const std::string& where);

}  // namespace spinlm
