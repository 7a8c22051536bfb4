#include "text/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "text/jinja_limits.h"
#include "text/jinja_utf8.h"

namespace spinlm::jinja {

void raise(const std::string& message) { throw JinjaError(message); }

namespace {

// Containers waiting to be freed by the outermost ~Value on this thread (null when none runs).
thread_local std::vector<std::shared_ptr<void>>* pending_release = nullptr;

// Moves p to the pending list when this is its last owner; otherwise it only drops a count.
template <class T>
void defer_release(std::shared_ptr<T>& p, std::vector<std::shared_ptr<void>>& pending) {
  if (!p || p.use_count() != 1) return;
  try {
    pending.push_back(std::move(p));
  } catch (...) {
    // Out of memory for the list: the container was freed in place, recursively.
  }
}

}  // namespace

void Value::release_nested() noexcept {
  if (pending_release != nullptr) {  // inside an outer release: it frees these later
    defer_release(list, *pending_release);
    defer_release(dict, *pending_release);
    defer_release(object, *pending_release);
    defer_release(callable, *pending_release);
    return;
  }
  std::vector<std::shared_ptr<void>> pending;
  pending_release = &pending;
  defer_release(list, pending);
  defer_release(dict, pending);
  defer_release(object, pending);
  defer_release(callable, pending);
  // Freeing one container destroys its Values, which add what they alone hold to the list.
  while (!pending.empty()) {
    std::shared_ptr<void> last = std::move(pending.back());
    pending.pop_back();
    last.reset();
  }
  pending_release = nullptr;
}

Value Value::undefined(std::string reason) {
  Value v;
  v.kind = Kind::Undefined;
  v.text = std::move(reason);
  return v;
}

Value Value::none() {
  Value v;
  v.kind = Kind::None;
  return v;
}

Value Value::from_bool(bool b) {
  Value v;
  v.kind = Kind::Bool;
  v.boolean = b;
  return v;
}

Value Value::from_int(int64_t i) {
  Value v;
  v.kind = Kind::Int;
  v.integer = i;
  return v;
}

Value Value::from_float(double d) {
  Value v;
  v.kind = Kind::Float;
  v.number = d;
  return v;
}

Value Value::from_string(std::string s) {
  check_string_bytes(s.size());
  note_built(s.size());
  Value v;
  v.kind = Kind::String;
  v.text = std::move(s);
  return v;
}

namespace {

// Items and the bytes of their strings, for a list or tuple a template builds.
void note_sequence(const List& items) {
  check_items(items.size());
  size_t bytes = items.size() * sizeof(Value);
  for (const Value& item : items) bytes += item.text.size();
  note_built(bytes);
}

}  // namespace

Value Value::from_list(List items) {
  if (RenderLimits::current() != nullptr) note_sequence(items);
  Value v;
  v.kind = Kind::List;
  v.list = std::make_shared<List>(std::move(items));
  return v;
}

Value Value::from_tuple(List items) {
  if (RenderLimits::current() != nullptr) note_sequence(items);
  Value v;
  v.kind = Kind::Tuple;
  v.list = std::make_shared<List>(std::move(items));
  return v;
}

Value Value::new_dict() {
  Value v;
  v.kind = Kind::Dict;
  v.dict = std::make_shared<Dict>();
  return v;
}

const Value* Dict::find(const Value& key) const {
  for (const auto& item : items) {
    if (equals(item.first, key)) return &item.second;
  }
  return nullptr;
}

const Value* Dict::find(const std::string& key) const {
  for (const auto& item : items) {
    if (item.first.kind == Kind::String && item.first.text == key) return &item.second;
  }
  return nullptr;
}

void Dict::set(const Value& key, Value value) {
  for (auto& item : items) {
    if (equals(item.first, key)) {
      item.second = std::move(value);
      return;
    }
  }
  check_items(items.size() + 1);
  note_built(2 * sizeof(Value) + key.text.size() + value.text.size());
  items.emplace_back(key, std::move(value));
}

const Value* CallArgs::get(size_t index, const std::string& name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& kw : keywords) {
    if (kw.first == name) return &kw.second;
  }
  return nullptr;
}

void CallArgs::check(const std::string& function, size_t max_positional,
                     const std::vector<std::string>& allowed) const {
  if (positional.size() > max_positional) {
    raise(function + "() takes at most " + std::to_string(max_positional) +
          " positional arguments (" + std::to_string(positional.size()) + " given)");
  }
  for (const auto& kw : keywords) {
    if (std::find(allowed.begin(), allowed.end(), kw.first) == allowed.end()) {
      raise(function + "() got an unexpected keyword argument '" + kw.first + "'");
    }
  }
}

Value make_callable(std::string name, std::function<Value(const CallArgs&)> fn) {
  Value v;
  v.kind = Kind::Callable;
  v.callable = std::make_shared<Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Object: return v.object->type_name;
    case Kind::Callable: return "function";
  }
  return "object";
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return false;
    case Kind::None: return false;
    case Kind::Bool: return v.boolean;
    case Kind::Int: return v.integer != 0;
    case Kind::Float: return v.number != 0.0;
    case Kind::String: return !v.text.empty();
    case Kind::List: case Kind::Tuple: return !v.list->empty();
    case Kind::Dict: return !v.dict->items.empty();
    case Kind::Object: return true;
    case Kind::Callable: return true;
  }
  return false;
}

double as_double(const Value& v, const std::string& what) {
  switch (v.kind) {
    case Kind::Bool: return v.boolean ? 1.0 : 0.0;
    case Kind::Int: return static_cast<double>(v.integer);
    case Kind::Float: return v.number;
    default: raise(what + ": expected a number, got '" + type_name(v) + "'");
  }
}

int64_t as_int(const Value& v, const std::string& what) {
  switch (v.kind) {
    case Kind::Bool: return v.boolean ? 1 : 0;
    case Kind::Int: return v.integer;
    default: raise(what + ": '" + type_name(v) + "' object cannot be interpreted as an integer");
  }
}

bool equals(const Value& a, const Value& b) {
  if (a.is_sequence() || a.kind == Kind::Dict) {
    ValueDepthGuard guard("comparing");
    if (a.kind != b.kind) return false;
    if (a.is_sequence()) {
      if (a.list->size() != b.list->size()) return false;
      for (size_t i = 0; i < a.list->size(); ++i) {
        if (!equals((*a.list)[i], (*b.list)[i])) return false;
      }
      return true;
    }
    if (a.dict->items.size() != b.dict->items.size()) return false;
    for (const auto& item : a.dict->items) {
      const Value* other = b.dict->find(item.first);
      if (other == nullptr || !equals(item.second, *other)) return false;
    }
    return true;
  }
  if (a.is_number() && b.is_number()) {
    if (a.kind != Kind::Float && b.kind != Kind::Float) return as_int(a, "") == as_int(b, "");
    return as_double(a, "") == as_double(b, "");
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined: return true;
    case Kind::None: return true;
    case Kind::String: return a.text == b.text;
    case Kind::Object: return a.object == b.object;
    case Kind::Callable: return a.callable == b.callable;
    default: return false;
  }
}

bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind != Kind::Float && b.kind != Kind::Float) return as_int(a, "") < as_int(b, "");
    return as_double(a, "") < as_double(b, "");
  }
  if (a.kind == Kind::String && b.kind == Kind::String) return a.text < b.text;  // UTF-8 keeps code point order
  if (a.kind == b.kind && a.is_sequence()) {
    ValueDepthGuard guard("comparing");
    const List& x = *a.list;
    const List& y = *b.list;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return less_than(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  raise("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

std::string repr_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Shortest digits that read back as the same double (Python's repr).
  char buffer[64];
  int precision = 1;
  for (; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*e", precision - 1, d);
    if (std::strtod(buffer, nullptr) == d) break;
  }
  std::string formatted = buffer;  // [-]d.ddde[+-]XX
  bool negative = formatted[0] == '-';
  if (negative) formatted.erase(0, 1);
  size_t e_pos = formatted.find('e');
  int exponent = std::atoi(formatted.c_str() + e_pos + 1);
  std::string digits;
  for (size_t i = 0; i < e_pos; ++i) {
    if (formatted[i] != '.') digits.push_back(formatted[i]);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = negative ? "-" : "";
  if (exponent >= -5 + 1 && exponent < 16) {
    int point = exponent + 1;  // digits before the decimal point
    if (point <= 0) {
      out += "0." + std::string(static_cast<size_t>(-point), '0') + digits;
    } else if (point >= static_cast<int>(digits.size())) {
      out += digits + std::string(static_cast<size_t>(point) - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(point)) + "." + digits.substr(static_cast<size_t>(point));
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_text[16];
  std::snprintf(exp_text, sizeof exp_text, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp_text;
}

std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t cp : utf8_decode(s)) {
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && !is_python_printable(cp))) {
      char buffer[16];
      if (cp < 0x100) {
        std::snprintf(buffer, sizeof buffer, "\\x%02x", static_cast<unsigned>(cp));
      } else if (cp < 0x10000) {
        std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(cp));
      } else {
        std::snprintf(buffer, sizeof buffer, "\\U%08x", static_cast<unsigned>(cp));
      }
      out += buffer;
    } else {
      utf8_append(out, cp);
    }
  }
  out.push_back(quote);
  return out;
}

std::string repr(const Value& v) {
  switch (v.kind) {
    case Kind::String: return repr_string(v.text);
    case Kind::Undefined: return "Undefined";
    default: break;
  }
  return to_str(v);
}

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return v.boolean ? "True" : "False";
    case Kind::Int: return std::to_string(v.integer);
    case Kind::Float: return repr_float(v.number);
    case Kind::String: return v.text;
    case Kind::List: case Kind::Tuple: {
      ValueDepthGuard guard("printing");
      bool tuple = v.kind == Kind::Tuple;
      std::string out = tuple ? "(" : "[";
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i > 0) out += ", ";
        out += repr((*v.list)[i]);
        check_string_bytes(out.size());
      }
      if (tuple && v.list->size() == 1) out += ",";
      out += tuple ? ")" : "]";
      return out;
    }
    case Kind::Dict: {
      ValueDepthGuard guard("printing");
      std::string out = "{";
      bool first = true;
      for (const auto& item : v.dict->items) {
        if (!first) out += ", ";
        first = false;
        out += repr(item.first) + ": " + repr(item.second);
        check_string_bytes(out.size());
      }
      return out + "}";
    }
    case Kind::Object: {
      ValueDepthGuard guard("printing");
      std::string out = "<" + v.object->type_name + " {";
      bool first = true;
      for (const auto& item : v.object->attributes.items) {
        if (!first) out += ", ";
        first = false;
        out += repr(item.first) + ": " + repr(item.second);
        check_string_bytes(out.size());
      }
      return out + "}>";
    }
    case Kind::Callable: return "<function " + v.callable->name + ">";
  }
  return "";
}

List iterate(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return {};
    case Kind::List: case Kind::Tuple: return *v.list;
    case Kind::Dict: {
      List keys;
      for (const auto& item : v.dict->items) keys.push_back(item.first);
      return keys;
    }
    case Kind::String: {
      const std::u32string cps = utf8_decode(v.text);
      check_items(cps.size());
      List chars;
      chars.reserve(cps.size());
      for (char32_t cp : cps) {
        std::string one;
        utf8_append(one, cp);
        chars.push_back(Value::from_string(one));
      }
      return chars;
    }
    default: raise("'" + type_name(v) + "' object is not iterable");
  }
}

int64_t length(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return 0;
    case Kind::String: return static_cast<int64_t>(utf8_length(v.text));
    case Kind::List: case Kind::Tuple: return static_cast<int64_t>(v.list->size());
    case Kind::Dict: return static_cast<int64_t>(v.dict->items.size());
    default: raise("object of type '" + type_name(v) + "' has no len()");
  }
}

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::from_bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::from_int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::from_int(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return Value::from_float(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::from_string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      for (const auto& item : j) items.push_back(from_json(item));
      return Value::from_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = Value::new_dict();
      for (const auto& item : j.items()) {
        d.dict->items.emplace_back(Value::from_string(item.key()), from_json(item.value()));
      }
      return d;
    }
    default: return Value::none();
  }
}

namespace {

// Python's json string encoding (json.encoder.py_encode_basestring[_ascii]).
std::string json_string(const std::string& s, bool ensure_ascii) {
  std::string out = "\"";
  for (char32_t cp : utf8_decode(s)) {
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    char buffer[16];
    if (cp < 0x20 || (ensure_ascii && cp > 0x7E && cp < 0x10000)) {
      std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(cp));
      out += buffer;
    } else if (ensure_ascii && cp >= 0x10000) {
      char32_t v = cp - 0x10000;
      std::snprintf(buffer, sizeof buffer, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                    static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
      out += buffer;
    } else {
      utf8_append(out, cp);
    }
  }
  return out + "\"";
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return repr_float(d);
}

void write_json(const Value& v, const JsonOptions& o, int depth, std::string& out) {
  ValueDepthGuard guard("serializing");
  check_string_bytes(out.size());
  const bool indented = o.indent >= 0 || o.indent_is_text;
  const std::string unit = o.indent_is_text ? o.indent_text : std::string(static_cast<size_t>(std::max(o.indent, 0)), ' ');
  const std::string item_sep = o.separators_given ? o.item_separator : (indented ? "," : ", ");
  auto newline = [&](int level) {
    out.push_back('\n');
    for (int i = 0; i < level; ++i) {
      out += unit;
      check_string_bytes(out.size());
    }
  };
  switch (v.kind) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.boolean ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.integer); return;
    case Kind::Float: out += json_float(v.number); return;
    case Kind::String: out += json_string(v.text, o.ensure_ascii); return;
    case Kind::List: case Kind::Tuple: {
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += "[";
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i > 0) out += item_sep;
        if (indented) newline(depth + 1);
        write_json((*v.list)[i], o, depth + 1, out);
        check_string_bytes(out.size());
      }
      if (indented) newline(depth);
      out += "]";
      return;
    }
    case Kind::Dict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> items;
      for (const auto& item : v.dict->items) items.push_back(&item);
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto* a, const auto* b) { return less_than(a->first, b->first); });
      }
      out += "{";
      bool first = true;
      for (const auto* item : items) {
        if (!first) out += item_sep;
        first = false;
        if (indented) newline(depth + 1);
        const Value& key = item->first;
        if (key.kind == Kind::String) {
          out += json_string(key.text, o.ensure_ascii);
        } else if (key.kind == Kind::Int || key.kind == Kind::Float || key.kind == Kind::Bool ||
                   key.kind == Kind::None) {
          std::string k = key.kind == Kind::None ? "null"
                          : key.kind == Kind::Bool ? (key.boolean ? "true" : "false")
                          : key.kind == Kind::Float ? json_float(key.number)
                                                    : std::to_string(key.integer);
          out += "\"" + k + "\"";
        } else {
          raise("keys must be str, int, float, bool or None, not " + type_name(key));
        }
        out += o.key_separator;
        write_json(item->second, o, depth + 1, out);
        check_string_bytes(out.size());
      }
      if (indented) newline(depth);
      out += "}";
      return;
    }
    default:
      raise("Object of type " + type_name(v) + " is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonOptions& options) {
  std::string out;
  write_json(v, options, 0, out);
  return out;
}

}  // namespace spinlm::jinja
