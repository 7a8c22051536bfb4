#include "io/json_text.h"

#include <cstring>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace spinlm {

int json_nesting_depth(const std::string& text, int limit) {
  const char* p = text.data();
  const char* const end = p + text.size();
  int depth = 0;
  int deepest = 0;
  while (p < end) {
    const char c = *p++;
    if (c == '"') {
      // Skip the string: up to the next quote that no backslash escapes.
      while (p < end) {
        const char* stop = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
        if (stop == nullptr) return deepest;  // unterminated: the parser fails here
        size_t backslashes = 0;
        for (const char* q = stop; q > p && q[-1] == '\\'; --q) ++backslashes;
        p = stop + 1;
        if (backslashes % 2 == 0) break;
      }
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return limit + 1;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

nlohmann::json parse_json_text(const std::string& text, const std::string& where,
                               const nlohmann::json::parser_callback_t& callback,
                               const std::string& what) {
  check(text.size() <= kMaxJsonBytes, where, ": JSON text of ", text.size(),
        " bytes is larger than spinlm's limit of ", kMaxJsonBytes >> 20,
        " MiB (kMaxJsonBytes in src/io/json_text.h); check that this is the file you meant");
  check(json_nesting_depth(text) <= kMaxJsonDepth, where, ": JSON nested deeper than ",
        kMaxJsonDepth, " levels (spinlm's limit for every JSON file, kMaxJsonDepth in "
        "src/io/json_text.h; real files nest a few levels): the file is malformed or hostile");
  try {
    return nlohmann::json::parse(text, callback);
  } catch (const nlohmann::json::exception& error) {
    // parse_error, and out_of_range for numbers too large for a double.
    fail(where, ": ", what.empty() ? "" : what + " is ", "not valid JSON (", error.what(), ")");
  }
}

int64_t json_integer(const nlohmann::json& value, const std::string& what) {
  check(value.is_number_integer() &&
            (!value.is_number_unsigned() || value.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)),
        what, " must be an integer, got ", value.dump().substr(0, 40));
  return value.get<int64_t>();
}

nlohmann::json read_json_file(const std::string& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  check(error || size <= kMaxJsonBytes, path, ": ", size, " bytes, larger than spinlm's limit of ",
        kMaxJsonBytes >> 20, " MiB for a JSON file (kMaxJsonBytes in src/io/json_text.h); "
        "check that this is the file you meant");
  return parse_json_text(read_file(path), path);
}

}  // namespace spinlm
