// Python's two string formatting mini-languages, as far as chat templates use them:
// `"%s: %d" % (a, b)` and `"{} {name:>8}".format(...)`.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "text/jinja_builtins.h"
#include "text/jinja_limits.h"
#include "text/jinja_utf8.h"

namespace spinlm::jinja {
namespace {

std::string c_format(const std::string& spec, double d) {
  char buffer[512];
  std::snprintf(buffer, sizeof buffer, spec.c_str(), d);
  return buffer;
}

std::string c_format_int(const std::string& spec, long long i) {
  char buffer[512];
  std::snprintf(buffer, sizeof buffer, spec.c_str(), i);
  return buffer;
}

// A width or precision: decimal digits at i (none gives 0), refused past kMaxStringBytes.
int parse_count(const std::string& text, size_t& i) {
  int64_t count = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    count = count * 10 + (text[i++] - '0');
    if (count > static_cast<int64_t>(kMaxStringBytes)) check_string_bytes(static_cast<size_t>(count));
    if (count > INT32_MAX / 10) raise("width or precision too big in format string");
  }
  return static_cast<int>(count);
}

std::string pad_text(const std::string& s, int width, char fill, char align) {
  check_string_bytes(static_cast<size_t>(std::max(width, 0)) + s.size());
  int len = static_cast<int>(utf8_length(s));
  if (width <= len) return s;
  int total = width - len;
  int left = align == '>' ? total : align == '^' ? total / 2 : 0;
  return std::string(static_cast<size_t>(left), fill) + s + std::string(static_cast<size_t>(total - left), fill);
}

// One %-conversion: flags, width, precision and type already parsed.
std::string convert_percent(const Value& v, const std::string& flags, int width, int precision, char type) {
  bool left = flags.find('-') != std::string::npos;
  if (type == 's' || type == 'r' || type == 'a') {
    std::string s = type == 's' ? to_str(v) : repr(v);
    if (precision >= 0) s = utf8_encode(utf8_decode(s).substr(0, static_cast<size_t>(precision)));
    return pad_text(s, width, ' ', left ? '<' : '>');
  }
  std::string spec = "%" + flags;
  if (width > 0) spec += std::to_string(width);
  if (type == 'd' || type == 'i' || type == 'u' || type == 'x' || type == 'X' || type == 'o' || type == 'c') {
    if (!v.is_number()) raise("%" + std::string(1, type) + " format: a real number is required, not " + type_name(v));
    long long i = v.kind == Kind::Float ? static_cast<long long>(std::trunc(v.number)) : as_int(v, "%d");
    if (type == 'c') return std::string(1, static_cast<char>(i));
    if (precision >= 0) spec += "." + std::to_string(precision);
    spec += "ll";
    spec += type == 'i' || type == 'u' ? 'd' : type;
    return c_format_int(spec, i);
  }
  if (std::string("eEfFgG").find(type) != std::string::npos) {
    double d = as_double(v, "%" + std::string(1, type) + " format");
    spec += "." + std::to_string(precision >= 0 ? precision : 6);
    spec.push_back(type);
    return c_format(spec, d);
  }
  raise(std::string("unsupported format character '") + type + "'");
}

// Applies a str.format() spec ([[fill]align][sign][0][width][.precision][type]) to a value.
std::string apply_format_spec(const Value& v, const std::string& spec) {
  if (spec.empty()) return to_str(v);
  size_t i = 0;
  char fill = ' ';
  char align = '\0';
  if (spec.size() >= 2 && std::string("<>^").find(spec[1]) != std::string::npos) {
    fill = spec[0];
    align = spec[1];
    i = 2;
  } else if (std::string("<>^").find(spec[0]) != std::string::npos) {
    align = spec[0];
    i = 1;
  }
  std::string sign;
  if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec.substr(i++, 1);
  bool zero = false;
  if (i < spec.size() && spec[i] == '0') {
    zero = true;
    ++i;
  }
  const int width = parse_count(spec, i);
  int precision = -1;
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    precision = parse_count(spec, i);
  }
  char type = i < spec.size() ? spec[i++] : '\0';
  if (i != spec.size()) raise("Invalid format specifier '" + spec + "'");
  std::string body;
  if (v.is_string() || (type == '\0' && !v.is_number()) || type == 's') {
    body = to_str(v);
    if (precision >= 0) body = utf8_encode(utf8_decode(body).substr(0, static_cast<size_t>(precision)));
    return pad_text(body, width, fill, align ? align : '<');
  }
  if (type == '\0' && precision < 0) {
    body = to_str(v);
  } else if (type == 'd' || (type == '\0' && v.kind != Kind::Float && precision < 0)) {
    body = std::to_string(as_int(v, "format"));
  } else {
    char t = type == '\0' ? 'g' : type;
    double d = as_double(v, "format");
    if (t == '%') {
      body = c_format("%." + std::to_string(precision >= 0 ? precision : 6) + "f", d * 100.0) + "%";
    } else {
      body = c_format("%." + std::to_string(precision >= 0 ? precision : 6) + std::string(1, t), d);
    }
  }
  if (!sign.empty() && sign != "-" && !body.empty() && body[0] != '-') body = (sign == "+" ? "+" : " ") + body;
  if (zero && !align) {
    bool negative = !body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ');
    std::string digits = negative ? body.substr(1) : body;
    int missing = width - static_cast<int>(body.size());
    if (missing > 0) digits = std::string(static_cast<size_t>(missing), '0') + digits;
    return (negative ? body.substr(0, 1) : "") + digits;
  }
  return pad_text(body, width, fill, align ? align : '>');
}

}  // namespace

std::string percent_format(const std::string& format, const Value& args) {
  List positional;
  const Dict* mapping = nullptr;
  if (args.kind == Kind::Tuple) {
    positional = *args.list;
  } else if (args.kind == Kind::Dict) {
    mapping = args.dict.get();
  } else {
    positional.push_back(args);
  }
  size_t next_arg = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out.push_back(format[i]);
      continue;
    }
    if (++i >= format.size()) raise("incomplete format");
    const Value* value = nullptr;
    if (format[i] == '(') {
      size_t close = format.find(')', i);
      if (close == std::string::npos || mapping == nullptr) raise("format requires a mapping");
      value = mapping->find(format.substr(i + 1, close - i - 1));
      if (value == nullptr) raise(repr_string(format.substr(i + 1, close - i - 1)));
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() && std::string("-+ #0").find(format[i]) != std::string::npos) flags.push_back(format[i++]);
    const int width = parse_count(format, i);
    int precision = -1;
    if (i < format.size() && format[i] == '.') {
      ++i;
      precision = parse_count(format, i);
    }
    while (i < format.size() && (format[i] == 'l' || format[i] == 'h' || format[i] == 'L')) ++i;
    if (i >= format.size()) raise("incomplete format");
    char type = format[i];
    if (type == '%') {
      out.push_back('%');
      continue;
    }
    if (value == nullptr) {
      if (next_arg >= positional.size()) raise("not enough arguments for format string");
      value = &positional[next_arg++];
    }
    out += convert_percent(*value, flags, width, precision, type);
    check_string_bytes(out.size());
  }
  if (mapping == nullptr && next_arg < positional.size()) raise("not all arguments converted during string formatting");
  return out;
}

std::string brace_format(const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') ++i;
      else raise("Single '}' encountered in format string");
      out.push_back('}');
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    size_t close = format.find('}', i);
    if (close == std::string::npos) raise("Single '{' encountered in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    i = close;
    std::string spec;
    size_t colon = field.find(':');
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    char conversion = '\0';
    size_t bang = field.find('!');
    if (bang != std::string::npos) {
      conversion = bang + 1 < field.size() ? field[bang + 1] : '\0';
      field = field.substr(0, bang);
    }
    const Value* value = nullptr;
    if (field.empty()) {
      value = auto_index < args.positional.size() ? &args.positional[auto_index] : nullptr;
      ++auto_index;
      if (value == nullptr) raise("Replacement index " + std::to_string(auto_index - 1) + " out of range for positional args tuple");
    } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
      size_t index = std::stoul(field);
      if (index >= args.positional.size()) raise("Replacement index " + field + " out of range for positional args tuple");
      value = &args.positional[index];
    } else {
      for (const auto& kw : args.keywords) {
        if (kw.first == field) value = &kw.second;
      }
      if (value == nullptr) raise("'" + field + "'");
    }
    if (conversion == 'r' || conversion == 'a') {
      out += apply_format_spec(Value::from_string(repr(*value)), spec);
    } else if (conversion == 's') {
      out += apply_format_spec(Value::from_string(to_str(*value)), spec);
    } else {
      out += apply_format_spec(*value, spec);
    }
    check_string_bytes(out.size());
  }
  return out;
}

}  // namespace spinlm::jinja
