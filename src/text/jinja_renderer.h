// Jinja2 renderer: walks the syntax tree with jinja2's scoping (each loop iteration and each
// macro call gets its own scope; if-blocks do not), loop variables, loop controls, macros,
// call blocks and namespaces, and the globals transformers provides (raise_exception,
// strftime_now) next to jinja2's own (range, namespace, dict).
#pragma once
#include <string>

#include "text/jinja_ast.h"
#include "text/jinja_value.h"

namespace spinlm::jinja {

// Renders with `context` (a Dict value) as the template's variables. Throws JinjaError with
// the line of the failing statement.
std::string render_program(const Program& program, const Value& context);

}  // namespace spinlm::jinja
