// Apache Parquet files (parquet-format's Parquet.thrift and Encodings.md), read row by row
// as JSON objects: the files the HuggingFace Hub serves its datasets as.
//
// What is read: the footer (magic "PAR1", FileMetaData in Thrift's compact protocol, see
// io/thrift_compact.h), the schema tree, every row group's column chunks, and their pages:
// DICTIONARY_PAGE, DATA_PAGE (v1) and DATA_PAGE_V2. Encodings: PLAIN, PLAIN_DICTIONARY and
// RLE_DICTIONARY, RLE (booleans), BYTE_STREAM_SPLIT (floats), DELTA_BINARY_PACKED,
// DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY; repetition and definition levels in the
// RLE/bit-packed hybrid. Compression: UNCOMPRESSED, SNAPPY, GZIP and ZSTD. Physical types
// BOOLEAN, INT32, INT64, FLOAT, DOUBLE and BYTE_ARRAY.
//
// Rows as JSON: a LIST (three-level, or the older two-level forms) or an unannotated
// repeated field becomes an array, a group a JSON object, a null at any level JSON null;
// BYTE_ARRAY becomes a string (it must be UTF-8); integers (dates and timestamps too: the
// stored count of days or time units) become JSON integers, unsigned ones (UINT_32, UINT_64)
// unsigned; a MAP becomes an array of {"key": ..., "value": ...} objects, its stored form.
// What is refused, with an Error naming file, row group, column and page: INT96,
// FIXED_LEN_BYTE_ARRAY and DECIMAL columns, the deprecated BIT_PACKED level encoding, other
// codecs (LZO, BROTLI, LZ4, LZ4_RAW), column chunks in another file (file_path).
//
// Memory is bounded by a row group: the reader decodes one row group's columns at a time.
// Every size in the file is checked against the file's size (or, for decompressed pages,
// against the page header and kMaxParquetPageBytes) before anything is allocated for it.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace spinlm {

// Largest decompressed page accepted: 1 GiB (a page header's sizes are 32-bit).
constexpr int64_t kMaxParquetPageBytes = int64_t{1} << 30;
// Most values (level entries) one column chunk of one row group may hold: 2^26, about 1.3 GiB
// of decoded levels and JSON values; real row groups hold a few million at most.
constexpr int64_t kMaxParquetColumnValues = int64_t{1} << 26;
// Most bytes of strings one column chunk may decode to: 2 GiB (a row group of UltraChat
// holds a few hundred MB of text in its largest column).
constexpr int64_t kMaxParquetColumnBytes = int64_t{2} << 30;

struct ParquetFileMeta;
struct ParquetField;
struct ParquetLeaf;
struct ParquetColumnData;

class ParquetReader {
 public:
  // Opens the file and reads its footer; a bad magic, a truncated footer or metadata that
  // does not fit in the file raise an Error naming it.
  explicit ParquetReader(std::string path);
  ~ParquetReader();
  ParquetReader(const ParquetReader&) = delete;
  ParquetReader& operator=(const ParquetReader&) = delete;

  // Reads the next row into row; false after the last row of the last row group.
  bool next(nlohmann::json& row);
  // 1-based number of the row last returned, counted over the whole file.
  int64_t row_number() const { return row_number_; }
  const std::string& path() const { return path_; }
  // "FILE row N" of the row last returned.
  std::string where() const;

  // Rows in the file (FileMetaData.num_rows) and its row groups.
  int64_t num_rows() const;
  int64_t num_row_groups() const;
  // The schema as an indented tree, one field a line: "messages: list<struct<...>>"-like
  // lines with each field's physical type, repetition and logical type.
  std::string schema_text() const;
  // FileMetaData.created_by (the writer), empty where the file does not say.
  std::string created_by() const;

 private:
  void read_footer();
  void load_row_group(int64_t index);
  ParquetColumnData read_column_chunk(int64_t row_group, int64_t column);
  nlohmann::json assemble(const ParquetField& field);
  void skip_one(const ParquetField& field);
  std::string read_range(int64_t offset, int64_t size, const std::string& what);

  std::string path_;
  std::ifstream in_;
  int64_t file_size_ = 0;
  std::unique_ptr<ParquetFileMeta> meta_;
  std::unique_ptr<ParquetField> root_;
  std::vector<ParquetLeaf> leaves_;  // the columns, in the row groups' order
  std::vector<ParquetColumnData> columns_;
  int64_t row_group_ = -1;        // index of the loaded row group
  int64_t rows_left_in_group_ = 0;
  int64_t row_number_ = 0;
};

// True for a path that names a Parquet file (it ends in ".parquet", any case).
bool is_parquet_path(const std::string& path);

}  // namespace spinlm
