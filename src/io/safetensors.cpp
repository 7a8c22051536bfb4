// safetensors reading (memory-mapped, fully validated) and writing (HF layout, atomic).
//
// Validation follows the reference Rust implementation (huggingface/safetensors, tensor.rs):
// the header is at most 100 MB of UTF-8 JSON (nested at most kMaxJsonDepth deep, listing at
// most kMaxTensors tensors, both spinlm's limits); every entry has a known dtype, a shape and
// data_offsets; sorted by offset, the entries must tile the data section exactly, from 0 to
// its last byte, with no gap and no overlap; each entry spans product(shape) * itemsize bytes.
//
// Writing also follows the Rust writer: entries are ordered by descending dtype alignment
// (the order of its Dtype enum, reversed) and then by name, the header is compact JSON with
// "__metadata__" first, padded with spaces to a multiple of 8 bytes so that every tensor's
// data is aligned, and the data follows contiguously.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; spinlm copies it as is");

namespace spinlm {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // as the Rust reader
// Tensors in one file. The largest models have about 100,000 tensors in all, split over
// many shards; the limit keeps a hostile header from costing gigabytes of entries.
constexpr size_t kMaxTensors = 1'000'000;
constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

struct DtypeInfo {
  const char* name;
  size_t itemsize;
  int alignment_rank;  // position in the Rust Dtype enum; the writer sorts by it, descending
  bool in_torch;       // whether this libtorch has a matching ScalarType
  at::ScalarType scalar;
};

// Every dtype the format defines. The FP8 and unsigned 16/32/64-bit types are validated
// like any other but cannot become tensors with libtorch 1.13.
const std::vector<DtypeInfo>& dtype_table() {
  static const std::vector<DtypeInfo> table = {
      {"BOOL", 1, 0, true, at::kBool},     {"U8", 1, 1, true, at::kByte},
      {"I8", 1, 2, true, at::kChar},       {"F8_E5M2", 1, 3, false, at::kByte},
      {"F8_E4M3", 1, 4, false, at::kByte}, {"I16", 2, 5, true, at::kShort},
      {"U16", 2, 6, false, at::kShort},    {"F16", 2, 7, true, at::kHalf},
      {"BF16", 2, 8, true, at::kBFloat16}, {"I32", 4, 9, true, at::kInt},
      {"U32", 4, 10, false, at::kInt},     {"F32", 4, 11, true, at::kFloat},
      {"F64", 8, 12, true, at::kDouble},   {"I64", 8, 13, true, at::kLong},
      {"U64", 8, 14, false, at::kLong},
  };
  return table;
}

const DtypeInfo* find_dtype(const std::string& name) {
  for (const DtypeInfo& info : dtype_table()) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

const DtypeInfo* find_dtype(at::ScalarType scalar) {
  for (const DtypeInfo& info : dtype_table()) {
    if (info.in_torch && info.scalar == scalar) return &info;
  }
  return nullptr;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

// product(shape) * itemsize, or nullopt on overflow.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, size_t itemsize) {
  uint64_t total = itemsize;
  for (int64_t dim : shape) {
    uint64_t d = static_cast<uint64_t>(dim);
    if (d != 0 && total > std::numeric_limits<uint64_t>::max() / d) return std::nullopt;
    total *= d;
  }
  return total;
}

uint64_t require_unsigned(const json& value, const std::string& where) {
  check(value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0),
        where, " must be a non-negative integer, got ", value.dump());
  return value.get<uint64_t>();
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const json& value,
                             uint64_t data_size) {
  const std::string where = path + ": tensor \"" + name + "\"";
  check(value.is_object(), where, ": entry is not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    check(value.contains(field), where, ": missing \"", field, "\"");
  }
  SafetensorsEntry entry;
  check(value["dtype"].is_string(), where, ": \"dtype\" is not a string");
  entry.dtype = value["dtype"].get<std::string>();
  const DtypeInfo* info = find_dtype(entry.dtype);
  check(info != nullptr, where, ": unknown dtype \"", entry.dtype, "\"");

  const json& shape = value["shape"];
  check(shape.is_array(), where, ": \"shape\" is not an array");
  for (const json& dim : shape) {
    uint64_t d = require_unsigned(dim, where + ": shape entry");
    check(d <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where,
          ": shape entry ", d, " is too large");
    entry.shape.push_back(static_cast<int64_t>(d));
  }

  const json& offsets = value["data_offsets"];
  check(offsets.is_array() && offsets.size() == 2, where,
        ": \"data_offsets\" must be an array [begin, end], got ", offsets.dump());
  uint64_t begin = require_unsigned(offsets[0], where + ": data_offsets begin");
  uint64_t end = require_unsigned(offsets[1], where + ": data_offsets end");
  const std::string span = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
  check(begin <= end, where, ": ", span, " has begin > end");
  check(end <= data_size, where, ": ", span, " out of bounds: the data section has ", data_size,
        " bytes");
  entry.begin = static_cast<size_t>(begin);
  entry.end = static_cast<size_t>(end);

  std::optional<uint64_t> expected = byte_size(entry.shape, info->itemsize);
  check(expected.has_value(), where, ": shape ", shape_text(entry.shape), " overflows");
  check(*expected == end - begin, where, ": size mismatch: dtype ", entry.dtype, " and shape ",
        shape_text(entry.shape), " need ", *expected, " bytes but ", span, " span ", end - begin);
  return entry;
}

// Sorted by offset, the entries must cover [0, data_size) exactly once.
void check_coverage(const std::string& path, const std::map<std::string, SafetensorsEntry>& entries,
                    uint64_t data_size) {
  std::vector<std::pair<const std::string*, const SafetensorsEntry*>> order;
  for (const auto& [name, entry] : entries) order.emplace_back(&name, &entry);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.second->begin, a.second->end) <
           std::make_pair(b.second->begin, b.second->end);
  });
  uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const auto& [name, entry] : order) {
    if (entry->begin < covered) {
      fail(path, ": tensor \"", *name, "\" (data_offsets [", entry->begin, ", ", entry->end,
           "]) overlaps tensor \"", *previous, "\" (which ends at ", covered, ")");
    }
    check(entry->begin == covered, path, ": gap in the data section: bytes [", covered, ", ",
          entry->begin, ") before tensor \"", *name,
          "\" belong to no tensor (tensors must cover the data contiguously)");
    covered = entry->end;
    previous = name;
  }
  check(covered == data_size, path, ": the data section has ", data_size,
        " bytes but the tensors cover only ", covered,
        " (trailing bytes belong to no tensor)");
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& value) {
  check(value.is_object(), path, ": \"__metadata__\" is not a JSON object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    check(item.is_string(), path, ": \"__metadata__\" value \"", key, "\" is not a string");
    metadata[key] = item.get<std::string>();
  }
  return metadata;
}

// Parses the header text, refusing duplicate top-level names (nlohmann keeps the last one
// silently, so they are caught while parsing) and more than kMaxTensors of them (counted
// while parsing, so the parse stops there).
json parse_header(const std::string& path, const std::string& text) {
  std::string duplicate;
  std::set<std::string> seen;
  size_t tensors = 0;
  auto note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
      tensors += key != "__metadata__";
      check(tensors <= kMaxTensors, path, ": the header lists more than ", kMaxTensors,
            " tensors, spinlm's limit for one safetensors file (kMaxTensors in src/io/safetensors.cpp); "
            "real models split their tensors over shards");
    }
    return true;
  };
  json header = parse_json_text(text, path, note_keys, "header");
  check(duplicate.empty(), path, ": duplicate tensor name \"", duplicate, "\" in the header");
  check(header.is_object(), path, ": header is not a JSON object");
  return header;
}

// A safetensors data section is not necessarily aligned (another writer may not pad the
// header), so a misaligned tensor is copied into fresh memory before use.
at::Tensor view_of(const uint8_t* bytes, size_t nbytes, const std::vector<int64_t>& shape,
                   at::ScalarType scalar) {
  auto options = at::TensorOptions().dtype(scalar);
  size_t itemsize = at::elementSize(scalar);
  if (nbytes == 0 || reinterpret_cast<uintptr_t>(bytes) % itemsize != 0) {
    at::Tensor copy = at::empty(shape, options);
    if (nbytes > 0) std::memcpy(copy.data_ptr(), bytes, nbytes);
    return copy;
  }
  return at::from_blob(const_cast<uint8_t*>(bytes), shape, options);
}

int64_t tensor_bytes(const at::Tensor& tensor) {
  return tensor.numel() * static_cast<int64_t>(tensor.element_size());
}

std::string join_path(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

void remove_file(const std::string& path) {
  std::error_code error;
  std::filesystem::remove(path, error);
  check(!error, path, ": cannot remove stale weight file (", error.message(), ")");
}

// Shard files as transformers names them: model-00001-of-00003.safetensors.
bool is_shard_name(const std::string& name) {
  static const std::regex pattern("model-[0-9]+-of-[0-9]+\\.safetensors");
  return std::regex_match(name, pattern);
}

std::string shard_name(size_t index, size_t count) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return buffer;
}

bool path_within(const std::filesystem::path& root, const std::filesystem::path& path) {
  auto [r, p] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return r == root.end();
}

// The path of the shard a weight_map entry names, refused unless it lies inside the model
// folder: no absolute path, no ".." component, and no link that resolves outside. A folder
// of a Hugging Face hub cache (<repo>/snapshots/<revision>/) holds links into <repo>/blobs/;
// those are allowed.
std::string shard_inside_folder(const std::string& dir, const std::string& index_path,
                                const std::string& tensor, const std::string& shard) {
  namespace fs = std::filesystem;
  const std::string entry = "weight_map entry \"" + tensor + "\": \"" + shard + "\"";
  const fs::path relative(shard);
  check(!shard.empty(), index_path, ": ", entry, " names no file");
  check(!relative.is_absolute(), index_path, ": ", entry,
        " is an absolute path; shard files must lie inside the model folder ", dir,
        " (name them relative to it)");
  for (const auto& part : relative) {
    check(part != "..", index_path, ": ", entry, " has a '..' component and leaves the model folder ", dir,
          "; shard files must lie inside it");
  }
  const std::string shard_path = join_path(dir, shard);
  check(file_exists(shard_path), index_path, ": shard \"", shard, "\" named in weight_map (for tensor \"",
        tensor, "\") is missing from ", dir);
  std::error_code error;
  const fs::path root = fs::canonical(dir, error);
  check(!error, dir, ": cannot resolve the model folder (", error.message(), ")");
  const fs::path target = fs::canonical(shard_path, error);
  check(!error, shard_path, ": cannot resolve (", error.message(), ")");
  if (path_within(root, target)) return shard_path;
  const bool hub_snapshot = root.parent_path().filename() == "snapshots";
  if (hub_snapshot && path_within(root.parent_path().parent_path() / "blobs", target)) return shard_path;
  fail(index_path, ": ", entry, " is a link to ", target.string(), ", outside the model folder ", dir,
       "; copy the file into the folder (links from a Hugging Face cache snapshot into its blobs/ are fine)");
}

void remove_stale_shards(const std::string& dir, const std::set<std::string>& keep) {
  std::vector<std::string> stale;
  for (const auto& item : std::filesystem::directory_iterator(dir)) {
    std::string name = item.path().filename().string();
    if (is_shard_name(name) && keep.count(name) == 0) stale.push_back(item.path().string());
  }
  for (const std::string& path : stale) remove_file(path);
}

}  // namespace

at::ScalarType safetensors_scalar_type(const std::string& dtype) {
  const DtypeInfo* info = find_dtype(dtype);
  check(info != nullptr, "unknown safetensors dtype \"", dtype, "\"");
  check(info->in_torch, "safetensors dtype ", dtype, " has no libtorch equivalent here");
  return info->scalar;
}

std::string safetensors_dtype_name(at::ScalarType scalar) {
  const DtypeInfo* info = find_dtype(scalar);
  check(info != nullptr, "dtype ", c10::toString(scalar), " cannot be stored in safetensors");
  return info->name;
}

SafetensorsFile::SafetensorsFile(std::string path) : path_(std::move(path)) {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, path_, ": cannot open (", std::strerror(errno), ")");
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    fail(path_, ": not a regular file");
  }
  size_t size = static_cast<size_t>(info.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path_, ": truncated safetensors file: ", size,
         " bytes, shorter than the 8-byte header length");
  }
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);
  check(mapping != MAP_FAILED, path_, ": cannot map (", std::strerror(map_errno), ")");
  mapping_ = mapping;
  mapping_size_ = size;
  try {
    const uint8_t* bytes = static_cast<const uint8_t*>(mapping_);
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes, 8);
    check(header_size <= size - 8, path_, ": header length ", header_size,
          " runs past the end of the file (", size, " bytes; truncated or not safetensors)");
    check(header_size <= kMaxHeaderBytes, path_, ": header length ", header_size,
          " is larger than the 100 MB safetensors limit");
    uint64_t data_size = size - 8 - header_size;
    data_ = bytes + 8 + header_size;
    json header = parse_header(
        path_, std::string(reinterpret_cast<const char*>(bytes + 8), header_size));
    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        metadata_ = parse_metadata(path_, value);
      } else {
        entries_.emplace(name, parse_entry(path_, name, value, data_size));
      }
    }
    check_coverage(path_, entries_, data_size);
  } catch (...) {
    ::munmap(mapping_, mapping_size_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

at::Tensor SafetensorsFile::tensor(const std::string& name, at::ScalarType dtype,
                                   at::Device device) const {
  auto found = entries_.find(name);
  check(found != entries_.end(), path_, ": no tensor \"", name, "\"");
  const SafetensorsEntry& entry = found->second;
  const DtypeInfo& info = *find_dtype(entry.dtype);
  check(info.in_torch, path_, ": tensor \"", name, "\" has dtype ", entry.dtype,
        ", which this libtorch cannot represent");
  // BOOL is read as bytes: torch requires bools to be exactly 0 or 1, the file does not.
  at::ScalarType stored = info.scalar == at::kBool ? at::kByte : info.scalar;
  at::Tensor view = view_of(data_ + entry.begin, entry.end - entry.begin, entry.shape, stored);
  if (info.scalar == at::kBool) view = view.ne(0);
  // copy=true: the result never aliases the mapping, which dies with this object.
  return view.to(at::TensorOptions().dtype(dtype).device(device), /*non_blocking=*/false,
                 /*copy=*/true);
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  struct Item {
    const std::string* name;
    const at::Tensor* tensor;
    const DtypeInfo* info;
  };
  std::vector<Item> items;
  std::set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    check(tensor.defined(), path, ": tensor \"", name, "\" is undefined");
    check(name != "__metadata__", path, ": \"__metadata__\" cannot name a tensor");
    check(names.insert(name).second, path, ": tensor \"", name, "\" given twice");
    const DtypeInfo* info = find_dtype(tensor.scalar_type());
    check(info != nullptr, path, ": tensor \"", name, "\" has dtype ",
          c10::toString(tensor.scalar_type()), ", which safetensors cannot store");
    items.push_back({&name, &tensor, info});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.info->alignment_rank != b.info->alignment_rank) {
      return a.info->alignment_rank > b.info->alignment_rank;
    }
    return *a.name < *b.name;
  });

  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const Item& item : items) {
    uint64_t nbytes = static_cast<uint64_t>(tensor_bytes(*item.tensor));
    header[*item.name] = {{"dtype", item.info->name},
                          {"shape", item.tensor->sizes().vec()},
                          {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // every tensor's data starts 8-byte aligned

  AtomicFile out(path);
  uint64_t header_size = text.size();
  out.write(&header_size, 8);
  out.write(text);
  for (const Item& item : items) {
    // One tensor at a time on the CPU, so a GPU model is never copied whole.
    at::Tensor cpu = item.tensor->detach().to(at::kCPU).contiguous();
    out.write(cpu.data_ptr(), static_cast<size_t>(tensor_bytes(cpu)));
  }
  out.commit();
}

SafetensorsFolder::SafetensorsFolder(const std::string& dir) : dir_(dir) {
  const std::string single = join_path(dir_, kSingleFile);
  const std::string index_path = join_path(dir_, kIndexFile);
  // transformers prefers the single file when both are present; so does spinlm.
  if (file_exists(single)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single));
    for (const auto& item : files_[0]->entries()) owner_[item.first] = 0;
    return;
  }
  check(file_exists(index_path), dir_, ": no ", kSingleFile, " or ", kIndexFile,
        " (not a safetensors model folder)");
  json index = read_json_file(index_path);
  check(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
        index_path, ": missing \"weight_map\" object");

  std::map<std::string, size_t> file_index;  // shard file name -> index into files_
  for (const auto& [name, file] : index["weight_map"].items()) {
    check(file.is_string(), index_path, ": weight_map entry \"", name, "\" is not a string");
    const std::string shard = file.get<std::string>();
    auto known = file_index.find(shard);
    if (known == file_index.end()) {
      const std::string shard_path = shard_inside_folder(dir_, index_path, name, shard);
      files_.push_back(std::make_unique<SafetensorsFile>(shard_path));
      known = file_index.emplace(shard, files_.size() - 1).first;
    }
    check(files_[known->second]->contains(name), index_path, ": tensor \"", name,
          "\" is listed in weight_map under \"", shard, "\" but absent from that shard");
    owner_[name] = known->second;
  }
  // A tensor present in a shard but missing from the index is still served (as
  // transformers loads whole shards); the index decides when two shards hold one name.
  for (size_t i = 0; i < files_.size(); ++i) {
    for (const auto& item : files_[i]->entries()) owner_.emplace(item.first, i);
  }
}

std::vector<std::string> SafetensorsFolder::names() const {
  std::vector<std::string> result;
  for (const auto& item : owner_) result.push_back(item.first);
  return result;
}

const SafetensorsEntry& SafetensorsFolder::entry(const std::string& name) const {
  auto found = owner_.find(name);
  check(found != owner_.end(), dir_, ": no tensor \"", name, "\" in the model weights");
  return files_[found->second]->entries().at(name);
}

const std::string& SafetensorsFolder::file_of(const std::string& name) const {
  auto found = owner_.find(name);
  check(found != owner_.end(), dir_, ": no tensor \"", name, "\" in the model weights");
  return files_[found->second]->path();
}

at::Tensor SafetensorsFolder::tensor(const std::string& name, at::ScalarType dtype,
                                     at::Device device) const {
  auto found = owner_.find(name);
  check(found != owner_.end(), dir_, ": no tensor \"", name, "\" in the model weights");
  return files_[found->second]->tensor(name, dtype, device);
}

void write_safetensors_folder(const std::string& dir,
                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              int64_t max_shard_bytes) {
  make_directories(dir);
  // Greedy split in the given order: a shard is closed when the next tensor would take it
  // past max_shard_bytes; a tensor larger than the limit gets a shard of its own.
  // max_shard_bytes <= 0 means no limit.
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> shards(1);
  std::set<std::string> names;
  int64_t shard_bytes = 0;
  int64_t total_bytes = 0;
  for (const auto& item : tensors) {
    check(names.insert(item.first).second, dir, ": tensor \"", item.first, "\" given twice");
    int64_t nbytes = tensor_bytes(item.second);
    if (max_shard_bytes > 0 && !shards.back().empty() && shard_bytes + nbytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(item);
    shard_bytes += nbytes;
    total_bytes += nbytes;
  }

  const std::string single = join_path(dir, kSingleFile);
  const std::string index_path = join_path(dir, kIndexFile);
  // Stale files of the other layout go only after the new layout is complete. Readers
  // (spinlm and transformers) prefer model.safetensors, so they see either the old or the
  // new weights at every moment.
  if (shards.size() == 1) {
    write_safetensors(single, shards[0]);
    if (file_exists(index_path)) remove_file(index_path);
    remove_stale_shards(dir, {});
    return;
  }
  json weight_map = json::object();
  std::set<std::string> written;
  for (size_t i = 0; i < shards.size(); ++i) {
    std::string name = shard_name(i, shards.size());
    write_safetensors(join_path(dir, name), shards[i]);
    for (const auto& item : shards[i]) weight_map[item.first] = name;
    written.insert(name);
  }
  json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
  // json.dumps(index, indent=2, sort_keys=True) + "\n", as save_pretrained writes it.
  write_file_atomic(index_path, index.dump(2) + "\n");
  if (file_exists(single)) remove_file(single);
  remove_stale_shards(dir, written);
}

}  // namespace spinlm
