// Jinja2 lexer: splits a template into text and tag tokens the way jinja2's lexer does with
// trim_blocks=True and lstrip_blocks=True (whitespace control with '-' and '+', comments,
// {% raw %}, newline normalisation and the dropped final newline).
#pragma once
#include <string>
#include <vector>

namespace spinlm::jinja {

enum class TokenType {
  Text,        // template data
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,      // value: the decoded string
  Integer,
  Float,
  Operator,    // value: the operator text, e.g. "==", "(", "|"
  End,         // end of the template
};

struct Token {
  TokenType type;
  std::string value;
  int line;
};

// A syntax error with the line it was found on.
struct SyntaxError {
  std::string message;
  int line;
};

// Throws SyntaxError.
std::vector<Token> tokenize(const std::string& source);

}  // namespace spinlm::jinja
