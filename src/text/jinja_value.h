// Values of the Jinja2 interpreter, with Python's semantics: truthiness, equality, ordering,
// str() and repr() exactly as CPython prints them (True, None, 1.0, 1e-05, ['a', 'b'],
// {'k': "it's"}), and jinja2's Undefined (prints as "", fails when used as an object).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace spinlm::jinja {

// A template runtime error; `line` is filled in by the renderer when known (0 = not yet).
class JinjaError : public std::runtime_error {
 public:
  explicit JinjaError(const std::string& message, int line = 0)
      : std::runtime_error(message), line(line) {}
  int line;
};

[[noreturn]] void raise(const std::string& message);

struct Value;
struct Dict;
struct Object;
struct Callable;
using List = std::vector<Value>;

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Tuple, Dict, Object, Callable };

struct Value {
  Value() = default;
  Value(const Value&) = default;
  Value(Value&&) noexcept = default;
  Value& operator=(const Value&) = default;
  Value& operator=(Value&&) noexcept = default;
  // Releases nested lists, dicts, objects and callables iteratively, not recursively, so
  // that a value nested a million deep (a template can build one in a loop) is freed
  // without overflowing the stack.
  ~Value() {
    if (list || dict || object || callable) release_nested();
  }

  Kind kind = Kind::Undefined;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0.0;
  std::string text;  // String; for Undefined: the reason it is undefined (for error messages)
  std::shared_ptr<List> list;           // List and Tuple (lists are shared, like Python's)
  std::shared_ptr<Dict> dict;           // Dict
  std::shared_ptr<Object> object;       // Namespace, LoopContext
  std::shared_ptr<Callable> callable;   // functions, bound methods, macros

  static Value undefined(std::string reason = "");
  static Value none();
  static Value from_bool(bool b);
  static Value from_int(int64_t i);
  static Value from_float(double d);
  static Value from_string(std::string s);
  static Value from_list(List items);
  static Value from_tuple(List items);
  static Value new_dict();

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_sequence() const { return kind == Kind::List || kind == Kind::Tuple; }

 private:
  void release_nested() noexcept;
};

// Python dicts keep insertion order; keys are Values (strings in practice).
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  void set(const Value& key, Value value);
};

// Attribute bags: jinja2's Namespace (assignable with {% set ns.x = ... %}) and LoopContext.
struct Object {
  std::string type_name;  // "Namespace" or "LoopContext"
  Dict attributes;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;

  // Argument `index` / `name` of a Python-style signature, or nullptr when absent.
  const Value* get(size_t index, const std::string& name) const;
  // Fails unless every keyword is one of `allowed` and at most `max_positional` are given.
  void check(const std::string& function, size_t max_positional,
             const std::vector<std::string>& allowed) const;
};

struct Callable {
  std::string name;
  std::function<Value(const CallArgs&)> call;
};

Value make_callable(std::string name, std::function<Value(const CallArgs&)> fn);

// Python's type name, as in error messages: 'str', 'int', 'list', 'dict', 'NoneType'.
std::string type_name(const Value& v);

bool truthy(const Value& v);
bool equals(const Value& a, const Value& b);
// Python ordering (a < b); fails like Python for mismatched types.
bool less_than(const Value& a, const Value& b);

// Python str() and repr().
std::string to_str(const Value& v);
std::string repr(const Value& v);
std::string repr_float(double d);
std::string repr_string(const std::string& s);

// Numbers as double (Bool, Int, Float); fails for others.
double as_double(const Value& v, const std::string& what);
// Int (or Bool) as int64; fails for others.
int64_t as_int(const Value& v, const std::string& what);

// Items of an iterable as Python's iter() yields them: list items, string characters, dict
// keys; Undefined yields nothing; other types fail.
List iterate(const Value& v);

// Number of items (len()).
int64_t length(const Value& v);

// JSON conversion: objects keep their key order when given an ordered_json.
Value from_json(const nlohmann::ordered_json& j);
// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as Python writes it.
struct JsonOptions {
  bool ensure_ascii = false;
  int indent = -1;               // -1: none
  std::string indent_text;       // used when indent_is_text
  bool indent_is_text = false;
  std::string item_separator;    // default: ", " without indent, "," with
  std::string key_separator = ": ";
  bool separators_given = false;
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonOptions& options);

}  // namespace spinlm::jinja
