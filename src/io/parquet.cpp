#include "io/parquet.h"

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "io/thrift_compact.h"

namespace spinlm {

using json = nlohmann::json;

namespace {

// parquet-format's enums, as Parquet.thrift numbers them.
enum PhysicalType { kBoolean = 0, kInt32 = 1, kInt64 = 2, kInt96 = 3, kFloat = 4, kDouble = 5,
                    kByteArray = 6, kFixedLenByteArray = 7 };
enum Repetition { kRequired = 0, kOptional = 1, kRepeated = 2 };
enum ConvertedType { kUtf8 = 0, kMap = 1, kMapKeyValue = 2, kList = 3, kEnum = 4, kDecimal = 5,
                     kUint8 = 11, kUint16 = 12, kUint32 = 13, kUint64 = 14, kJson = 19 };
// Field ids of the LogicalType union.
enum LogicalType { kLogicalString = 1, kLogicalMap = 2, kLogicalList = 3, kLogicalEnum = 4,
                   kLogicalDecimal = 5, kLogicalInteger = 10, kLogicalJson = 12 };
enum Codec { kUncompressed = 0, kSnappy = 1, kGzip = 2, kLzo = 3, kBrotli = 4, kLz4 = 5, kZstd = 6,
             kLz4Raw = 7 };
enum Encoding { kPlain = 0, kPlainDictionary = 2, kRle = 3, kBitPacked = 4, kDeltaBinaryPacked = 5,
                kDeltaLengthByteArray = 6, kDeltaByteArray = 7, kRleDictionary = 8,
                kByteStreamSplit = 9 };
enum PageType { kDataPage = 0, kIndexPage = 1, kDictionaryPage = 2, kDataPageV2 = 3 };

const char* type_name(int type) {
  static const char* names[] = {"BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE",
                                "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
  return type >= 0 && type < 8 ? names[type] : "unknown";
}

std::string codec_name(int codec) {
  static const char* names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD",
                                "LZ4_RAW"};
  return codec >= 0 && codec < 8 ? names[codec] : "codec " + std::to_string(codec);
}

std::string encoding_name(int encoding) {
  static const char* names[] = {"PLAIN", "GROUP_VAR_INT", "PLAIN_DICTIONARY", "RLE", "BIT_PACKED",
                                "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY",
                                "DELTA_BYTE_ARRAY", "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"};
  return encoding >= 0 && encoding < 10 ? names[encoding] : "encoding " + std::to_string(encoding);
}

}  // namespace

// One SchemaElement of FileMetaData.schema (a flattened depth-first tree).
struct ParquetSchemaElement {
  std::string name;
  int type = -1;  // physical type; -1 for a group
  int repetition = kRequired;
  int num_children = 0;
  int converted_type = -1;
  int logical_type = -1;  // the LogicalType union's field id
};

struct ParquetColumnMeta {
  int type = -1;
  std::vector<std::string> path;
  int codec = kUncompressed;
  int64_t num_values = 0;
  int64_t total_compressed_size = 0;
  int64_t data_page_offset = -1;
  int64_t dictionary_page_offset = -1;
  bool external = false;  // ColumnChunk.file_path is set
};

struct ParquetRowGroupMeta {
  std::vector<ParquetColumnMeta> columns;
  int64_t num_rows = 0;
};

struct ParquetFileMeta {
  std::vector<ParquetSchemaElement> schema;
  int64_t num_rows = 0;
  std::vector<ParquetRowGroupMeta> row_groups;
  std::string created_by;
  int64_t data_end = 0;  // first byte of the footer
};

// The schema as the rows see it: objects, arrays and leaves (columns), each with the
// definition level at which it is non-null and, for arrays, the levels of its elements.
struct ParquetField {
  enum Kind { kLeaf, kStruct, kArray } kind = kLeaf;
  std::string name;
  bool nullable = false;
  int def_present = 0;  // definition level at which the value is non-null
  int def_element = 0;  // arrays: definition level at which it has an element
  int rep_level = 0;    // arrays: repetition level of its elements
  int first_leaf = 0;   // columns under this field: [first_leaf, end_leaf)
  int end_leaf = 0;
  std::vector<ParquetField> children;  // object fields, or an array's one element
};

// A leaf column's description.
struct ParquetLeaf {
  std::string name;  // dotted path
  int type = -1;
  int max_def = 0;
  int max_rep = 0;
  bool is_string = false;   // STRING/UTF8/ENUM/JSON annotation
  bool is_unsigned = false; // UINT_* annotation
};

// One row group's decoded column: a (repetition, definition) level pair per entry and a
// value per entry defined at the leaf.
struct ParquetColumnData {
  std::vector<uint16_t> rep;
  std::vector<uint16_t> def;
  std::vector<json> values;
  size_t entry = 0;
  size_t value = 0;
};

namespace {

// ---- Thrift structs of Parquet.thrift -------------------------------------------------

template <class Fn>
void read_struct(ThriftCompactReader& in, Fn&& field) {
  in.begin_struct();
  int16_t id = 0;
  uint8_t type = 0;
  while (in.next_field(id, type)) field(id, type);
  in.end_struct();
}

// Reads a list, calling element() for each element (the caller reads the element).
template <class Fn>
void read_list(ThriftCompactReader& in, Fn&& element) {
  int64_t size = 0;
  uint8_t type = 0;
  in.read_list_header(size, type);
  for (int64_t i = 0; i < size; ++i) element(type);
}

void expect(ThriftCompactReader& in, uint8_t type, uint8_t wanted, const char* field) {
  check(type == wanted, in.where(), ": field ", field, " has Thrift type ", int(type), ", expected ",
        int(wanted));
}

ParquetSchemaElement read_schema_element(ThriftCompactReader& in) {
  ParquetSchemaElement e;
  read_struct(in, [&](int16_t id, uint8_t type) {
    using T = ThriftCompactReader;
    if (id == 1 && type == T::kI32) e.type = in.read_i32();
    else if (id == 3 && type == T::kI32) e.repetition = in.read_i32();
    else if (id == 4 && type == T::kBinary) e.name = in.read_binary();
    else if (id == 5 && type == T::kI32) e.num_children = in.read_i32();
    else if (id == 6 && type == T::kI32) e.converted_type = in.read_i32();
    else if (id == 10 && type == T::kStruct) {
      // LogicalType is a union: its one set field's id names the type.
      read_struct(in, [&](int16_t member, uint8_t member_type) {
        e.logical_type = member;
        in.skip(member_type);
      });
    } else in.skip(type);
  });
  return e;
}

ParquetColumnMeta read_column_meta(ThriftCompactReader& in) {
  ParquetColumnMeta c;
  read_struct(in, [&](int16_t id, uint8_t type) {
    using T = ThriftCompactReader;
    if (id == 1 && type == T::kI32) c.type = in.read_i32();
    else if (id == 3 && type == T::kList) {
      read_list(in, [&](uint8_t t) {
        expect(in, t, T::kBinary, "path_in_schema");
        c.path.push_back(in.read_binary());
      });
    } else if (id == 4 && type == T::kI32) c.codec = in.read_i32();
    else if (id == 5 && type == T::kI64) c.num_values = in.read_i64();
    else if (id == 7 && type == T::kI64) c.total_compressed_size = in.read_i64();
    else if (id == 9 && type == T::kI64) c.data_page_offset = in.read_i64();
    else if (id == 11 && type == T::kI64) c.dictionary_page_offset = in.read_i64();
    else in.skip(type);
  });
  return c;
}

ParquetRowGroupMeta read_row_group(ThriftCompactReader& in) {
  ParquetRowGroupMeta g;
  read_struct(in, [&](int16_t id, uint8_t type) {
    using T = ThriftCompactReader;
    if (id == 1 && type == T::kList) {
      read_list(in, [&](uint8_t t) {
        expect(in, t, T::kStruct, "columns");
        ParquetColumnMeta column;
        bool have_meta = false;
        read_struct(in, [&](int16_t cid, uint8_t ctype) {
          if (cid == 1 && ctype == T::kBinary) {
            column.external = !in.read_binary().empty();
          } else if (cid == 3 && ctype == T::kStruct) {
            const bool external = column.external;
            column = read_column_meta(in);
            column.external = external;
            have_meta = true;
          } else in.skip(ctype);
        });
        check(have_meta || column.external, in.where(), ": a column chunk without meta_data");
        g.columns.push_back(std::move(column));
      });
    } else if (id == 3 && type == T::kI64) g.num_rows = in.read_i64();
    else in.skip(type);
  });
  return g;
}

struct PageHeader {
  int type = -1;
  int32_t uncompressed_size = -1;
  int32_t compressed_size = -1;
  int32_t num_values = -1;
  int encoding = -1;
  int def_encoding = kRle;
  int rep_encoding = kRle;
  int32_t def_bytes = 0;  // v2
  int32_t rep_bytes = 0;  // v2
  bool is_compressed = true;  // v2
};

PageHeader read_page_header(ThriftCompactReader& in) {
  PageHeader h;
  using T = ThriftCompactReader;
  read_struct(in, [&](int16_t id, uint8_t type) {
    if (id == 1 && type == T::kI32) h.type = in.read_i32();
    else if (id == 2 && type == T::kI32) h.uncompressed_size = in.read_i32();
    else if (id == 3 && type == T::kI32) h.compressed_size = in.read_i32();
    else if (id == 5 && type == T::kStruct) {  // DataPageHeader
      read_struct(in, [&](int16_t f, uint8_t t) {
        if (f == 1 && t == T::kI32) h.num_values = in.read_i32();
        else if (f == 2 && t == T::kI32) h.encoding = in.read_i32();
        else if (f == 3 && t == T::kI32) h.def_encoding = in.read_i32();
        else if (f == 4 && t == T::kI32) h.rep_encoding = in.read_i32();
        else in.skip(t);
      });
    } else if (id == 7 && type == T::kStruct) {  // DictionaryPageHeader
      read_struct(in, [&](int16_t f, uint8_t t) {
        if (f == 1 && t == T::kI32) h.num_values = in.read_i32();
        else if (f == 2 && t == T::kI32) h.encoding = in.read_i32();
        else in.skip(t);
      });
    } else if (id == 8 && type == T::kStruct) {  // DataPageHeaderV2
      read_struct(in, [&](int16_t f, uint8_t t) {
        if (f == 1 && t == T::kI32) h.num_values = in.read_i32();
        else if (f == 4 && t == T::kI32) h.encoding = in.read_i32();
        else if (f == 5 && t == T::kI32) h.def_bytes = in.read_i32();
        else if (f == 6 && t == T::kI32) h.rep_bytes = in.read_i32();
        else if (f == 7 && (t == T::kBoolTrue || t == T::kBoolFalse)) h.is_compressed = in.read_bool(t);
        else in.skip(t);
      });
    } else in.skip(type);
  });
  return h;
}

// ---- Encodings.md ----------------------------------------------------------------------

// A bounded little-endian byte cursor over a decoded page.
struct Bytes {
  const uint8_t* pos;
  const uint8_t* end;
  const std::string* where;

  size_t left() const { return static_cast<size_t>(end - pos); }
  void need(size_t n, const char* what) const {
    check(n <= left(), *where, ": ", what, " runs past the end of the page");
  }
  uint8_t byte() { need(1, "a value"); return *pos++; }
  uint32_t u32() {
    need(4, "a 4-byte value");
    uint32_t v;
    std::memcpy(&v, pos, 4);
    pos += 4;
    return v;
  }
  uint64_t uleb128() {
    uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      const uint8_t b = byte();
      value |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return value;
    }
    fail(*where, ": a varint longer than 10 bytes");
  }
  int64_t zigzag() {
    const uint64_t n = uleb128();
    return static_cast<int64_t>(n >> 1) ^ -static_cast<int64_t>(n & 1);
  }
};

int bit_width_of(uint64_t max_value) {
  int width = 0;
  while (max_value > 0) { ++width; max_value >>= 1; }
  return width;
}

// Unpacks count values of bit_width bits each, least significant bit first.
template <class Out>
void unpack_bits(const uint8_t* data, int bit_width, int64_t count, Out&& out) {
  uint64_t bit = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint64_t value = 0;
    for (int b = 0; b < bit_width;) {
      const uint64_t byte = data[bit >> 3];
      const int offset = static_cast<int>(bit & 7);
      const int take = std::min(8 - offset, bit_width - b);
      value |= ((byte >> offset) & ((1u << take) - 1)) << b;
      b += take;
      bit += take;
    }
    out(value);
  }
}

// The RLE/bit-packed hybrid: count values of bit_width bits (bit_width <= 32).
template <class Out>
void decode_hybrid(Bytes in, int bit_width, int64_t count, Out&& out) {
  check(bit_width >= 0 && bit_width <= 32, *in.where, ": RLE bit width ", bit_width, " above 32");
  int64_t done = 0;
  while (done < count) {
    const uint64_t header = in.uleb128();
    if (header & 1) {  // bit-packed run of (header >> 1) groups of 8 values
      const uint64_t groups = header >> 1;
      check(bit_width == 0 || groups <= in.left(), *in.where, ": a bit-packed run runs past the end of the page");
      const size_t bytes = static_cast<size_t>(groups) * static_cast<size_t>(bit_width);
      // A writer may cut the last run short of its groups' bytes at the end of the data.
      const uint64_t left = static_cast<uint64_t>(count - done);
      const int64_t values = static_cast<int64_t>(groups >= (left + 7) / 8 ? left : groups * 8);
      const size_t used = (static_cast<size_t>(values) * bit_width + 7) / 8;
      in.need(used, "a bit-packed run");
      unpack_bits(in.pos, bit_width, values, out);
      in.pos += std::min(bytes, in.left());
      done += values;
    } else {  // RLE run: (header >> 1) repeats of one value in ceil(bit_width / 8) bytes
      const uint64_t repeats = header >> 1;
      const int value_bytes = (bit_width + 7) / 8;
      in.need(value_bytes, "an RLE run");
      uint64_t value = 0;
      for (int b = 0; b < value_bytes; ++b) value |= static_cast<uint64_t>(in.pos[b]) << (8 * b);
      in.pos += value_bytes;
      check(repeats > 0, *in.where, ": an RLE run of length 0");
      const int64_t n = static_cast<int64_t>(std::min<uint64_t>(repeats, static_cast<uint64_t>(count - done)));
      for (int64_t i = 0; i < n; ++i) out(value);
      done += n;
    }
  }
}

// Levels (repetition or definition) in the hybrid encoding, each checked against max_level.
void decode_levels(Bytes in, int max_level, int64_t count, std::vector<uint16_t>& out, const char* what) {
  const int width = bit_width_of(static_cast<uint64_t>(max_level));
  decode_hybrid(in, width, count, [&](uint64_t level) {
    check(level <= static_cast<uint64_t>(max_level), *in.where, ": ", what, " level ", level,
          " above the column's maximum ", max_level);
    out.push_back(static_cast<uint16_t>(level));
  });
}

// DELTA_BINARY_PACKED: a header (block size, miniblocks per block, value count, first value)
// then blocks of a min delta and per-miniblock bit widths. Returns the values; in.pos ends
// after the last miniblock that holds values.
std::vector<int64_t> decode_delta_binary(Bytes& in, int64_t max_count) {
  const uint64_t block_size = in.uleb128();
  const uint64_t miniblocks = in.uleb128();
  const uint64_t total = in.uleb128();
  int64_t value = in.zigzag();
  // Writers use blocks of 128 to a few thousand values; 2^24 keeps every size below in range.
  check(block_size > 0 && block_size <= (uint64_t{1} << 24) && block_size % 128 == 0 && miniblocks > 0 &&
            block_size % miniblocks == 0 &&
            (block_size / miniblocks) % 32 == 0,
        *in.where, ": DELTA_BINARY_PACKED header with block size ", block_size, " and ", miniblocks,
        " miniblocks is invalid");
  check(total <= static_cast<uint64_t>(max_count), *in.where, ": DELTA_BINARY_PACKED holds ", total,
        " values where the page has room for ", max_count);
  const uint64_t per_miniblock = block_size / miniblocks;
  std::vector<int64_t> values;
  values.reserve(total);
  if (total == 0) return values;
  values.push_back(value);
  while (values.size() < total) {
    const uint64_t min_delta = static_cast<uint64_t>(in.zigzag());
    in.need(miniblocks, "a DELTA_BINARY_PACKED block header");
    const uint8_t* widths = in.pos;
    in.pos += miniblocks;
    for (uint64_t m = 0; m < miniblocks && values.size() < total; ++m) {
      const int width = widths[m];
      check(width <= 64, *in.where, ": DELTA_BINARY_PACKED bit width ", width, " above 64");
      const size_t bytes = static_cast<size_t>(per_miniblock) * width / 8;
      in.need(bytes, "a DELTA_BINARY_PACKED miniblock");
      const int64_t n = static_cast<int64_t>(std::min<uint64_t>(per_miniblock, total - values.size()));
      if (width <= 32) {
        unpack_bits(in.pos, width, n, [&](uint64_t delta) {
          value = static_cast<int64_t>(static_cast<uint64_t>(value) + min_delta + delta);
          values.push_back(value);
        });
      } else {
        // Widths above 32 bits: assemble each value from its bits one at a time.
        for (int64_t i = 0; i < n; ++i) {
          uint64_t delta = 0;
          const uint64_t first = static_cast<uint64_t>(i) * width;
          for (int b = 0; b < width; ++b) {
            const uint64_t bit = first + b;
            delta |= static_cast<uint64_t>((in.pos[bit >> 3] >> (bit & 7)) & 1) << b;
          }
          value = static_cast<int64_t>(static_cast<uint64_t>(value) + min_delta + delta);
          values.push_back(value);
        }
      }
      in.pos += bytes;
    }
  }
  return values;
}

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned c = *p;
    int n;
    uint32_t cp;
    if (c < 0x80) { ++p; continue; }
    if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
    else return false;
    if (end - p - 1 < n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    p += n + 1;
  }
  return true;
}

// Decodes count values of the leaf's physical type in the given encoding and appends them.
// budget: bytes the column chunk's decoded strings may still take (dictionary indices and
// shared DELTA_BYTE_ARRAY prefixes repeat bytes, so decoded data can far outgrow the file).
void decode_values(Bytes in, int encoding, int64_t count, const ParquetLeaf& leaf,
                   const std::vector<json>* dictionary, std::vector<json>& out, int64_t& budget) {
  const std::string& where = *in.where;
  auto charge = [&](size_t bytes) {
    budget -= static_cast<int64_t>(bytes);
    if (budget < 0) {
      fail(where, ": the column chunk decodes to more than spinlm's limit of ", kMaxParquetColumnBytes >> 20,
           " MiB of strings (kMaxParquetColumnBytes)");
    }
  };
  auto string_value = [&](const uint8_t* data, size_t size) {
    charge(size);
    std::string s(reinterpret_cast<const char*>(data), size);
    check(valid_utf8(s), where, ": a ", leaf.is_string ? "string" : "BYTE_ARRAY",
          " value that is not valid UTF-8 (value ", out.size() + 1, ")");
    out.emplace_back(std::move(s));
  };
  auto integer_value = [&](int64_t v) {
    if (!leaf.is_unsigned) {
      out.emplace_back(v);
    } else if (leaf.type == kInt32) {
      out.emplace_back(static_cast<uint64_t>(static_cast<uint32_t>(v)));
    } else {
      out.emplace_back(static_cast<uint64_t>(v));
    }
  };
  if (encoding == kPlainDictionary || encoding == kRleDictionary) {
    check(dictionary != nullptr, where, ": a dictionary-encoded page without a dictionary page");
    if (count == 0) return;
    const int width = in.byte();
    decode_hybrid(in, width, count, [&](uint64_t index) {
      if (index >= dictionary->size()) {
        fail(where, ": dictionary index ", index, " past the dictionary's ", dictionary->size(), " values");
      }
      const json& value = (*dictionary)[index];
      if (value.is_string()) charge(value.get_ref<const std::string&>().size());
      out.push_back(value);
    });
    return;
  }
  switch (leaf.type) {
    case kBoolean:
      if (encoding == kPlain) {
        in.need((static_cast<size_t>(count) + 7) / 8, "PLAIN booleans");
        for (int64_t i = 0; i < count; ++i) out.emplace_back(((in.pos[i >> 3] >> (i & 7)) & 1) != 0);
        return;
      }
      if (encoding == kRle) {  // a 4-byte length, then the hybrid at bit width 1
        const uint32_t size = in.u32();
        in.need(size, "RLE booleans");
        Bytes run{in.pos, in.pos + size, in.where};
        decode_hybrid(run, 1, count, [&](uint64_t v) { out.emplace_back(v != 0); });
        return;
      }
      break;
    case kInt32:
    case kInt64: {
      const size_t width = leaf.type == kInt32 ? 4 : 8;
      if (encoding == kPlain) {
        in.need(static_cast<size_t>(count) * width, "PLAIN integers");
        for (int64_t i = 0; i < count; ++i) {
          if (width == 4) {
            int32_t v;
            std::memcpy(&v, in.pos + i * 4, 4);
            integer_value(v);
          } else {
            int64_t v;
            std::memcpy(&v, in.pos + i * 8, 8);
            integer_value(v);
          }
        }
        return;
      }
      if (encoding == kDeltaBinaryPacked) {
        std::vector<int64_t> values = decode_delta_binary(in, count);
        check(static_cast<int64_t>(values.size()) == count, where, ": DELTA_BINARY_PACKED holds ",
              values.size(), " values, the page's levels say ", count);
        for (int64_t v : values) integer_value(width == 4 ? static_cast<int32_t>(v) : v);
        return;
      }
      break;
    }
    case kFloat:
    case kDouble: {
      const size_t width = leaf.type == kFloat ? 4 : 8;
      if (encoding == kPlain || encoding == kByteStreamSplit) {
        in.need(static_cast<size_t>(count) * width, "floating-point values");
        for (int64_t i = 0; i < count; ++i) {
          uint8_t raw[8];
          for (size_t b = 0; b < width; ++b) {
            // BYTE_STREAM_SPLIT stores byte b of every value in stream b.
            raw[b] = encoding == kPlain ? in.pos[i * width + b] : in.pos[b * count + i];
          }
          if (width == 4) {
            float v;
            std::memcpy(&v, raw, 4);
            out.emplace_back(static_cast<double>(v));
          } else {
            double v;
            std::memcpy(&v, raw, 8);
            out.emplace_back(v);
          }
        }
        return;
      }
      break;
    }
    case kByteArray:
      if (encoding == kPlain) {
        for (int64_t i = 0; i < count; ++i) {
          const uint32_t size = in.u32();
          in.need(size, "a BYTE_ARRAY value");
          string_value(in.pos, size);
          in.pos += size;
        }
        return;
      }
      if (encoding == kDeltaLengthByteArray) {
        const std::vector<int64_t> lengths = decode_delta_binary(in, count);
        check(static_cast<int64_t>(lengths.size()) == count, where, ": DELTA_LENGTH_BYTE_ARRAY holds ",
              lengths.size(), " lengths, the page's levels say ", count);
        for (int64_t length : lengths) {
          check(length >= 0, where, ": a negative DELTA_LENGTH_BYTE_ARRAY length");
          in.need(static_cast<size_t>(length), "a DELTA_LENGTH_BYTE_ARRAY value");
          string_value(in.pos, static_cast<size_t>(length));
          in.pos += length;
        }
        return;
      }
      if (encoding == kDeltaByteArray) {
        // Prefix lengths (shared with the previous value), then the suffixes as
        // DELTA_LENGTH_BYTE_ARRAY.
        const std::vector<int64_t> prefixes = decode_delta_binary(in, count);
        const std::vector<int64_t> suffixes = decode_delta_binary(in, count);
        check(static_cast<int64_t>(prefixes.size()) == count && static_cast<int64_t>(suffixes.size()) == count,
              where, ": DELTA_BYTE_ARRAY holds ", prefixes.size(), " prefixes and ", suffixes.size(),
              " suffixes, the page's levels say ", count);
        std::string previous;
        for (int64_t i = 0; i < count; ++i) {
          check(prefixes[i] >= 0 && static_cast<size_t>(prefixes[i]) <= previous.size() && suffixes[i] >= 0,
                where, ": DELTA_BYTE_ARRAY prefix ", prefixes[i], " longer than the previous value");
          in.need(static_cast<size_t>(suffixes[i]), "a DELTA_BYTE_ARRAY suffix");
          std::string value = previous.substr(0, static_cast<size_t>(prefixes[i]));
          value.append(reinterpret_cast<const char*>(in.pos), static_cast<size_t>(suffixes[i]));
          in.pos += suffixes[i];
          string_value(reinterpret_cast<const uint8_t*>(value.data()), value.size());
          previous = std::move(value);
        }
        return;
      }
      break;
    default:
      break;
  }
  fail(where, ": unsupported encoding ", encoding_name(encoding), " for a ", type_name(leaf.type), " column");
}

// Decompresses a page body into exactly expected bytes.
std::string decompress(int codec, const uint8_t* data, size_t size, size_t expected, const std::string& where) {
  std::string out;
  auto mismatch = [&](size_t got) {
    fail(where, ": the page decompresses (", codec_name(codec), ") to ", got,
         " bytes, its header says ", expected);
  };
  switch (codec) {
    case kUncompressed:
      if (size != expected) mismatch(size);
      return std::string(reinterpret_cast<const char*>(data), size);
    case kSnappy: {
      size_t length = 0;
      check(snappy_uncompressed_length(reinterpret_cast<const char*>(data), size, &length) == SNAPPY_OK,
            where, ": corrupt SNAPPY data");
      if (length != expected) mismatch(length);
      out.resize(expected);
      size_t written = expected;
      check(snappy_uncompress(reinterpret_cast<const char*>(data), size, out.data(), &written) == SNAPPY_OK,
            where, ": corrupt SNAPPY data");
      if (written != expected) mismatch(written);
      return out;
    }
    case kGzip: {
      out.resize(expected);
      z_stream stream{};
      check(inflateInit2(&stream, 15 + 32) == Z_OK, where, ": zlib inflateInit2 failed");  // gzip or zlib header
      stream.next_in = const_cast<Bytef*>(data);
      stream.avail_in = static_cast<uInt>(size);
      stream.next_out = reinterpret_cast<Bytef*>(out.data());
      stream.avail_out = static_cast<uInt>(expected);
      int result = inflate(&stream, Z_FINISH);
      const size_t produced = stream.total_out;
      // More output than expected leaves the stream unfinished with no room left.
      uint8_t probe = 0;
      if (result == Z_BUF_ERROR && stream.avail_out == 0) {
        stream.next_out = &probe;
        stream.avail_out = 1;
        result = inflate(&stream, Z_FINISH);
        inflateEnd(&stream);
        if (stream.total_out > produced) mismatch(produced + 1);
        fail(where, ": corrupt GZIP data");
      }
      inflateEnd(&stream);
      if (result != Z_STREAM_END) {
        if (result == Z_BUF_ERROR || result == Z_OK) mismatch(produced);
        fail(where, ": corrupt GZIP data (zlib: ", stream.msg ? stream.msg : "error", ")");
      }
      if (produced != expected) mismatch(produced);
      return out;
    }
    case kZstd: {
      const unsigned long long length = ZSTD_getFrameContentSize(data, size);
      check(length != ZSTD_CONTENTSIZE_ERROR, where, ": corrupt ZSTD data");
      if (length != ZSTD_CONTENTSIZE_UNKNOWN && length != expected) mismatch(static_cast<size_t>(length));
      out.resize(expected);
      const size_t written = ZSTD_decompress(out.data(), expected, data, size);
      if (ZSTD_isError(written)) {
        // Too small a buffer for the frame is a size mismatch; anything else is corruption.
        if (ZSTD_getErrorCode(written) == ZSTD_error_dstSize_tooSmall) mismatch(expected + 1);
        fail(where, ": corrupt ZSTD data (", ZSTD_getErrorName(written), ")");
      }
      if (written != expected) mismatch(written);
      return out;
    }
    default:
      fail(where, ": unsupported compression codec ", codec_name(codec));
  }
}

// Builds the row-level field for schema element `index` (a child of a group) and advances
// index past its subtree. def/rep are the levels of the enclosing field.
struct SchemaBuilder {
  const std::vector<ParquetSchemaElement>& schema;
  std::vector<ParquetLeaf>& leaves;
  const std::string& path;
  size_t index = 1;

  const ParquetSchemaElement& take(int depth) {
    check(index < schema.size(), path, ": the schema's num_children counts more elements than it has");
    check(depth < 64, path, ": schema nested deeper than 64 levels");
    return schema[index++];
  }

  static bool is_list(const ParquetSchemaElement& e) {
    return e.converted_type == kList || e.logical_type == kLogicalList;
  }
  // MAP_KEY_VALUE marks the repeated key_value group inside a MAP in older files: that group
  // is an ordinary struct.
  static bool is_map(const ParquetSchemaElement& e) {
    return e.converted_type == kMap || e.logical_type == kLogicalMap;
  }

  // A field for element e (already taken). as_required: treat a repeated element as one
  // value (the element of an array that its repetition made).
  ParquetField build(const ParquetSchemaElement& e, int def, int rep, const std::string& prefix,
                     int depth, bool as_required) {
    ParquetField field;
    field.name = e.name;
    const std::string dotted = prefix.empty() ? e.name : prefix + "." + e.name;
    check(valid_utf8(e.name), path, ": a schema field name that is not valid UTF-8 (", dotted, ")");
    if (e.repetition == kRepeated && !as_required) {
      // An unannotated repeated field: an array (never null) of its values.
      field.kind = ParquetField::kArray;
      field.def_present = def;
      field.def_element = def + 1;
      field.rep_level = rep + 1;
      field.first_leaf = static_cast<int>(leaves.size());
      field.children.push_back(build(e, def + 1, rep + 1, prefix, depth + 1, true));
      field.end_leaf = static_cast<int>(leaves.size());
      return field;
    }
    check(e.repetition == kRequired || e.repetition == kOptional || e.repetition == kRepeated, path,
          ": schema field ", dotted, " has repetition ", e.repetition);
    const bool optional = e.repetition == kOptional && !as_required;
    field.nullable = optional;
    field.def_present = def + (optional ? 1 : 0);
    field.first_leaf = static_cast<int>(leaves.size());
    const int d = field.def_present;
    if (e.num_children == 0 && e.type >= 0) {
      field.kind = ParquetField::kLeaf;
      ParquetLeaf leaf;
      leaf.name = dotted;
      leaf.type = e.type;
      leaf.max_def = d;
      leaf.max_rep = rep;
      check(e.type != kInt96 && e.type != kFixedLenByteArray, path, ": column ", dotted, " has physical type ",
            type_name(e.type), ", which spinlm does not read");
      check(e.type >= kBoolean && e.type <= kByteArray, path, ": column ", dotted, " has unknown physical type ",
            e.type);
      check(e.converted_type != kDecimal && e.logical_type != kLogicalDecimal, path, ": column ", dotted,
            " is a DECIMAL, which spinlm does not read");
      leaf.is_string = e.converted_type == kUtf8 || e.converted_type == kEnum || e.converted_type == kJson ||
                       e.logical_type == kLogicalString || e.logical_type == kLogicalEnum ||
                       e.logical_type == kLogicalJson;
      leaf.is_unsigned = e.converted_type == kUint8 || e.converted_type == kUint16 ||
                         e.converted_type == kUint32 || e.converted_type == kUint64;
      leaves.push_back(leaf);
    } else if (is_list(e) || is_map(e)) {
      // LIST: <list> (LIST) { repeated <list-inner> }. Three-level: the repeated group has one
      // child, the element. Two-level (older writers): the repeated field is the element, when
      // it is a primitive, a group of several fields, or a group named "array" or "<list>_tuple".
      // MAP: <map> (MAP) { repeated key_value { key; value } }: an array of key/value objects.
      check(e.num_children == 1, path, ": ", is_list(e) ? "LIST" : "MAP", " field ", dotted, " has ",
            e.num_children, " children, expected 1");
      const ParquetSchemaElement& inner = take(depth + 1);
      check(inner.repetition == kRepeated, path, ": the child of ", is_list(e) ? "LIST" : "MAP", " field ",
            dotted, " is not repeated");
      field.kind = ParquetField::kArray;
      field.def_element = d + 1;
      field.rep_level = rep + 1;
      const bool three_level = is_list(e) && inner.num_children == 1 && inner.name != "array" &&
                               inner.name != e.name + "_tuple";
      if (three_level) {
        const ParquetSchemaElement& element = take(depth + 2);
        field.children.push_back(build(element, d + 1, rep + 1, dotted + "." + inner.name, depth + 2, false));
      } else {
        field.children.push_back(build(inner, d + 1, rep + 1, dotted, depth + 1, true));
      }
    } else {
      check(e.num_children > 0, path, ": schema group ", dotted, " has no fields");
      field.kind = ParquetField::kStruct;
      for (int i = 0; i < e.num_children; ++i) {
        const ParquetSchemaElement& child = take(depth + 1);
        field.children.push_back(build(child, d, rep, dotted, depth + 1, false));
      }
    }
    field.end_leaf = static_cast<int>(leaves.size());
    return field;
  }
};

}  // namespace

bool is_parquet_path(const std::string& path) {
  const std::string suffix = ".parquet";
  if (path.size() < suffix.size()) return false;
  std::string tail = path.substr(path.size() - suffix.size());
  std::transform(tail.begin(), tail.end(), tail.begin(), [](unsigned char c) { return std::tolower(c); });
  return tail == suffix;
}

ParquetReader::ParquetReader(std::string path) : path_(std::move(path)), in_(path_, std::ios::binary) {
  check(in_.good(), path_, ": cannot open for reading (", std::strerror(errno), ")");
  in_.seekg(0, std::ios::end);
  file_size_ = static_cast<int64_t>(in_.tellg());
  check(file_size_ >= 0, path_, ": cannot find the file's size");
  read_footer();
}

ParquetReader::~ParquetReader() = default;

std::string ParquetReader::where() const { return path_ + " row " + std::to_string(row_number_); }

int64_t ParquetReader::num_rows() const { return meta_->num_rows; }
int64_t ParquetReader::num_row_groups() const { return static_cast<int64_t>(meta_->row_groups.size()); }
std::string ParquetReader::created_by() const { return meta_->created_by; }

std::string ParquetReader::read_range(int64_t offset, int64_t size, const std::string& what) {
  check(offset >= 0 && size >= 0 && offset <= file_size_ && size <= file_size_ - offset, path_, ": ", what,
        " (bytes ", offset, "..", offset + size, ") lies past the end of the file (", file_size_, " bytes)");
  std::string bytes(static_cast<size_t>(size), '\0');
  in_.clear();
  in_.seekg(offset);
  in_.read(bytes.data(), size);
  check(in_.gcount() == size, path_, ": read error in ", what);
  return bytes;
}

void ParquetReader::read_footer() {
  // A file is "PAR1" <row groups> <FileMetaData> <4-byte little-endian length> "PAR1".
  check(file_size_ >= 12, path_, ": not a Parquet file: ", file_size_, " bytes, too short for its magic "
        "and footer");
  const std::string head = read_range(0, 4, "the leading magic");
  check(head == "PAR1", path_, ": not a Parquet file: it does not start with the magic \"PAR1\"");
  const std::string tail = read_range(file_size_ - 8, 8, "the footer");
  check(tail.substr(4) != "PARE", path_, ": an encrypted Parquet file (PARE), which spinlm does not read");
  check(tail.substr(4) == "PAR1", path_, ": not a Parquet file, or a truncated one: it does not end with the "
        "magic \"PAR1\"");
  uint32_t length = 0;
  std::memcpy(&length, tail.data(), 4);
  check(static_cast<int64_t>(length) <= file_size_ - 12, path_, ": the footer says its metadata is ", length,
        " bytes, more than the file's ", file_size_, " bytes hold: a truncated or corrupt file");
  const int64_t meta_offset = file_size_ - 8 - length;
  const std::string bytes = read_range(meta_offset, length, "the footer metadata");
  auto meta = std::make_unique<ParquetFileMeta>();
  meta->data_end = meta_offset;
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data());
  ThriftCompactReader in(begin, begin + bytes.size(), path_ + ": footer FileMetaData");
  bool have_schema = false, have_rows = false, have_groups = false;
  read_struct(in, [&](int16_t id, uint8_t type) {
    using T = ThriftCompactReader;
    if (id == 2 && type == T::kList) {
      read_list(in, [&](uint8_t t) {
        expect(in, t, T::kStruct, "schema");
        meta->schema.push_back(read_schema_element(in));
      });
      have_schema = true;
    } else if (id == 3 && type == T::kI64) {
      meta->num_rows = in.read_i64();
      have_rows = true;
    } else if (id == 4 && type == T::kList) {
      read_list(in, [&](uint8_t t) {
        expect(in, t, T::kStruct, "row_groups");
        meta->row_groups.push_back(read_row_group(in));
      });
      have_groups = true;
    } else if (id == 6 && type == T::kBinary) {
      meta->created_by = in.read_binary();
    } else {
      in.skip(type);
    }
  });
  check(have_schema && have_rows && have_groups, path_, ": footer FileMetaData lacks its ",
        !have_schema ? "schema" : !have_rows ? "num_rows" : "row_groups");
  check(!meta->schema.empty() && meta->schema[0].num_children > 0, path_, ": the schema has no columns");
  check(meta->num_rows >= 0, path_, ": negative num_rows ", meta->num_rows);

  // The schema tree: the root's children, depth first.
  auto leaves = std::make_shared<std::vector<ParquetLeaf>>();
  SchemaBuilder builder{meta->schema, *leaves, path_};
  auto root = std::make_unique<ParquetField>();
  root->kind = ParquetField::kStruct;
  for (int i = 0; i < meta->schema[0].num_children; ++i) {
    const ParquetSchemaElement& child = builder.take(1);
    root->children.push_back(builder.build(child, 0, 0, "", 1, false));
  }
  root->end_leaf = static_cast<int>(leaves->size());
  check(builder.index == meta->schema.size(), path_, ": the schema has ", meta->schema.size() - builder.index,
        " elements outside the root's tree");
  leaves_ = std::move(*leaves);

  int64_t rows = 0;
  for (size_t g = 0; g < meta->row_groups.size(); ++g) {
    const ParquetRowGroupMeta& group = meta->row_groups[g];
    const std::string place = path_ + " row group " + std::to_string(g);
    check(group.num_rows >= 0, place, ": negative num_rows");
    check(group.columns.size() == leaves_.size(), place, ": ", group.columns.size(),
          " column chunks, the schema has ", leaves_.size(), " columns");
    for (size_t c = 0; c < group.columns.size(); ++c) {
      const ParquetColumnMeta& column = group.columns[c];
      const std::string cplace = place + " column " + std::to_string(c) + " (" + leaves_[c].name + ")";
      check(!column.external, cplace, ": the column chunk is in another file (file_path), which spinlm does not read");
      check(column.type == leaves_[c].type, cplace, ": the column chunk's type ", type_name(column.type),
            " differs from the schema's ", type_name(leaves_[c].type));
    }
    rows += group.num_rows;
  }
  check(rows == meta->num_rows, path_, ": the row groups hold ", rows, " rows, the footer says ", meta->num_rows);
  meta_ = std::move(meta);
  root_ = std::move(root);
}

ParquetColumnData ParquetReader::read_column_chunk(int64_t row_group, int64_t column_index) {
  const ParquetColumnMeta& column = meta_->row_groups[row_group].columns[column_index];
  const ParquetLeaf& leaf = leaves_[column_index];
  const std::string place = path_ + " row group " + std::to_string(row_group) + " column " +
                            std::to_string(column_index) + " (" + leaf.name + ")";
  // The chunk starts at its dictionary page where it has one.
  int64_t start = column.data_page_offset;
  if (column.dictionary_page_offset > 0 && column.dictionary_page_offset < start) start = column.dictionary_page_offset;
  check(start >= 4 && column.total_compressed_size >= 0 && start <= meta_->data_end &&
            column.total_compressed_size <= meta_->data_end - start,
        place, ": the column chunk (bytes ", start, "..", start + column.total_compressed_size,
        ") lies outside the file's data (bytes 4..", meta_->data_end, ")");
  check(column.num_values >= 0 && column.num_values <= kMaxParquetColumnValues, place, ": ", column.num_values,
        " values, more than spinlm's limit of ", kMaxParquetColumnValues, " for one column chunk (kMaxParquetColumnValues)");
  const std::string chunk = read_range(start, column.total_compressed_size, place);
  const auto* data = reinterpret_cast<const uint8_t*>(chunk.data());
  size_t pos = 0;

  ParquetColumnData out;
  // Reserved up to what the chunk's bytes could hold as bit-packed levels; RLE runs of
  // nulls may hold more, and the vectors grow for them.
  const size_t expected = static_cast<size_t>(std::min<int64_t>(column.num_values, column.total_compressed_size * 8 + 64));
  out.rep.reserve(expected);
  out.def.reserve(expected);
  int64_t budget = kMaxParquetColumnBytes;
  std::vector<json> dictionary;
  bool have_dictionary = false;
  int64_t values_read = 0;
  for (int page = 0; values_read < column.num_values; ++page) {
    const std::string where = place + " page " + std::to_string(page);
    check(pos < chunk.size(), where, ": the column chunk ends after ", values_read, " of its ", column.num_values,
          " values");
    ThriftCompactReader header_in(data + pos, data + chunk.size(), where + " header");
    const PageHeader h = read_page_header(header_in);
    pos += header_in.position();
    check(h.compressed_size >= 0 && h.uncompressed_size >= 0, where, ": negative page size");
    check(static_cast<size_t>(h.compressed_size) <= chunk.size() - pos, where, ": the page's ", h.compressed_size,
          " bytes run past the end of its column chunk (", chunk.size() - pos, " bytes left)");
    check(h.uncompressed_size <= kMaxParquetPageBytes, where, ": a page of ", h.uncompressed_size,
          " bytes, above spinlm's limit of ", kMaxParquetPageBytes, " (kMaxParquetPageBytes)");
    const uint8_t* body = data + pos;
    pos += static_cast<size_t>(h.compressed_size);

    if (h.type == kIndexPage) continue;
    check(h.type == kDictionaryPage || h.type == kDataPage || h.type == kDataPageV2, where,
          ": unknown page type ", h.type);
    check(h.num_values >= 0, where, ": the page header lacks its num_values");
    if (h.type == kDictionaryPage) {
      check(!have_dictionary, where, ": a second dictionary page");
      check(h.encoding == kPlain || h.encoding == kPlainDictionary, where, ": unsupported dictionary encoding ",
            encoding_name(h.encoding));
      const std::string page_bytes = decompress(column.codec, body, static_cast<size_t>(h.compressed_size),
                                                static_cast<size_t>(h.uncompressed_size), where);
      // Every PLAIN value takes at least one bit.
      check(static_cast<uint64_t>(h.num_values) <= page_bytes.size() * 8 + 8, where, ": a dictionary of ",
            h.num_values, " values in ", page_bytes.size(), " bytes");
      const auto* p = reinterpret_cast<const uint8_t*>(page_bytes.data());
      decode_values(Bytes{p, p + page_bytes.size(), &where}, kPlain, h.num_values, leaf, nullptr, dictionary,
                    budget);
      have_dictionary = true;
      continue;
    }
    check(h.num_values <= column.num_values - values_read, where, ": the page holds ", h.num_values,
          " values, more than the ", column.num_values - values_read, " its column chunk has left");
    std::string page_bytes;
    const uint8_t* levels_rep = nullptr;
    const uint8_t* levels_def = nullptr;
    size_t rep_size = 0, def_size = 0;
    Bytes values{nullptr, nullptr, &where};
    if (h.type == kDataPage) {
      page_bytes = decompress(column.codec, body, static_cast<size_t>(h.compressed_size),
                              static_cast<size_t>(h.uncompressed_size), where);
      const auto* p = reinterpret_cast<const uint8_t*>(page_bytes.data());
      Bytes in{p, p + page_bytes.size(), &where};
      // v1: each level stream present is a 4-byte length, then the hybrid encoding.
      auto level_stream = [&](int max_level, int encoding, const char* what, const uint8_t*& begin, size_t& size) {
        if (max_level == 0) return;
        check(encoding == kRle, where, ": unsupported ", what, " level encoding ", encoding_name(encoding));
        size = in.u32();
        in.need(size, "the level data");
        begin = in.pos;
        in.pos += size;
      };
      level_stream(leaf.max_rep, h.rep_encoding, "repetition", levels_rep, rep_size);
      level_stream(leaf.max_def, h.def_encoding, "definition", levels_def, def_size);
      values = in;
    } else {
      // v2: uncompressed levels (no length prefixes) before the values, which alone may be compressed.
      check(h.rep_bytes >= 0 && h.def_bytes >= 0 &&
                static_cast<int64_t>(h.rep_bytes) + h.def_bytes <= h.compressed_size &&
                static_cast<int64_t>(h.rep_bytes) + h.def_bytes <= h.uncompressed_size,
            where, ": level sizes ", h.rep_bytes, " + ", h.def_bytes, " exceed the page");
      levels_rep = body;
      rep_size = static_cast<size_t>(h.rep_bytes);
      levels_def = body + h.rep_bytes;
      def_size = static_cast<size_t>(h.def_bytes);
      const size_t levels = rep_size + def_size;
      const int codec = h.is_compressed ? column.codec : kUncompressed;
      page_bytes = decompress(codec, body + levels, static_cast<size_t>(h.compressed_size) - levels,
                              static_cast<size_t>(h.uncompressed_size) - levels, where);
      const auto* p = reinterpret_cast<const uint8_t*>(page_bytes.data());
      values = Bytes{p, p + page_bytes.size(), &where};
    }
    const size_t before = out.def.size();
    if (leaf.max_rep > 0) {
      decode_levels(Bytes{levels_rep, levels_rep + rep_size, &where}, leaf.max_rep, h.num_values, out.rep,
                    "repetition");
    } else {
      out.rep.resize(before + static_cast<size_t>(h.num_values), 0);
    }
    int64_t defined = h.num_values;
    if (leaf.max_def > 0) {
      decode_levels(Bytes{levels_def, levels_def + def_size, &where}, leaf.max_def, h.num_values, out.def,
                    "definition");
      defined = std::count(out.def.begin() + before, out.def.end(), static_cast<uint16_t>(leaf.max_def));
    } else {
      out.def.resize(before + static_cast<size_t>(h.num_values), 0);
    }
    check(out.rep.size() == out.def.size(), where, ": level streams of different lengths");
    decode_values(values, h.encoding, defined, leaf, have_dictionary ? &dictionary : nullptr, out.values, budget);
    values_read += h.num_values;
  }
  return out;
}

void ParquetReader::load_row_group(int64_t index) {
  columns_.clear();
  columns_.reserve(leaves_.size());
  for (size_t c = 0; c < leaves_.size(); ++c) columns_.push_back(read_column_chunk(index, static_cast<int64_t>(c)));
  row_group_ = index;
  rows_left_in_group_ = meta_->row_groups[index].num_rows;
}

void ParquetReader::skip_one(const ParquetField& field) {
  for (int c = field.first_leaf; c < field.end_leaf; ++c) {
    ParquetColumnData& column = columns_[c];
    check(column.entry < column.def.size(), path_, " row group ", row_group_, " column ", c, " (",
          leaves_[c].name, "): fewer values than the row group's rows");
    if (column.def[column.entry] == leaves_[c].max_def) ++column.value;
    ++column.entry;
  }
}

json ParquetReader::assemble(const ParquetField& field) {
  // Record assembly (Dremel): the field's first column's next entry tells whether the field
  // is null, an empty array, or present; every column under it moves on together.
  ParquetColumnData& first = columns_[field.first_leaf];
  auto place = [&](int c) {
    return path_ + " row group " + std::to_string(row_group_) + " column " + std::to_string(c) + " (" +
           leaves_[c].name + ")";
  };
  // (The place is built only for an error: these checks run once per value.)
  if (first.entry >= first.def.size()) fail(place(field.first_leaf), ": fewer values than the row group's rows");
  const int def = first.def[first.entry];
  if (field.nullable && def < field.def_present) {
    skip_one(field);
    return nullptr;
  }
  switch (field.kind) {
    case ParquetField::kLeaf: {
      const ParquetLeaf& leaf = leaves_[field.first_leaf];
      if (def != leaf.max_def) fail(place(field.first_leaf), ": definition level ", def, " for a required value");
      if (first.value >= first.values.size()) fail(place(field.first_leaf), ": fewer values than its levels define");
      ++first.entry;
      return std::move(first.values[first.value++]);
    }
    case ParquetField::kStruct: {
      json object = json::object();
      for (const ParquetField& child : field.children) object[child.name] = assemble(child);
      return object;
    }
    case ParquetField::kArray: {
      json array = json::array();
      if (def < field.def_element) {
        skip_one(field);
        return array;
      }
      const ParquetField& element = field.children[0];
      do {
        array.push_back(assemble(element));
      } while (first.entry < first.rep.size() && first.rep[first.entry] == field.rep_level);
      return array;
    }
  }
  return nullptr;
}

bool ParquetReader::next(json& row) {
  while (rows_left_in_group_ == 0) {
    if (row_group_ >= 0) {
      // Every column must end with the row group's last row.
      for (size_t c = 0; c < columns_.size(); ++c) {
        check(columns_[c].entry == columns_[c].def.size() && columns_[c].value == columns_[c].values.size(),
              path_, " row group ", row_group_, " column ", c, " (", leaves_[c].name,
              "): more values than the row group's ", meta_->row_groups[row_group_].num_rows, " rows");
      }
    }
    if (row_group_ + 1 >= num_row_groups()) {
      columns_.clear();
      row_group_ = num_row_groups();
      return false;
    }
    load_row_group(row_group_ + 1);
  }
  row = assemble(*root_);
  --rows_left_in_group_;
  ++row_number_;
  return true;
}

std::string ParquetReader::schema_text() const {
  std::ostringstream out;
  size_t index = 1;
  const auto& schema = meta_->schema;
  // Depth-first over the flattened schema, two spaces a level.
  std::vector<int> remaining{schema[0].num_children};
  while (index < schema.size() && !remaining.empty()) {
    const ParquetSchemaElement& e = schema[index++];
    --remaining.back();
    out << std::string(2 * (remaining.size() - 1), ' ') << e.name << ": ";
    static const char* repetitions[] = {"required", "optional", "repeated"};
    out << (e.repetition >= 0 && e.repetition < 3 ? repetitions[e.repetition] : "?") << ' ';
    if (e.num_children > 0) out << "group";
    else out << type_name(e.type);
    if (e.converted_type == kUtf8 || e.logical_type == kLogicalString) out << " (STRING)";
    else if (e.converted_type == kList || e.logical_type == kLogicalList) out << " (LIST)";
    else if (e.converted_type == kMap || e.logical_type == kLogicalMap) out << " (MAP)";
    else if (e.logical_type == kLogicalInteger) out << " (INTEGER)";
    out << '\n';
    if (e.num_children > 0) remaining.push_back(e.num_children);
    while (!remaining.empty() && remaining.back() == 0) remaining.pop_back();
  }
  return out.str();
}

}  // namespace spinlm
