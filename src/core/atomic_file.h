// Output files are written to a temporary name beside the target and renamed into place,
// so a reader (or a resumed job) never sees a half-written file.
#pragma once
#include <cstdio>
#include <string>

namespace spinlm {

// Writes the whole content to path atomically (temp file, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& content);

// Reads a whole file; an Error names the path when it cannot be read.
std::string read_file(const std::string& path);

bool file_exists(const std::string& path);
void make_directories(const std::string& path);

// A file that is streamed to "<path>.tmp.<pid>" and appears at path only on commit().
// Destroyed without commit(), the temporary file is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
};

}  // namespace spinlm
