#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace spinlm {

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile file(path);
  file.write(content);
  file.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), path, ": cannot open for reading (", std::strerror(errno), ")");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  check(!in.bad(), path, ": read error");
  return buffer.str();
}

bool file_exists(const std::string& path) {
  std::error_code ignored;
  return std::filesystem::exists(path, ignored);
}

void make_directories(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  check(!error, path, ": cannot create directory (", error.message(), ")");
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  temp_path_ = path_ + ".tmp." + std::to_string(::getpid());
  file_ = std::fopen(temp_path_.c_str(), "wb");
  check(file_ != nullptr, temp_path_, ": cannot open for writing (", std::strerror(errno), ")");
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(temp_path_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t size) {
  check(file_ != nullptr, path_, ": write after commit");
  if (size == 0) return;
  // errno is read after the write (function arguments have no order of evaluation).
  const bool written = std::fwrite(data, 1, size, file_) == size;
  check(written, path_, ": write failed (", std::strerror(errno), ") while writing ", temp_path_);
}

void AtomicFile::commit() {
  check(file_ != nullptr, path_, ": committed twice");
  bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    const int error = errno;
    std::remove(temp_path_.c_str());
    fail(path_, ": write failed (", std::strerror(error), ") while writing ", temp_path_);
  }
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    std::remove(temp_path_.c_str());
    fail(path_, ": cannot rename temporary file into place (", std::strerror(errno), ")");
  }
}

}  // namespace spinlm
