// Attribute and item access, slicing, and the Python methods of str, dict and list that
// templates call (only the non-mutating ones: transformers uses the immutable sandbox).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "text/jinja_builtins.h"
#include "text/jinja_limits.h"
#include "text/jinja_utf8.h"

namespace spinlm::jinja {
namespace {

std::string undefined_attribute_message(const Value& obj, const std::string& name) {
  std::string type = obj.is_none() ? "None" : type_name(obj) + " object";
  return "'" + type + "' has no attribute '" + name + "'";
}

std::string string_arg(const CallArgs& args, size_t index, const std::string& name, const std::string& method) {
  const Value* v = args.get(index, name);
  if (v == nullptr) raise(method + "() missing required argument '" + name + "'");
  if (!v->is_string()) raise(method + "() argument must be str, not " + type_name(*v));
  return v->text;
}

int64_t int_arg(const CallArgs& args, size_t index, const std::string& name, int64_t fallback) {
  const Value* v = args.get(index, name);
  if (v == nullptr || v->is_none()) return fallback;
  return as_int(*v, name);
}

// Python's str.startswith/endswith with a str or a tuple of str.
bool affix_matches(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) raise("startswith/endswith first arg must be str or a tuple of str, not " + type_name(a));
    const std::string& t = a.text;
    if (t.size() > s.size()) return false;
    return prefix ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  if (affix.kind == Kind::Tuple || affix.kind == Kind::List) {
    for (const Value& a : *affix.list) {
      if (one(a)) return true;
    }
    return false;
  }
  return one(affix);
}

int64_t code_point_index(const std::string& s, size_t byte_index) {
  return static_cast<int64_t>(utf8_length(s.substr(0, byte_index)));
}

std::string pad(const std::string& s, int64_t width, const std::string& fill, char align) {
  int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return s;
  int64_t total = width - len;
  int64_t left = 0;
  if (align == '>') left = total;
  if (align == '^') left = total / 2 + (total & width & 1);  // CPython's centering rule
  int64_t padding = 0;
  if (__builtin_mul_overflow(total, static_cast<int64_t>(fill.size()), &padding)) padding = INT64_MAX;
  check_string_bytes(s.size() + static_cast<size_t>(padding));
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < total - left; ++i) out += fill;
  return out;
}

Value string_method(const std::string& s, const std::string& name) {
  auto method = [&](auto fn) { return make_callable("str." + name, fn); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return method([s, name](const CallArgs& a) {
      a.check(name, 1, {"chars"});
      return Value::from_string(py_strip(s, a.get(0, "chars"), name != "rstrip", name != "lstrip"));
    });
  }
  if (name == "upper") return method([s](const CallArgs&) { return Value::from_string(str_upper(s)); });
  if (name == "lower") return method([s](const CallArgs&) { return Value::from_string(str_lower(s)); });
  if (name == "title") return method([s](const CallArgs&) { return Value::from_string(py_title(s)); });
  if (name == "capitalize") return method([s](const CallArgs&) { return Value::from_string(py_capitalize(s)); });
  if (name == "split" || name == "rsplit") {
    return method([s, name](const CallArgs& a) {
      a.check(name, 2, {"sep", "maxsplit"});
      int64_t max_split = int_arg(a, 1, "maxsplit", -1);
      if (name == "rsplit" && max_split >= 0) {
        // rsplit with a limit: split fully, then join the leading extra pieces back.
        List parts = py_split(s, a.get(0, "sep"), -1);
        const Value* sep = a.get(0, "sep");
        if (sep == nullptr || sep->is_none() || static_cast<int64_t>(parts.size()) <= max_split + 1) {
          if (sep == nullptr || sep->is_none()) {
            if (static_cast<int64_t>(parts.size()) <= max_split + 1) return Value::from_list(parts);
            raise("rsplit() with maxsplit and no separator is not supported");
          }
          return Value::from_list(parts);
        }
        size_t keep = parts.size() - static_cast<size_t>(max_split);
        std::string head;
        for (size_t i = 0; i < keep; ++i) head += (i ? sep->text : "") + parts[i].text;
        List out{Value::from_string(head)};
        for (size_t i = keep; i < parts.size(); ++i) out.push_back(parts[i]);
        return Value::from_list(out);
      }
      return Value::from_list(py_split(s, a.get(0, "sep"), max_split));
    });
  }
  if (name == "splitlines") {
    return method([s](const CallArgs& a) {
      const Value* keep = a.get(0, "keepends");
      return Value::from_list(py_splitlines(s, keep != nullptr && truthy(*keep)));
    });
  }
  if (name == "startswith" || name == "endswith") {
    return method([s, name](const CallArgs& a) {
      const Value* affix = a.get(0, "prefix");
      if (affix == nullptr) raise(name + "() takes at least 1 argument (0 given)");
      if (a.positional.size() > 1) raise(name + "() with start/end arguments is not supported");
      return Value::from_bool(affix_matches(s, *affix, name == "startswith"));
    });
  }
  if (name == "replace") {
    return method([s](const CallArgs& a) {
      return Value::from_string(py_replace(s, string_arg(a, 0, "old", "replace"), string_arg(a, 1, "new", "replace"),
                                           int_arg(a, 2, "count", -1)));
    });
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    return method([s, name](const CallArgs& a) {
      std::string sub = string_arg(a, 0, "sub", name);
      size_t at = (name[0] == 'r') ? rfind_text(s, sub) : find_text(s, sub);
      if (at == std::string::npos) {
        if (name.find("index") != std::string::npos) raise("substring not found");
        return Value::from_int(-1);
      }
      return Value::from_int(code_point_index(s, at));
    });
  }
  if (name == "count") {
    return method([s](const CallArgs& a) {
      std::string sub = string_arg(a, 0, "sub", "count");
      if (sub.empty()) return Value::from_int(static_cast<int64_t>(utf8_length(s)) + 1);
      int64_t n = 0;
      for (size_t at = find_text(s, sub); at != std::string::npos; at = find_text(s, sub, at + sub.size())) ++n;
      return Value::from_int(n);
    });
  }
  if (name == "join") {
    return method([s](const CallArgs& a) {
      const Value* items = a.get(0, "iterable");
      if (items == nullptr) raise("join() takes exactly one argument (0 given)");
      std::string out;
      bool first = true;
      for (const Value& item : iterate(*items)) {
        if (!item.is_string()) raise("sequence item: expected str instance, " + type_name(item) + " found");
        if (!first) out += s;
        first = false;
        out += item.text;
        check_string_bytes(out.size());
      }
      return Value::from_string(out);
    });
  }
  if (name == "format") return method([s](const CallArgs& a) { return Value::from_string(brace_format(s, a)); });
  if (name == "removeprefix" || name == "removesuffix") {
    return method([s, name](const CallArgs& a) {
      std::string affix = string_arg(a, 0, "affix", name);
      bool prefix = name == "removeprefix";
      if (affix.empty() || affix.size() > s.size()) return Value::from_string(s);
      if (prefix && s.compare(0, affix.size(), affix) == 0) return Value::from_string(s.substr(affix.size()));
      if (!prefix && s.compare(s.size() - affix.size(), affix.size(), affix) == 0) {
        return Value::from_string(s.substr(0, s.size() - affix.size()));
      }
      return Value::from_string(s);
    });
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    return method([s, name](const CallArgs& a) {
      int64_t width = int_arg(a, 0, "width", 0);
      const Value* fill = a.get(1, "fillchar");
      char align = name == "center" ? '^' : name == "ljust" ? '<' : '>';
      return Value::from_string(pad(s, width, fill ? fill->text : " ", align));
    });
  }
  if (name == "zfill") {
    return method([s](const CallArgs& a) {
      int64_t width = int_arg(a, 0, "width", 0);
      int64_t len = static_cast<int64_t>(utf8_length(s));
      if (width <= len) return Value::from_string(s);
      check_string_bytes(static_cast<size_t>(width));
      std::string zeros(static_cast<size_t>(width - len), '0');
      if (!s.empty() && (s[0] == '-' || s[0] == '+')) return Value::from_string(s.substr(0, 1) + zeros + s.substr(1));
      return Value::from_string(zeros + s);
    });
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "isupper" ||
      name == "islower") {
    return method([s, name](const CallArgs&) {
      std::u32string cps = utf8_decode(s);
      if (cps.empty()) return Value::from_bool(false);
      bool any_cased = false;
      for (char32_t cp : cps) {
        bool ok = true;
        if (name == "isdigit") ok = cp >= '0' && cp <= '9';
        if (name == "isalpha") ok = is_python_alnum(cp) && !(cp >= '0' && cp <= '9');
        if (name == "isalnum") ok = is_python_alnum(cp);
        if (name == "isspace") ok = is_python_space(cp);
        if (name == "isupper") {
          ok = !is_cased_lower(cp);
          any_cased = any_cased || is_cased_upper(cp);
        }
        if (name == "islower") {
          ok = !is_cased_upper(cp);
          any_cased = any_cased || is_cased_lower(cp);
        }
        if (!ok) return Value::from_bool(false);
      }
      if (name == "isupper" || name == "islower") return Value::from_bool(any_cased);
      return Value::from_bool(true);
    });
  }
  return Value::undefined(undefined_attribute_message(Value::from_string(s), name));
}

Value dict_method(const Value& d, const std::string& name) {
  auto method = [&](auto fn) { return make_callable("dict." + name, fn); };
  if (name == "items") {
    return method([d](const CallArgs&) {
      List items;
      for (const auto& item : d.dict->items) items.push_back(Value::from_tuple({item.first, item.second}));
      return Value::from_list(items);
    });
  }
  if (name == "keys") {
    return method([d](const CallArgs&) {
      List keys;
      for (const auto& item : d.dict->items) keys.push_back(item.first);
      return Value::from_list(keys);
    });
  }
  if (name == "values") {
    return method([d](const CallArgs&) {
      List values;
      for (const auto& item : d.dict->items) values.push_back(item.second);
      return Value::from_list(values);
    });
  }
  if (name == "get") {
    return method([d](const CallArgs& a) {
      const Value* key = a.get(0, "key");
      if (key == nullptr) raise("get expected at least 1 argument, got 0");
      const Value* found = d.dict->find(*key);
      if (found != nullptr) return *found;
      const Value* fallback = a.get(1, "default");
      return fallback ? *fallback : Value::none();
    });
  }
  if (name == "copy") {
    return method([d](const CallArgs&) {
      Value copy = Value::new_dict();
      copy.dict->items = d.dict->items;
      return copy;
    });
  }
  if (name == "pop" || name == "popitem" || name == "update" || name == "clear" || name == "setdefault") {
    return method([name](const CallArgs&) -> Value {
      raise("access to attribute '" + name + "' of 'dict' object is unsafe.");
    });
  }
  return Value::undefined();
}

Value list_method(const Value& l, const std::string& name) {
  auto method = [&](auto fn) { return make_callable("list." + name, fn); };
  if (name == "count") {
    return method([l](const CallArgs& a) {
      const Value* x = a.get(0, "value");
      int64_t n = 0;
      for (const Value& item : *l.list) n += x != nullptr && equals(item, *x);
      return Value::from_int(n);
    });
  }
  if (name == "index") {
    return method([l](const CallArgs& a) {
      const Value* x = a.get(0, "value");
      for (size_t i = 0; i < l.list->size(); ++i) {
        if (x != nullptr && equals((*l.list)[i], *x)) return Value::from_int(static_cast<int64_t>(i));
      }
      raise(repr(x ? *x : Value::none()) + " is not in list");
    });
  }
  if (name == "append" || name == "extend" || name == "insert" || name == "pop" || name == "remove" ||
      name == "reverse" || name == "sort" || name == "clear") {
    std::string type = type_name(l);
    return method([name, type](const CallArgs&) -> Value {
      raise("access to attribute '" + name + "' of '" + type + "' object is unsafe.");
    });
  }
  return Value::undefined(undefined_attribute_message(l, name));
}

}  // namespace

Value get_attribute(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Kind::Undefined: raise(obj.text.empty() ? "undefined value has no attribute '" + name + "'" : obj.text);
    case Kind::String: return string_method(obj.text, name);
    case Kind::Dict: {
      Value method = dict_method(obj, name);
      if (!method.is_undefined()) return method;
      const Value* found = obj.dict->find(name);
      if (found != nullptr) return *found;
      return Value::undefined(undefined_attribute_message(obj, name));
    }
    case Kind::List: case Kind::Tuple: return list_method(obj, name);
    case Kind::Object: {
      const Value* found = obj.object->attributes.find(name);
      if (found != nullptr) return *found;
      return Value::undefined(undefined_attribute_message(obj, name));
    }
    default: return Value::undefined(undefined_attribute_message(obj, name));
  }
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.kind) {
    case Kind::Undefined: raise(obj.text.empty() ? "undefined value has no item " + repr(key) : obj.text);
    case Kind::Dict: {
      const Value* found = obj.dict->find(key);
      if (found != nullptr) return *found;
      break;
    }
    case Kind::List: case Kind::Tuple: case Kind::String: {
      if (key.kind != Kind::Int && key.kind != Kind::Bool) break;
      int64_t n = length(obj);
      int64_t i = as_int(key, "index");
      if (i < 0) i += n;
      if (i < 0 || i >= n) {
        return Value::undefined(type_name(obj) + " object has no element " + repr(key));
      }
      if (obj.kind != Kind::String) return (*obj.list)[static_cast<size_t>(i)];
      std::u32string cps = utf8_decode(obj.text);
      std::string one;
      utf8_append(one, cps[static_cast<size_t>(i)]);
      return Value::from_string(one);
    }
    default: break;
  }
  if (key.is_string()) return get_attribute(obj, key.text);
  return Value::undefined(type_name(obj) + " object has no element " + repr(key));
}

Value get_slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) raise(obj.text.empty() ? "cannot slice an undefined value" : obj.text);
  // jinja2's getitem turns the TypeError of slicing a number or a dict into Undefined.
  if (obj.kind != Kind::String && !obj.is_sequence()) return Value::undefined("'" + type_name(obj) + "' object is not subscriptable");
  auto given = [](const Value& v) { return !v.is_undefined() && !v.is_none(); };
  const int64_t n = length(obj);
  const int64_t step = given(step_v) ? as_int(step_v, "slice step") : 1;
  if (step == 0) raise("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (!given(v)) return fallback;
    int64_t i = as_int(v, "slice index");
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t start = clamp(start_v, step < 0 ? n - 1 : 0);
  const int64_t stop = clamp(stop_v, step < 0 ? -1 : n);
  std::vector<int64_t> indices;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) indices.push_back(i);
  if (obj.kind == Kind::String) {
    std::u32string cps = utf8_decode(obj.text);
    std::string out;
    for (int64_t i : indices) utf8_append(out, cps[static_cast<size_t>(i)]);
    return Value::from_string(out);
  }
  List out;
  for (int64_t i : indices) out.push_back((*obj.list)[static_cast<size_t>(i)]);
  return obj.kind == Kind::Tuple ? Value::from_tuple(out) : Value::from_list(out);
}

size_t find_text(const std::string& s, const std::string& sub, size_t pos) {
  if (pos > s.size()) return std::string::npos;
  if (sub.empty()) return pos;
  const void* at = ::memmem(s.data() + pos, s.size() - pos, sub.data(), sub.size());
  return at == nullptr ? std::string::npos : static_cast<size_t>(static_cast<const char*>(at) - s.data());
}

size_t rfind_text(const std::string& s, const std::string& sub) {
  // A short needle costs std::string::rfind at most size(sub) steps a position; a long one
  // is searched for, reversed, in the reversed text.
  if (sub.size() <= 16) return s.rfind(sub);
  if (sub.size() > s.size()) return std::string::npos;
  const std::string text(s.rbegin(), s.rend());
  const std::string needle(sub.rbegin(), sub.rend());
  const size_t at = find_text(text, needle);
  return at == std::string::npos ? at : s.size() - at - sub.size();
}

std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  std::u32string set;
  bool whitespace = chars == nullptr || chars->is_none();
  if (!whitespace) {
    if (!chars->is_string()) raise("strip arg must be None or str");
    set = utf8_decode(chars->text);
  }
  auto strip_me = [&](char32_t cp) { return whitespace ? is_python_space(cp) : set.find(cp) != std::u32string::npos; };
  // Walks code points inward from both ends (contents can be long; only the ends matter).
  auto code_point_at = [&](size_t begin, size_t end) { return utf8_decode(s.substr(begin, end - begin)).front(); };
  auto char_end = [&](size_t i) {
    size_t j = i + 1;
    while (j < s.size() && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) ++j;
    return j;
  };
  auto char_begin = [&](size_t end) {
    size_t i = end - 1;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    return i;
  };
  size_t begin = 0;
  size_t end = s.size();
  if (left) {
    while (begin < end) {
      size_t next = char_end(begin);
      if (!strip_me(code_point_at(begin, next))) break;
      begin = next;
    }
  }
  if (right) {
    while (end > begin) {
      size_t previous = char_begin(end);
      if (previous < begin || !strip_me(code_point_at(previous, end))) break;
      end = previous;
    }
  }
  return s.substr(begin, end - begin);
}

std::string py_capitalize(const std::string& s) {
  std::u32string cps = utf8_decode(s);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) utf8_append(out, i == 0 ? to_title(cps[i]) : to_lower(cps[i]));
  return out;
}

std::string py_title(const std::string& s) {
  std::string out;
  bool previous_cased = false;
  for (char32_t cp : utf8_decode(s)) {
    char32_t mapped = previous_cased ? to_lower(cp) : to_title(cp);
    utf8_append(out, mapped);
    previous_cased = is_cased_upper(cp) || is_cased_lower(cp);
  }
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& replacement, int64_t count) {
  if (old.empty()) {
    // Python inserts the replacement between every character (and at both ends).
    std::string out;
    int64_t done = 0;
    std::u32string cps = utf8_decode(s);
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
        check_string_bytes(out.size());
      }
      if (i < cps.size()) utf8_append(out, cps[i]);
    }
    return out;
  }
  std::string out;
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t at = find_text(s, old, pos);
    if (at == std::string::npos) break;
    out.append(s, pos, at - pos);
    out += replacement;
    check_string_bytes(out.size() + (s.size() - at - old.size()));
    pos = at + old.size();
    ++done;
  }
  return out + s.substr(pos);
}

List py_split(const std::string& s, const Value* separator, int64_t max_split) {
  List out;
  if (separator == nullptr || separator->is_none()) {
    std::u32string cps = utf8_decode(s);
    size_t i = 0;
    while (true) {
      while (i < cps.size() && is_python_space(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(out.size()) == max_split) {
        out.push_back(Value::from_string(utf8_encode(cps.substr(i))));  // the rest, as is
        break;
      }
      size_t start = i;
      while (i < cps.size() && !is_python_space(cps[i])) ++i;
      check_items(out.size() + 1);
      out.push_back(Value::from_string(utf8_encode(cps.substr(start, i - start))));
    }
    return out;
  }
  if (!separator->is_string()) raise("must be str or None, not " + type_name(*separator));
  const std::string& sep = separator->text;
  if (sep.empty()) raise("empty separator");
  size_t pos = 0;
  while (max_split < 0 || static_cast<int64_t>(out.size()) < max_split) {
    size_t at = find_text(s, sep, pos);
    if (at == std::string::npos) break;
    check_items(out.size() + 2);
    out.push_back(Value::from_string(s.substr(pos, at - pos)));
    pos = at + sep.size();
  }
  out.push_back(Value::from_string(s.substr(pos)));
  return out;
}

List py_splitlines(const std::string& s, bool keep_ends) {
  List out;
  std::u32string cps = utf8_decode(s);
  size_t start = 0;
  size_t i = 0;
  while (i < cps.size()) {
    char32_t c = cps[i];
    bool is_break = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
                    c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!is_break) {
      ++i;
      continue;
    }
    size_t end = i;
    ++i;
    if (c == '\r' && i < cps.size() && cps[i] == '\n') ++i;
    check_items(out.size() + 1);
    out.push_back(Value::from_string(utf8_encode(cps.substr(start, (keep_ends ? i : end) - start))));
    start = i;
  }
  if (start < cps.size()) out.push_back(Value::from_string(utf8_encode(cps.substr(start))));
  return out;
}

}  // namespace spinlm::jinja
