// Jinja2 parser: tokens to a syntax tree, with jinja2's operator precedence
// (or < and < not < comparisons < + - < ~ < * / // % < ** < unary < postfix, filters, tests).
#pragma once
#include <memory>
#include <string>

#include "text/jinja_ast.h"

namespace spinlm::jinja {

// Throws SyntaxError (see jinja_lexer.h) with the line of the offending token.
std::shared_ptr<Program> parse_template(const std::string& source);

}  // namespace spinlm::jinja
