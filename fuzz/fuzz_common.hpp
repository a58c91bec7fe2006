// What the libFuzzer targets share: reporting a broken invariant as a crash, and the
// per-process temporary files that the file readers are fed through.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace fuzz {

/// Reports "<target>: <what>" and aborts, which libFuzzer records as a crash with the input.
[[noreturn]] inline void fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", target, what.c_str());
  std::fflush(stderr);
  std::abort();
}

/// $TMPDIR (or /tmp) + "/tessera_<target>_<pid><tag>": one file per process and tag.
inline std::string temp_path(const char* target, const char* tag) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/tessera_" + target + "_" + std::to_string(::getpid()) + tag;
}

/// Writes size bytes to path (replacing it); fail()s on an I/O error.
inline void write_file(const char* target, const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail(target, "cannot write " + path);
  if (size > 0 && std::fwrite(data, 1, size, f) != size) fail(target, "short write " + path);
  std::fclose(f);
}

}  // namespace fuzz
