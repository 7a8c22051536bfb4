#include "io/thrift_compact.h"

#include <cstring>

#include "core/error.h"

namespace spinlm {

ThriftCompactReader::ThriftCompactReader(const uint8_t* begin, const uint8_t* end, std::string where)
    : begin_(begin), pos_(begin), end_(end), where_(std::move(where)) {}

void ThriftCompactReader::truncated() const {
  fail(where_, ": Thrift struct truncated or corrupt at byte ", position(), " of ", end_ - begin_);
}

uint8_t ThriftCompactReader::read_byte() {
  if (pos_ >= end_) truncated();
  return *pos_++;
}

uint64_t ThriftCompactReader::read_varint() {
  // ULEB128: 7 bits a byte, least significant first; at most 10 bytes for 64 bits.
  uint64_t value = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    const uint8_t byte = read_byte();
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  fail(where_, ": Thrift varint longer than 10 bytes at byte ", position());
}

static int64_t zigzag(uint64_t n) { return static_cast<int64_t>(n >> 1) ^ -static_cast<int64_t>(n & 1); }

void ThriftCompactReader::begin_struct() {
  check(depth_ < 64, where_, ": Thrift structs nested deeper than 64 levels");
  saved_ids_[depth_++] = last_field_id_;
  last_field_id_ = 0;
}

void ThriftCompactReader::end_struct() {
  if (depth_ > 0) last_field_id_ = saved_ids_[--depth_];
}

bool ThriftCompactReader::next_field(int16_t& id, uint8_t& type) {
  const uint8_t header = read_byte();
  type = header & 0x0f;
  if (type == kStop) return false;
  const uint8_t delta = header >> 4;
  // A short form adds delta to the last field id; delta 0 means an i16 (zigzag varint) follows.
  id = delta != 0 ? static_cast<int16_t>(last_field_id_ + delta)
                  : static_cast<int16_t>(zigzag(read_varint()));
  check(type <= kStruct, where_, ": unknown Thrift type ", int(type), " for field ", id);
  last_field_id_ = id;
  return true;
}

bool ThriftCompactReader::read_bool(uint8_t type) {
  // A bool field carries its value in its header's type.
  check(type == kBoolTrue || type == kBoolFalse, where_, ": expected a Thrift bool, got type ", int(type));
  return type == kBoolTrue;
}

int32_t ThriftCompactReader::read_i32() { return static_cast<int32_t>(zigzag(read_varint())); }

int64_t ThriftCompactReader::read_i64() { return zigzag(read_varint()); }

std::string ThriftCompactReader::read_binary() {
  const uint64_t size = read_varint();
  if (size > static_cast<uint64_t>(end_ - pos_)) truncated();
  std::string value(reinterpret_cast<const char*>(pos_), size);
  pos_ += size;
  return value;
}

void ThriftCompactReader::read_list_header(int64_t& size, uint8_t& element_type) {
  const uint8_t header = read_byte();
  element_type = header & 0x0f;
  // Sizes 0..14 sit in the high nibble; 15 there means a varint size follows.
  const uint64_t n = (header >> 4) == 15 ? read_varint() : (header >> 4);
  // Every element takes at least one byte, so a count above the bytes left is corrupt.
  if (n > static_cast<uint64_t>(end_ - pos_)) truncated();
  size = static_cast<int64_t>(n);
}

void ThriftCompactReader::skip(uint8_t type) {
  // Collections nest without structs, so skipping counts its own depth.
  struct Depth {
    int& depth;
    explicit Depth(int& d, const std::string& where) : depth(d) {
      check(++depth <= 64, where, ": Thrift values nested deeper than 64 levels");
    }
    ~Depth() { --depth; }
  } guard(skip_depth_, where_);
  switch (type) {
    case kBoolTrue:
    case kBoolFalse:
      return;  // a bool field's value is in its header
    case kByte:
      read_byte();
      return;
    case kI16:
    case kI32:
    case kI64:
      read_varint();
      return;
    case kDouble:
      if (end_ - pos_ < 8) truncated();
      pos_ += 8;
      return;
    case kBinary: {
      const uint64_t size = read_varint();
      if (size > static_cast<uint64_t>(end_ - pos_)) truncated();
      pos_ += size;
      return;
    }
    case kList:
    case kSet: {
      int64_t size = 0;
      uint8_t element = 0;
      read_list_header(size, element);
      for (int64_t i = 0; i < size; ++i) {
        // Bool elements are one byte each.
        if (element == kBoolTrue || element == kBoolFalse) read_byte(); else skip(element);
      }
      return;
    }
    case kMap: {
      const uint64_t size = read_varint();
      if (size == 0) return;
      if (size > static_cast<uint64_t>(end_ - pos_)) truncated();
      const uint8_t types = read_byte();
      for (uint64_t i = 0; i < size; ++i) {
        for (uint8_t t : {uint8_t(types >> 4), uint8_t(types & 0x0f)}) {
          if (t == kBoolTrue || t == kBoolFalse) read_byte(); else skip(t);
        }
      }
      return;
    }
    case kStruct: {
      begin_struct();
      int16_t id = 0;
      uint8_t field_type = 0;
      while (next_field(id, field_type)) skip(field_type);
      end_struct();
      return;
    }
    default:
      fail(where_, ": unknown Thrift type ", int(type));
  }
}

}  // namespace spinlm
