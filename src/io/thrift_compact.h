// A reader of Apache Thrift's compact protocol (thrift/doc/specs/thrift-compact-protocol.md),
// the encoding of Parquet's FileMetaData footer and PageHeader structs. It walks a byte range
// field by field; a struct's reader asks for the fields it knows and skips the others.
// Every read is checked against the end of the range: a truncated or corrupt struct raises
// an Error "WHERE: ..." (WHERE names the file and the struct's place), never reads past it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace spinlm {

class ThriftCompactReader {
 public:
  // Compact-protocol type codes of field headers and collection headers.
  enum Type : uint8_t {
    kStop = 0, kBoolTrue = 1, kBoolFalse = 2, kByte = 3, kI16 = 4, kI32 = 5, kI64 = 6,
    kDouble = 7, kBinary = 8, kList = 9, kSet = 10, kMap = 11, kStruct = 12,
  };

  ThriftCompactReader(const uint8_t* begin, const uint8_t* end, std::string where);

  // Starts reading a struct's fields (the caller reads fields until next_field is false,
  // then calls end_struct). Nested structs keep their own last field id.
  void begin_struct();
  void end_struct();
  // The next field's id and type; false at the struct's STOP byte.
  bool next_field(int16_t& id, uint8_t& type);
  // Values of the field just announced (type is the field's type code).
  bool read_bool(uint8_t type);
  int32_t read_i32();
  int64_t read_i64();
  std::string read_binary();
  // A list or set header: its element count and element type.
  void read_list_header(int64_t& size, uint8_t& element_type);
  // Skips a value of the given type, nested structs and collections included.
  void skip(uint8_t type);

  // Bytes consumed since begin.
  size_t position() const { return static_cast<size_t>(pos_ - begin_); }
  const std::string& where() const { return where_; }

 private:
  uint8_t read_byte();
  uint64_t read_varint();
  [[noreturn]] void truncated() const;

  const uint8_t* begin_;
  const uint8_t* pos_;
  const uint8_t* end_;
  std::string where_;
  int16_t last_field_id_ = 0;
  // Field ids of the enclosing structs, restored by end_struct.
  int16_t saved_ids_[64] = {};
  int depth_ = 0;
  int skip_depth_ = 0;
};

}  // namespace spinlm
