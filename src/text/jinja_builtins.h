// The built-in library of the Jinja2 interpreter: attribute and item access (with Python's
// str/dict/list methods as the sandbox allows them), slicing, filters, tests, and Python's
// %-formatting and str.format.
#pragma once
#include <string>

#include "text/jinja_value.h"

namespace spinlm::jinja {

// obj.name as jinja2's sandbox resolves it: a method of str/dict/list, a dict key, a
// namespace attribute; Undefined when missing. Fails when obj is Undefined.
Value get_attribute(const Value& obj, const std::string& name);
// obj[key]: dict key, list/str index (negative counts from the end), else as get_attribute.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] with Python's clamping; absent parts are None/Undefined.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Filters and tests by jinja2 name; fail with "No filter named 'x'." / "No test named 'x'.".
Value call_filter(const std::string& name, const Value& input, const CallArgs& args);
bool call_test(const std::string& name, const Value& input, const CallArgs& args);
// Python's `item in container` (substring, list member, dict key; Undefined contains nothing).
bool value_contains(const Value& container, const Value& item);

// Python's `format % args` (args: a tuple, a dict, or a single value) and str.format().
std::string percent_format(const std::string& format, const Value& args);
std::string brace_format(const std::string& format, const CallArgs& args);

// Byte offset of the first sub in s at or after pos (npos if none), in time linear in the
// sizes (glibc's memmem: two-way matching), where std::string::find can take
// size(s) * size(sub) steps on a hostile pair.
size_t find_text(const std::string& s, const std::string& sub, size_t pos = 0);
// Byte offset of the last sub in s (npos if none), likewise in linear time.
size_t rfind_text(const std::string& s, const std::string& sub);

// Python string helpers shared by methods and filters.
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right);
std::string py_capitalize(const std::string& s);
std::string py_title(const std::string& s);
std::string py_replace(const std::string& s, const std::string& old, const std::string& replacement, int64_t count);
List py_split(const std::string& s, const Value* separator, int64_t max_split);
List py_splitlines(const std::string& s, bool keep_ends);

}  // namespace spinlm::jinja
