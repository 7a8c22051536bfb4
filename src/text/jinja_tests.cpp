// jinja2's tests: the names after `is` (`x is defined`, `n is divisibleby 3`, ...).
#include "text/jinja_builtins.h"
#include "text/jinja_utf8.h"

namespace spinlm::jinja {
namespace {

const Value& required(const CallArgs& args, const std::string& test) {
  const Value* v = args.get(0, "other");
  if (v == nullptr) raise("test '" + test + "' needs an argument");
  return *v;
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Kind::String:
      if (!item.is_string()) raise("'in <string>' requires string as left operand, not " + type_name(item));
      return find_text(container.text, item.text) != std::string::npos;
    case Kind::List: case Kind::Tuple:
      for (const Value& v : *container.list) {
        if (equals(v, item)) return true;
      }
      return false;
    case Kind::Dict: return container.dict->find(item) != nullptr;
    case Kind::Undefined: return false;
    default: raise("argument of type '" + type_name(container) + "' is not iterable");
  }
}

}  // namespace

bool value_contains(const Value& container, const Value& item) { return contains(container, item); }

bool call_test(const std::string& name, const Value& v, const CallArgs& args) {
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind == Kind::Bool;
  if (name == "true") return v.kind == Kind::Bool && v.boolean;
  if (name == "false") return v.kind == Kind::Bool && !v.boolean;
  if (name == "integer") return v.kind == Kind::Int;
  if (name == "float") return v.kind == Kind::Float;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.kind == Kind::Dict;
  if (name == "iterable") {
    return v.kind == Kind::String || v.is_sequence() || v.kind == Kind::Dict || v.is_undefined();
  }
  if (name == "sequence") {
    return v.kind == Kind::String || v.is_sequence() || v.kind == Kind::Dict || v.is_undefined();
  }
  if (name == "callable") return v.kind == Kind::Callable;
  if (name == "odd") return as_int(v, "odd") % 2 != 0;
  if (name == "even") return as_int(v, "even") % 2 == 0;
  if (name == "divisibleby") {
    int64_t d = as_int(required(args, name), name);
    if (d == 0) raise("integer division or modulo by zero");
    return as_int(v, name) % d == 0;
  }
  if (name == "lower") return v.is_string() && str_lower(v.text) == v.text;
  if (name == "upper") return v.is_string() && str_upper(v.text) == v.text;
  if (name == "eq" || name == "equalto" || name == "==") return equals(v, required(args, name));
  if (name == "ne" || name == "!=") return !equals(v, required(args, name));
  if (name == "lt" || name == "lessthan" || name == "<") return less_than(v, required(args, name));
  if (name == "le" || name == "<=") return !less_than(required(args, name), v);
  if (name == "gt" || name == "greaterthan" || name == ">") return less_than(required(args, name), v);
  if (name == "ge" || name == ">=") return !less_than(v, required(args, name));
  if (name == "in") return contains(required(args, name), v);
  if (name == "sameas") {
    const Value& other = required(args, name);
    if (v.kind != other.kind) return false;
    switch (v.kind) {
      case Kind::None: case Kind::Undefined: return true;
      case Kind::Bool: return v.boolean == other.boolean;
      case Kind::List: case Kind::Tuple: return v.list == other.list;
      case Kind::Dict: return v.dict == other.dict;
      case Kind::Object: return v.object == other.object;
      default: return equals(v, other);
    }
  }
  if (name == "escaped") return false;
  raise("No test named '" + name + "'.");
}

}  // namespace spinlm::jinja
