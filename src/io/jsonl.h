// JSONL: one JSON value a line. Reading names the file and line of every problem (and reads
// Parquet files and globs of either as the same rows, see JsonlReader);
// writing is atomic (whole file) or resumable (appended rows, then renamed into place).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace spinlm {

using json = nlohmann::json;

class ParquetReader;

// The files a data input names: the path itself, or for a shell-style glob (a path with
// *, ? or [) every file it matches, sorted by name. A glob that matches nothing is an Error.
std::vector<std::string> expand_data_paths(const std::string& path);
// True where the path exists, or is a glob that matches at least one file.
bool data_path_exists(const std::string& path);

// Streams the row objects of a data input: a JSONL file, a Parquet file (io/parquet.h:
// ".parquet" paths, read row group by row group), or a glob of either, file after file.
// JSONL: blank lines are skipped; a line that is not valid JSON, is not an object, or is not
// valid UTF-8 raises an Error "FILE:LINE: ...", and so does one past the limits of
// src/io/json_text.h (nesting depth, size). Parquet: each row is an object of its columns;
// errors name the file and the row group, column and page.
class JsonlReader {
 public:
  explicit JsonlReader(std::string path);
  ~JsonlReader();
  JsonlReader(const JsonlReader&) = delete;
  JsonlReader& operator=(const JsonlReader&) = delete;
  // Reads the next object into row; false at the end of the last file.
  bool next(json& row);
  // 1-based line number (JSONL) or row number (Parquet) of the row last returned, in its file.
  int64_t line_number() const { return line_number_; }
  // The file the row last returned came from.
  const std::string& path() const { return path_; }
  // "FILE:LINE" (JSONL) or "FILE row N" (Parquet) of the row last returned, for error messages.
  std::string where() const;
  // True while reading a Parquet file: its errors are about the file, never one row that
  // could be skipped.
  bool is_parquet() const;

 private:
  // Opens files_[next_file_]; false when none is left.
  bool open_next_file();
  // The next line without its newline; false at the end of the file.
  bool read_line(std::string& line);

  std::vector<std::string> files_;
  size_t next_file_ = 0;
  std::string path_;
  std::ifstream in_;
  std::unique_ptr<ParquetReader> parquet_;
  int64_t line_number_ = 0;
};

// A row with the place it came from, for errors raised after reading.
struct JsonlRow {
  json value;
  int64_t line = 0;  // line (JSONL) or row (Parquet) number in its file
};

// All object rows of a data input (JSONL, Parquet, or a glob of them).
std::vector<JsonlRow> read_jsonl(const std::string& path);

// Field access that names file, line and field in its errors.
const json& require_field(const json& row, const std::string& key, const std::string& where);
std::string require_string(const json& row, const std::string& key, const std::string& where);
std::vector<int64_t> require_ids(const json& row, const std::string& key, const std::string& where);

// Writes rows as JSONL atomically.
void write_jsonl_atomic(const std::string& path, const std::vector<json>& rows);

// JSON text for one line: compact, UTF-8 kept as it is; invalid UTF-8 is replaced rather
// than aborting the dump (it cannot occur for text spinlm decoded itself).
std::string json_line(const json& row);

// Rows appended to "<path>.partial" and flushed one by one; a rerun after a kill reopens
// the partial file, drops a torn last line, and hands back the rows already done.
// finish() renames the partial file to path.
class ResumableJsonl {
 public:
  explicit ResumableJsonl(std::string path);
  ~ResumableJsonl();
  ResumableJsonl(const ResumableJsonl&) = delete;
  ResumableJsonl& operator=(const ResumableJsonl&) = delete;

  // Rows found in the partial file when opened (complete lines only).
  const std::vector<json>& existing_rows() const { return existing_; }
  void append(const json& row);
  // Renames the partial file into place. With rewrite_rows, writes those rows instead
  // (e.g. rows sorted back into input order) atomically and removes the partial file.
  void finish();
  void finish(const std::vector<json>& rewrite_rows);
  std::string partial_path() const { return path_ + ".partial"; }

 private:
  std::string path_;
  std::vector<json> existing_;
  std::FILE* file_ = nullptr;
};

}  // namespace spinlm
