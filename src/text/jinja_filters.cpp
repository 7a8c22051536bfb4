// jinja2's filters (`value | name(args)`), with transformers' tojson in place of jinja2's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "text/jinja_builtins.h"
#include "text/jinja_limits.h"
#include "text/jinja_utf8.h"

namespace spinlm::jinja {
namespace {

const Value* arg(const CallArgs& a, size_t index, const std::string& name) { return a.get(index, name); }

bool bool_arg(const CallArgs& a, size_t index, const std::string& name, bool fallback) {
  const Value* v = a.get(index, name);
  return v == nullptr ? fallback : truthy(*v);
}

int64_t int_arg(const CallArgs& a, size_t index, const std::string& name, int64_t fallback) {
  const Value* v = a.get(index, name);
  return v == nullptr || v->is_none() ? fallback : as_int(*v, name);
}

// jinja2's make_attrgetter: "a.b.0" looks up each part with getitem; missing gives Undefined.
Value get_path(const Value& item, const Value& attribute) {
  if (attribute.kind == Kind::Int) return get_item(item, attribute);
  Value current = item;
  const std::string& path = attribute.text;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (current.is_undefined()) return current;
    current = numeric ? get_item(current, Value::from_int(std::atoll(part.c_str())))
                      : get_item(current, Value::from_string(part));
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

// Sorting and uniqueness keys: strings fold case unless case_sensitive.
Value fold_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::from_string(str_lower(v.text));
  return v;
}

Value sort_key(const Value& item, const Value* attribute, bool case_sensitive) {
  Value key = (attribute != nullptr && !attribute->is_none()) ? get_path(item, *attribute) : item;
  return fold_key(key, case_sensitive);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// Python's round(x, ndigits) (round half to even on the exact binary value).
double py_round(double x, int64_t digits) {
  if (digits == 0) return std::nearbyint(x);
  if (digits > 0) {
    char buffer[512];
    std::snprintf(buffer, sizeof buffer, "%.*f", static_cast<int>(std::min<int64_t>(digits, 300)), x);
    return std::strtod(buffer, nullptr);
  }
  double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(x / scale) * scale;
}

// Python's int(str): optional whitespace, sign, digits with single underscores.
bool parse_python_int(const std::string& text, int base, int64_t& out) {
  std::string s = py_strip(text, nullptr, true, true);
  if (s.empty()) return false;
  std::string digits;
  size_t i = 0;
  if (s[0] == '+' || s[0] == '-') digits.push_back(s[i++]);
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i) {
    if (s[i] == '_' && i + 1 < s.size() && s[i + 1] != '_' && digits.size() > 0 && std::isalnum(static_cast<unsigned char>(s[i - 1]))) continue;
    digits.push_back(s[i]);
  }
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (end == nullptr || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_python_float(const std::string& text, double& out) {
  std::string s = py_strip(text, nullptr, true, true);
  if (s.empty()) return false;
  std::string cleaned;
  for (char c : s) {
    if (c != '_') cleaned.push_back(c);
  }
  char* end = nullptr;
  double v = std::strtod(cleaned.c_str(), &end);
  if (end == nullptr || *end != '\0') return false;
  out = v;
  return true;
}

Value filter_int(const Value& v, const CallArgs& a) {
  const Value* fallback = arg(a, 0, "default");
  const int64_t base = int_arg(a, 1, "base", 10);
  Value fallback_value = fallback ? *fallback : Value::from_int(0);
  switch (v.kind) {
    case Kind::Int: return v;
    case Kind::Bool: return Value::from_int(v.boolean ? 1 : 0);
    case Kind::Float:
      if (std::isnan(v.number) || std::isinf(v.number)) return fallback_value;
      return Value::from_int(static_cast<int64_t>(std::trunc(v.number)));
    case Kind::String: {
      int64_t i = 0;
      if (parse_python_int(v.text, static_cast<int>(base), i)) return Value::from_int(i);
      double d = 0;
      if (parse_python_float(v.text, d) && std::isfinite(d)) return Value::from_int(static_cast<int64_t>(std::trunc(d)));
      return fallback_value;
    }
    default: return fallback_value;
  }
}

Value filter_float(const Value& v, const CallArgs& a) {
  const Value* fallback = arg(a, 0, "default");
  Value fallback_value = fallback ? *fallback : Value::from_float(0.0);
  switch (v.kind) {
    case Kind::Int: case Kind::Bool: case Kind::Float: return Value::from_float(as_double(v, "float"));
    case Kind::String: {
      double d = 0;
      if (parse_python_float(v.text, d)) return Value::from_float(d);
      return fallback_value;
    }
    default: return fallback_value;
  }
}

// transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value filter_tojson(const Value& v, const CallArgs& a) {
  a.check("tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensure_ascii = bool_arg(a, 0, "ensure_ascii", false);
  const Value* indent = arg(a, 1, "indent");
  if (indent != nullptr && !indent->is_none()) {
    if (indent->is_string()) {
      o.indent_is_text = true;
      o.indent_text = indent->text;
    } else {
      const int64_t width = std::max<int64_t>(0, as_int(*indent, "indent"));
      check_string_bytes(static_cast<size_t>(width));
      o.indent = static_cast<int>(width);
    }
  }
  const Value* separators = arg(a, 2, "separators");
  if (separators != nullptr && !separators->is_none()) {
    if (!separators->is_sequence() || separators->list->size() != 2) raise("tojson: separators must be a pair");
    o.separators_given = true;
    o.item_separator = to_str((*separators->list)[0]);
    o.key_separator = to_str((*separators->list)[1]);
  }
  o.sort_keys = bool_arg(a, 3, "sort_keys", false);
  return Value::from_string(to_json(v, o));
}

Value filter_indent(const Value& v, const CallArgs& a) {
  const Value* width = arg(a, 0, "width");
  std::string indention = "    ";
  if (width != nullptr && width->is_string()) {
    indention = width->text;
  } else if (width != nullptr) {
    const int64_t spaces = std::max<int64_t>(0, as_int(*width, "width"));
    check_string_bytes(static_cast<size_t>(spaces));
    indention = std::string(static_cast<size_t>(spaces), ' ');
  }
  const bool first = bool_arg(a, 1, "first", false);
  const bool blank = bool_arg(a, 2, "blank", false);
  std::string s = to_str(v) + "\n";  // jinja2's quirk for splitlines
  List lines = py_splitlines(s, false);
  std::string out;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      out += (i ? "\n" + indention : "") + lines[i].text;
      check_string_bytes(out.size());
    }
  } else {
    out = lines.empty() ? "" : lines[0].text;
    for (size_t i = 1; i < lines.size(); ++i) {
      out += "\n";
      if (!lines[i].text.empty()) out += indention;
      out += lines[i].text;
      check_string_bytes(out.size());
    }
  }
  if (first) out = indention + out;
  return Value::from_string(out);
}

Value filter_sort(const Value& v, const CallArgs& a) {
  const bool reverse = bool_arg(a, 0, "reverse", false);
  const bool case_sensitive = bool_arg(a, 1, "case_sensitive", false);
  const Value* attribute = arg(a, 2, "attribute");
  List items = iterate(v);
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : items) keyed.emplace_back(sort_key(item, attribute, case_sensitive), item);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less_than(y.first, x.first) : less_than(x.first, y.first);
  });
  List out;
  for (auto& k : keyed) out.push_back(k.second);
  return Value::from_list(out);
}

Value filter_unique(const Value& v, const CallArgs& a) {
  const bool case_sensitive = bool_arg(a, 0, "case_sensitive", false);
  const Value* attribute = arg(a, 1, "attribute");
  List seen;
  List out;
  for (const Value& item : iterate(v)) {
    Value key = sort_key(item, attribute, case_sensitive);
    bool found = false;
    for (const Value& s : seen) {
      count_loop_iteration();  // quadratic in the items: counted like loop iterations
      found = found || equals(s, key);
    }
    if (found) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::from_list(out);
}

Value filter_min_max(const Value& v, const CallArgs& a, bool want_max) {
  const bool case_sensitive = bool_arg(a, 0, "case_sensitive", false);
  const Value* attribute = arg(a, 1, "attribute");
  List items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = sort_key(items[0], attribute, case_sensitive);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = sort_key(items[i], attribute, case_sensitive);
    if (want_max ? less_than(best_key, key) : less_than(key, best_key)) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

Value add(const Value& x, const Value& y) {
  if (x.kind == Kind::Float || y.kind == Kind::Float) return Value::from_float(as_double(x, "sum") + as_double(y, "sum"));
  if (x.is_number() && y.is_number()) return Value::from_int(as_int(x, "sum") + as_int(y, "sum"));
  raise("unsupported operand type(s) for +: '" + type_name(x) + "' and '" + type_name(y) + "'");
}

Value filter_sum(const Value& v, const CallArgs& a) {
  const Value* attribute = arg(a, 0, "attribute");
  const Value* start = arg(a, 1, "start");
  Value total = start ? *start : Value::from_int(0);
  for (const Value& item : iterate(v)) {
    total = add(total, (attribute != nullptr && !attribute->is_none()) ? get_path(item, *attribute) : item);
  }
  return total;
}

// Remaining positional arguments after the first `skip`, with all keywords.
CallArgs rest_args(const CallArgs& a, size_t skip) {
  CallArgs rest;
  for (size_t i = skip; i < a.positional.size(); ++i) rest.positional.push_back(a.positional[i]);
  rest.keywords = a.keywords;
  return rest;
}

Value filter_map(const Value& v, const CallArgs& a) {
  List out;
  if (a.positional.empty()) {
    const Value* attribute = a.get(99, "attribute");
    if (attribute == nullptr) raise("map requires a filter name or attribute=");
    const Value* fallback = a.get(99, "default");
    for (const Value& item : iterate(v)) {
      Value got = get_path(item, *attribute);
      out.push_back(got.is_undefined() && fallback ? *fallback : got);
    }
    return Value::from_list(out);
  }
  const std::string name = to_str(a.positional[0]);
  CallArgs rest = rest_args(a, 1);
  for (const Value& item : iterate(v)) out.push_back(call_filter(name, item, rest));
  return Value::from_list(out);
}

Value filter_select(const Value& v, const CallArgs& a, bool attribute_mode, bool keep_matching) {
  List out;
  size_t skip = 0;
  Value attribute;
  if (attribute_mode) {
    if (a.positional.empty()) raise("selectattr/rejectattr requires an attribute name");
    attribute = a.positional[0];
    skip = 1;
  }
  const bool has_test = a.positional.size() > skip;
  const std::string test = has_test ? to_str(a.positional[skip]) : "";
  CallArgs rest = rest_args(a, skip + 1);
  for (const Value& item : iterate(v)) {
    Value subject = attribute_mode ? get_path(item, attribute) : item;
    bool passed = has_test ? call_test(test, subject, rest) : truthy(subject);
    if (passed == keep_matching) out.push_back(item);
  }
  return Value::from_list(out);
}

Value filter_items(const Value& v) {
  if (v.is_undefined()) return Value::from_list({});
  if (v.kind != Kind::Dict) raise("Can only get item pairs from a mapping.");
  List out;
  for (const auto& item : v.dict->items) out.push_back(Value::from_tuple({item.first, item.second}));
  return Value::from_list(out);
}

Value filter_dictsort(const Value& v, const CallArgs& a) {
  const bool case_sensitive = bool_arg(a, 0, "case_sensitive", false);
  const Value* by = arg(a, 1, "by");
  const bool reverse = bool_arg(a, 2, "reverse", false);
  const size_t position = (by != nullptr && to_str(*by) == "value") ? 1 : 0;
  List pairs = *filter_items(v).list;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    Value kx = fold_key((*x.list)[position], case_sensitive);
    Value ky = fold_key((*y.list)[position], case_sensitive);
    return reverse ? less_than(ky, kx) : less_than(kx, ky);
  });
  return Value::from_list(pairs);
}

Value filter_round(const Value& v, const CallArgs& a) {
  const int64_t precision = int_arg(a, 0, "precision", 0);
  const Value* method = arg(a, 1, "method");
  const std::string how = method ? to_str(*method) : "common";
  if (how == "common") {
    if (v.kind == Kind::Int || v.kind == Kind::Bool) {
      return precision >= 0 ? Value::from_int(as_int(v, "round")) : Value::from_float(py_round(as_double(v, "round"), precision));
    }
    return Value::from_float(py_round(as_double(v, "round"), precision));
  }
  if (how != "floor" && how != "ceil") raise("method must be common, ceil or floor");
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = as_double(v, "round") * scale;
  return Value::from_float((how == "floor" ? std::floor(x) : std::ceil(x)) / scale);
}

Value filter_batch(const Value& v, const CallArgs& a) {
  const int64_t size = int_arg(a, 0, "linecount", 1);
  if (size <= 0) raise("batch size must be positive");
  const Value* fill = arg(a, 1, "fill_with");
  List out;
  List current;
  for (const Value& item : iterate(v)) {
    current.push_back(item);
    if (static_cast<int64_t>(current.size()) == size) {
      out.push_back(Value::from_list(current));
      current.clear();
    }
  }
  if (!current.empty()) {
    if (fill != nullptr && !fill->is_none()) check_items(static_cast<size_t>(size));
    while (fill != nullptr && !fill->is_none() && static_cast<int64_t>(current.size()) < size) current.push_back(*fill);
    out.push_back(Value::from_list(current));
  }
  return Value::from_list(out);
}

int64_t word_count(const std::string& s) {
  int64_t count = 0;
  bool in_word = false;
  for (char32_t cp : utf8_decode(s)) {
    bool word_char = cp == '_' || is_python_alnum(cp);
    if (word_char && !in_word) ++count;
    in_word = word_char;
  }
  return count;
}

}  // namespace

Value call_filter(const std::string& name, const Value& v, const CallArgs& a) {
  if (name == "default" || name == "d") {
    const Value* fallback = arg(a, 0, "default_value");
    const bool boolean = bool_arg(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !truthy(v))) return fallback ? *fallback : Value::from_string("");
    return v;
  }
  if (name == "trim") return Value::from_string(py_strip(to_str(v), arg(a, 0, "chars"), true, true));
  if (name == "upper") return Value::from_string(str_upper(to_str(v)));
  if (name == "lower") return Value::from_string(str_lower(to_str(v)));
  if (name == "capitalize") return Value::from_string(py_capitalize(to_str(v)));
  if (name == "title") {
    // jinja2's title: upper-case the first character of each run after [-\s({[<].
    std::string out;
    bool at_start = true;
    for (char32_t cp : utf8_decode(to_str(v))) {
      bool boundary = is_python_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
      utf8_append(out, boundary ? cp : at_start ? to_upper(cp) : to_lower(cp));
      at_start = boundary;
    }
    return Value::from_string(out);
  }
  if (name == "length" || name == "count") return Value::from_int(length(v));
  if (name == "first") {
    List items = iterate(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
  }
  if (name == "last") {
    List items = iterate(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
  }
  if (name == "join") {
    const Value* separator = arg(a, 0, "d");
    const Value* attribute = arg(a, 1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v)) {
      if (!first) out += separator ? to_str(*separator) : "";
      first = false;
      out += to_str((attribute != nullptr && !attribute->is_none()) ? get_path(item, *attribute) : item);
      check_string_bytes(out.size());
    }
    return Value::from_string(out);
  }
  if (name == "replace") {
    const Value* old = arg(a, 0, "old");
    const Value* replacement = arg(a, 1, "new");
    if (old == nullptr || replacement == nullptr) raise("replace needs old and new");
    return Value::from_string(py_replace(to_str(v), to_str(*old), to_str(*replacement), int_arg(a, 2, "count", -1)));
  }
  if (name == "tojson") return filter_tojson(v, a);
  if (name == "string") return Value::from_string(to_str(v));
  if (name == "int") return filter_int(v, a);
  if (name == "float") return filter_float(v, a);
  if (name == "list") return Value::from_list(iterate(v));
  if (name == "items") return filter_items(v);
  if (name == "dictsort") return filter_dictsort(v, a);
  if (name == "map") return filter_map(v, a);
  if (name == "select") return filter_select(v, a, false, true);
  if (name == "reject") return filter_select(v, a, false, false);
  if (name == "selectattr") return filter_select(v, a, true, true);
  if (name == "rejectattr") return filter_select(v, a, true, false);
  if (name == "unique") return filter_unique(v, a);
  if (name == "sort") return filter_sort(v, a);
  if (name == "reverse") {
    if (v.is_string()) {
      std::u32string cps = utf8_decode(v.text);
      std::reverse(cps.begin(), cps.end());
      return Value::from_string(utf8_encode(cps));
    }
    List items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::from_list(items);
  }
  if (name == "safe") return v;
  if (name == "escape" || name == "e" || name == "forceescape") return Value::from_string(html_escape(to_str(v)));
  if (name == "indent") return filter_indent(v, a);
  if (name == "round") return filter_round(v, a);
  if (name == "abs") {
    if (v.kind == Kind::Float) return Value::from_float(std::fabs(v.number));
    int64_t i = as_int(v, "abs");
    return Value::from_int(i < 0 ? -i : i);
  }
  if (name == "sum") return filter_sum(v, a);
  if (name == "min") return filter_min_max(v, a, false);
  if (name == "max") return filter_min_max(v, a, true);
  if (name == "wordcount") return Value::from_int(word_count(to_str(v)));
  if (name == "center") {
    CallArgs width;
    width.positional.push_back(Value::from_int(int_arg(a, 0, "width", 80)));
    return get_attribute(Value::from_string(to_str(v)), "center").callable->call(width);
  }
  if (name == "format") {
    if (!a.keywords.empty()) {
      Value mapping = Value::new_dict();
      for (const auto& kw : a.keywords) mapping.dict->set(Value::from_string(kw.first), kw.second);
      return Value::from_string(percent_format(to_str(v), mapping));
    }
    return Value::from_string(percent_format(to_str(v), Value::from_tuple(a.positional)));
  }
  if (name == "attr") {
    const Value* attribute = arg(a, 0, "name");
    if (attribute == nullptr) raise("attr needs a name");
    if (v.kind == Kind::Dict) {
      Value method = get_attribute(v, to_str(*attribute));
      return method.kind == Kind::Callable ? method : Value::undefined();
    }
    return get_attribute(v, to_str(*attribute));
  }
  if (name == "batch") return filter_batch(v, a);
  raise("No filter named '" + name + "'.");
}

}  // namespace spinlm::jinja
