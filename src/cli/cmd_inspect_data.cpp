// `spinlm inspect-data FILE`: what a data input holds, so a user sees which columns a recipe
// can use. For Parquet files (and globs of them): each file's writer, rows and row groups
// from its footer, the schema tree, then the first rows as JSON. For JSONL: the row count,
// the fields of the first rows with their JSON types, and the first rows.
#include <cstdio>
#include <map>
#include <memory>

#include "cli/command.h"
#include "core/error.h"
#include "io/jsonl.h"
#include "io/parquet.h"

namespace spinlm {
namespace {

struct InspectDataOptions {
  std::string path;
  int64_t rows = 3;
  bool full = false;
};

// A copy of value with every string longer than limit bytes cut at a UTF-8 character
// boundary and marked with its full length.
json shorten(const json& value, size_t limit) {
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text.size() <= limit) return value;
    size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
    return text.substr(0, cut) + "... (" + std::to_string(text.size()) + " bytes)";
  }
  if (value.is_array() || value.is_object()) {
    json copy = value;
    for (auto& item : copy) item = shorten(item, limit);
    return copy;
  }
  return value;
}

void print_rows(const InspectDataOptions& o) {
  if (o.rows <= 0) return;
  JsonlReader reader(o.path);
  int64_t shown = 0;
  std::printf("first rows:\n");
  for (json row; shown < o.rows && reader.next(row); ++shown) {
    std::printf("  %s: %s\n", reader.where().c_str(), json_line(o.full ? row : shorten(row, 120)).c_str());
  }
  if (shown == 0) std::printf("  (none)\n");
}

void run_inspect_data(const InspectDataOptions& o) {
  const std::vector<std::string> files = expand_data_paths(o.path);
  bool all_parquet = true;
  for (const std::string& file : files) all_parquet = all_parquet && is_parquet_path(file);
  if (all_parquet) {
    int64_t total = 0;
    std::string first_schema;
    for (const std::string& file : files) {
      ParquetReader reader(file);
      total += reader.num_rows();
      std::printf("file: %s\n", file.c_str());
      if (!reader.created_by().empty()) std::printf("  written by: %s\n", reader.created_by().c_str());
      std::printf("  rows: %lld in %lld row groups\n", (long long)reader.num_rows(),
                  (long long)reader.num_row_groups());
      const std::string schema = reader.schema_text();
      if (first_schema.empty()) {
        first_schema = schema;
      } else if (schema != first_schema) {
        std::printf("  its schema differs from the first file's:\n%s", schema.c_str());
      }
    }
    std::printf("schema:\n");
    std::string line;
    for (char c : first_schema) {
      line += c;
      if (c == '\n') {
        std::printf("  %s", line.c_str());
        line.clear();
      }
    }
    if (files.size() > 1) std::printf("files: %zu\nrows: %lld\n", files.size(), (long long)total);
  } else {
    // JSONL (or a mix): read every row to count them; fields and types from the first rows.
    JsonlReader reader(o.path);
    int64_t count = 0;
    std::map<std::string, std::string> fields;
    for (json row; reader.next(row); ++count) {
      if (count >= 100) continue;
      for (const auto& [key, value] : row.items()) {
        std::string& types = fields[key];
        const std::string type = value.type_name();
        if (types.find(type) == std::string::npos) types += (types.empty() ? "" : " | ") + type;
      }
    }
    std::printf("files: %zu\nrows: %lld\nfields (of the first %lld rows):\n", files.size(), (long long)count,
                (long long)std::min<int64_t>(count, 100));
    for (const auto& [key, types] : fields) std::printf("  %s: %s\n", key.c_str(), types.c_str());
  }
  print_rows(o);
}

CommandAction setup_inspect_data(CLI::App& app) {
  auto o = std::make_shared<InspectDataOptions>();
  app.add_option("file", o->path, "a data input: JSONL or Parquet file, or a quoted glob of them")->required();
  app.add_option("--rows", o->rows, "how many first rows to print (default 3)")->check(CLI::NonNegativeNumber);
  app.add_flag("--full", o->full, "print rows whole (strings longer than 120 bytes are cut otherwise)");
  return [o] { run_inspect_data(*o); };
}

const bool registered = register_command(
    "inspect-data", "show a data file's schema (Parquet) or fields (JSONL), row count and first rows",
    setup_inspect_data);

}  // namespace
}  // namespace spinlm
