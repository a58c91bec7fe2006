// AtomicFile: temporary file + fsync + rename + fsync of the folder.
#include "tessera/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "tessera/error.hpp"

namespace tessera::io {

namespace {

std::atomic<test_hooks::WriteFaultHook> g_hook{nullptr};

void hook(const char* step, std::size_t bytes) {
  if (auto h = g_hook.load(std::memory_order_relaxed)) h(step, bytes);
}

std::string dir_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

namespace test_hooks {
void set_write_fault_hook(WriteFaultHook h) { g_hook.store(h); }
}  // namespace test_hooks

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  TESSERA_CHECK(!path_.empty() && path_.back() != '/', ValueError, "AtomicFile: '", path_,
                "' is not a file name");
  // Same folder (rename cannot cross file systems), named after the process: a stale one
  // left by a crash is overwritten by the next save (O_TRUNC), even if the pid repeats.
  tmp_ = path_ + ".tmp" + std::to_string(::getpid());
  hook("open", 0);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create the temporary file");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::fail(const char* what) {
  const int err = errno;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  throw IOError(::tessera::detail::str_cat("cannot write ", path_, ": ", what, " (", tmp_, "): ", std::strerror(err)));
}

void AtomicFile::write(const void* data, std::size_t n) {
  TESSERA_CHECK(fd_ >= 0 && !committed_, ValueError, "AtomicFile::write: ", path_, " is already committed");
  const char* p = static_cast<const char*>(data);
  constexpr std::size_t kPiece = std::size_t(1) << 20;
  while (n > 0) {
    const std::size_t want = n < kPiece ? n : kPiece;
    hook("write", want);
    const ssize_t got = ::write(fd_, p, want);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("write failed");
    }
    if (got == 0) {
      errno = ENOSPC;
      fail("write failed");
    }
    p += got;
    n -= std::size_t(got);
  }
}

void AtomicFile::commit() {
  TESSERA_CHECK(fd_ >= 0 && !committed_, ValueError, "AtomicFile::commit: ", path_, " is already committed");
  hook("fsync", 0);
  if (::fsync(fd_) != 0) fail("fsync of the temporary file failed");
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail("close of the temporary file failed");
  }
  fd_ = -1;
  hook("rename", 0);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("cannot rename the temporary file over it");
  committed_ = true;
  hook("fsync-dir", 0);
  fsync_directory(dir_of(path_));
}

void write_file_atomically(const std::string& path, const std::string& content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    throw IOError(::tessera::detail::str_cat("cannot open folder ", dir, " to fsync it: ", std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL)  // some file systems cannot fsync a folder (EINVAL): nothing to make durable
    throw IOError(::tessera::detail::str_cat("cannot fsync folder ", dir, ": ", std::strerror(err)));
}

}  // namespace tessera::io
