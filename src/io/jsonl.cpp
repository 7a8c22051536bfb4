#include "io/jsonl.h"

#include <glob.h>
#include <unistd.h>

#include <algorithm>

#include <cerrno>
#include <cstring>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "io/parquet.h"

namespace spinlm {

static bool is_glob(const std::string& path) { return path.find_first_of("*?[") != std::string::npos; }

// The files a glob matches, sorted bytewise (glob(3) sorts by the locale's collation).
static std::vector<std::string> glob_files(const std::string& pattern) {
  glob_t found{};
  const int result = ::glob(pattern.c_str(), 0, nullptr, &found);
  std::vector<std::string> files;
  if (result == 0) {
    for (size_t i = 0; i < found.gl_pathc; ++i) files.emplace_back(found.gl_pathv[i]);
  }
  ::globfree(&found);
  check(result == 0 || result == GLOB_NOMATCH, pattern, ": cannot expand the glob (",
        result == GLOB_NOSPACE ? "out of memory" : "read error", ")");
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> expand_data_paths(const std::string& path) {
  if (!is_glob(path) || file_exists(path)) return {path};
  std::vector<std::string> files = glob_files(path);
  check(!files.empty(), path, ": no files match this pattern");
  return files;
}

bool data_path_exists(const std::string& path) {
  return file_exists(path) || (is_glob(path) && !glob_files(path).empty());
}

JsonlReader::JsonlReader(std::string path) : files_(expand_data_paths(path)), path_(files_.front()) {
  check(open_next_file(), path_, ": cannot open for reading");
}

JsonlReader::~JsonlReader() = default;

bool JsonlReader::open_next_file() {
  if (next_file_ >= files_.size()) return false;
  path_ = files_[next_file_++];
  line_number_ = 0;
  in_.close();
  parquet_.reset();
  if (is_parquet_path(path_)) {
    parquet_ = std::make_unique<ParquetReader>(path_);
  } else {
    in_.clear();
    in_.open(path_, std::ios::binary);
    check(in_.good(), path_, ": cannot open for reading (", std::strerror(errno), ")");
  }
  return true;
}

bool JsonlReader::is_parquet() const { return is_parquet_path(path_); }

std::string JsonlReader::where() const {
  if (parquet_) return parquet_->where();
  return path_ + ":" + std::to_string(line_number_);
}

bool JsonlReader::read_line(std::string& line) {
  // In chunks, so that a line longer than kMaxJsonBytes is refused before it is all in memory.
  line.clear();
  char chunk[1 << 16];
  while (true) {
    in_.getline(chunk, sizeof chunk);
    const auto count = static_cast<size_t>(in_.gcount());
    if (in_.eof()) {
      line.append(chunk, count);
      return count > 0 || !line.empty();
    }
    if (!in_.fail()) {  // the newline was read (and counted)
      line.append(chunk, count - 1);
      return true;
    }
    check(!in_.bad(), path_, ": read error");
    in_.clear();  // the chunk filled before the end of the line
    line.append(chunk, count);
    check(line.size() <= kMaxJsonBytes, path_, ":", line_number_ + 1, ": a line longer than spinlm's limit of ",
          kMaxJsonBytes >> 20, " MiB for one JSON row (kMaxJsonBytes in src/io/json_text.h); "
          "check that this is a JSONL file");
  }
}

bool JsonlReader::next(json& row) {
  while (true) {
    if (parquet_) {
      if (parquet_->next(row)) {
        line_number_ = parquet_->row_number();
        return true;
      }
    } else {
      std::string line;
      while (read_line(line)) {
        ++line_number_;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        row = parse_json_text(line, where());
        check(row.is_object(), where(), ": expected a JSON object, got ", row.type_name());
        return true;
      }
      check(!in_.bad(), path_, ": read error");
    }
    if (!open_next_file()) return false;
  }
}

std::vector<JsonlRow> read_jsonl(const std::string& path) {
  JsonlReader reader(path);
  std::vector<JsonlRow> rows;
  json row;
  while (reader.next(row)) rows.push_back({std::move(row), reader.line_number()});
  return rows;
}

const json& require_field(const json& row, const std::string& key, const std::string& where) {
  auto found = row.find(key);
  check(found != row.end(), where, ": missing field \"", key, "\"");
  return *found;
}

std::string require_string(const json& row, const std::string& key, const std::string& where) {
  const json& value = require_field(row, key, where);
  check(value.is_string(), where, ": field \"", key, "\" must be a string, got ",
        value.type_name());
  return value.get<std::string>();
}

std::vector<int64_t> require_ids(const json& row, const std::string& key, const std::string& where) {
  const json& value = require_field(row, key, where);
  check(value.is_array(), where, ": field \"", key, "\" must be an array of token ids");
  std::vector<int64_t> ids;
  ids.reserve(value.size());
  for (const json& id : value) {
    check(id.is_number_integer(), where, ": field \"", key, "\" must hold integers, got ",
          id.dump());
    ids.push_back(id.get<int64_t>());
  }
  return ids;
}

std::string json_line(const json& row) {
  return row.dump(-1, ' ', false, json::error_handler_t::replace);
}

void write_jsonl_atomic(const std::string& path, const std::vector<json>& rows) {
  AtomicFile file(path);
  for (const json& row : rows) file.write(json_line(row) + "\n");
  file.commit();
}

ResumableJsonl::ResumableJsonl(std::string path) : path_(std::move(path)) {
  std::string partial = partial_path();
  if (file_exists(partial)) {
    // Keep complete lines; a line torn by a kill (no trailing newline) is dropped.
    std::string content = read_file(partial);
    size_t keep = content.rfind('\n');
    keep = keep == std::string::npos ? 0 : keep + 1;
    size_t start = 0;
    int64_t line = 0;
    while (start < keep) {
      size_t end = content.find('\n', start);
      ++line;
      std::string text = content.substr(start, end - start);
      start = end + 1;
      if (text.empty()) continue;
      try {
        existing_.push_back(parse_json_text(text, partial + ":" + std::to_string(line)));
      } catch (const Error& error) {
        fail(error.what(), "; this partial output is corrupt: delete the file to start over");
      }
    }
    const bool truncated = ::truncate(partial.c_str(), static_cast<off_t>(keep)) == 0;
    check(truncated, partial,
          ": cannot truncate (", std::strerror(errno), ")");
  }
  file_ = std::fopen(partial.c_str(), "ab");
  check(file_ != nullptr, partial, ": cannot open for appending (", std::strerror(errno), ")");
}

ResumableJsonl::~ResumableJsonl() {
  if (file_ != nullptr) std::fclose(file_);
}

void ResumableJsonl::append(const json& row) {
  std::string line = json_line(row) + "\n";
  // One write of the whole line, then a flush: a kill leaves at most one torn line.
  // errno is read after the write (function arguments have no order of evaluation).
  const bool written = std::fwrite(line.data(), 1, line.size(), file_) == line.size() && std::fflush(file_) == 0;
  check(written, partial_path(), ": write failed (", std::strerror(errno), ")");
}

void ResumableJsonl::finish() {
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  check(flushed, partial_path(), ": write failed (", std::strerror(errno), ")");
  std::fclose(file_);
  file_ = nullptr;
  const bool renamed = std::rename(partial_path().c_str(), path_.c_str()) == 0;
  check(renamed, path_,
        ": cannot rename the finished output into place (", std::strerror(errno), ")");
}

void ResumableJsonl::finish(const std::vector<json>& rewrite_rows) {
  std::fclose(file_);
  file_ = nullptr;
  write_jsonl_atomic(path_, rewrite_rows);
  std::remove(partial_path().c_str());
}

}  // namespace spinlm
