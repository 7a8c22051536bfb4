// safetensors: an 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then
// the raw little-endian data. Files are memory-mapped for reading; every malformed case
// (truncated file, header past the end, bad JSON, offsets out of bounds or overlapping,
// dtype/shape/size mismatch) is an Error naming the file and the problem.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/torch_pch.h"

namespace spinlm {

struct SafetensorsEntry {
  std::string dtype;           // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  size_t begin = 0;            // byte offsets into the data section
  size_t end = 0;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(std::string path);  // maps and validates the whole header
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }

  // A copy of the tensor converted to dtype on device (Error naming file and tensor if absent).
  at::Tensor tensor(const std::string& name, at::ScalarType dtype = at::kFloat,
                    at::Device device = at::kCPU) const;

 private:
  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// The libtorch dtype of a safetensors dtype name ("BF16" -> kBFloat16) and back; Error for a
// name that is unknown or has no libtorch equivalent (U16/U32/U64, F8 types).
at::ScalarType safetensors_scalar_type(const std::string& dtype);
std::string safetensors_dtype_name(at::ScalarType scalar);

// Writes tensors (any device; written as their own dtype, contiguous, little-endian) with an
// 8-byte aligned header and the given metadata (HF writes {"format": "pt"}). Atomic.
// Entries are laid out as the reference Rust writer does: by descending dtype alignment
// (the Rust Dtype enum reversed: I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL), then name.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// The weights of a model folder: model.safetensors, or the shards that
// model.safetensors.index.json's weight_map names. A shard must lie inside the folder: an
// absolute path, a ".." component or a link resolving outside it is an Error naming the
// entry (links from a Hugging Face hub snapshot into its blobs/ folder are followed).
class SafetensorsFolder {
 public:
  explicit SafetensorsFolder(const std::string& dir);
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return owner_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  const std::string& file_of(const std::string& name) const;
  at::Tensor tensor(const std::string& name, at::ScalarType dtype = at::kFloat,
                    at::Device device = at::kCPU) const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index into files_
};

// Writes model.safetensors, or, above max_shard_bytes, model-0000i-of-0000N.safetensors
// shards plus model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map"}),
// as transformers' save_pretrained lays them out. Removes stale weight files of the other
// layout from dir. Shards are filled greedily in the given order; max_shard_bytes <= 0 means
// a single file.
void write_safetensors_folder(const std::string& dir,
                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              int64_t max_shard_bytes);

}  // namespace spinlm
