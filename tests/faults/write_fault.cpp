// A write fault for the tests, loaded with LD_PRELOAD: files whose path contains
// SPINLM_FAULT_PATH accept SPINLM_FAULT_AFTER bytes (default 0), then every fwrite (and, with
// no allowance, fflush) on them fails with SPINLM_FAULT_ERRNO (default ENOSPC, 28), as on a
// full disk. spinlm writes every file through stdio (core/atomic_file.cpp, io/jsonl.cpp), so
// fopen, fwrite and fflush are where the fault goes.
#include <dlfcn.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {

#define MAX_FILES 256

static FILE* faulty[MAX_FILES];  // the files that fail, and the bytes each took
static size_t written[MAX_FILES];

static int slot_of(FILE* file) {
  for (int i = 0; i < MAX_FILES; ++i)
    if (file != NULL && faulty[i] == file) return i;
  return -1;
}

static void track(FILE* file, const char* path) {
  const char* pattern = getenv("SPINLM_FAULT_PATH");
  if (file == NULL || pattern == NULL || *pattern == 0 || strstr(path, pattern) == NULL) return;
  for (int i = 0; i < MAX_FILES; ++i)
    if (faulty[i] == NULL) {
      faulty[i] = file;
      written[i] = 0;
      return;
    }
}

static int fault_errno(void) {
  const char* text = getenv("SPINLM_FAULT_ERRNO");
  return text ? atoi(text) : ENOSPC;
}

static size_t allowance(void) {
  const char* text = getenv("SPINLM_FAULT_AFTER");
  return text ? (size_t)strtoull(text, NULL, 10) : 0;
}

FILE* fopen(const char* path, const char* mode) {
  FILE* (*real)(const char*, const char*) = reinterpret_cast<FILE* (*)(const char*, const char*)>(dlsym(RTLD_NEXT, "fopen"));
  FILE* file = real(path, mode);
  track(file, path);
  return file;
}

FILE* fopen64(const char* path, const char* mode) {
  FILE* (*real)(const char*, const char*) = reinterpret_cast<FILE* (*)(const char*, const char*)>(dlsym(RTLD_NEXT, "fopen64"));
  FILE* file = real(path, mode);
  track(file, path);
  return file;
}

size_t fwrite(const void* data, size_t size, size_t count, FILE* file) {
  size_t (*real)(const void*, size_t, size_t, FILE*) =
      reinterpret_cast<size_t (*)(const void*, size_t, size_t, FILE*)>(dlsym(RTLD_NEXT, "fwrite"));
  const int slot = slot_of(file);
  if (slot >= 0) {
    if (written[slot] + size * count > allowance()) {
      errno = fault_errno();
      return 0;
    }
    written[slot] += size * count;
  }
  return real(data, size, count, file);
}

int fflush(FILE* file) {
  int (*real)(FILE*) = reinterpret_cast<int (*)(FILE*)>(dlsym(RTLD_NEXT, "fflush"));
  const int slot = slot_of(file);
  if (slot >= 0 && allowance() == 0) {
    errno = fault_errno();
    return EOF;
  }
  return real(file);
}

int fclose(FILE* file) {
  int (*real)(FILE*) = reinterpret_cast<int (*)(FILE*)>(dlsym(RTLD_NEXT, "fclose"));
  const int slot = slot_of(file);
  if (slot >= 0) faulty[slot] = NULL;
  return real(file);
}

}  // extern "C"
