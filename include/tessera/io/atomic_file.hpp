// Crash-safe file writes: the new content goes to a temporary file in the destination's
// folder, is flushed and fsync'ed, renamed over the destination (atomic on POSIX), and the
// folder is fsync'ed so the rename itself is durable. A crash at any moment leaves either
// the old file or the new one under the final name, never a mix or a truncated file.
// (The sequence is the one the ext4/XFS maintainers document for replacing a file; see
// also PostgreSQL's durable_rename.)
#pragma once
#include <cstddef>
#include <string>

namespace tessera::io {

/// A file being written atomically:
///   AtomicFile f(path);  f.write(p, n); ...;  f.commit();
/// Until commit() the destination is untouched; if the AtomicFile is destroyed without
/// commit() (an exception, an early return) the temporary file is removed.
/// Errors throw IOError naming the destination, the step that failed and strerror(errno).
class AtomicFile {
 public:
  /// Creates the temporary file "<path>.tmp<pid>" next to path. Throws IOError when the
  /// folder does not exist or is not writable. Two threads of one process must not write
  /// the same path at once (they would share the temporary file).
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Appends n bytes (written in pieces of at most 1 MiB).
  void write(const void* data, std::size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  /// fsync, rename over the destination, fsync the folder. Call once.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  [[noreturn]] void fail(const char* what);
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Writes content to path with AtomicFile.
void write_file_atomically(const std::string& path, const std::string& content);

/// fsyncs a folder, so entries created, renamed or removed in it survive a power loss.
/// Throws IOError naming the folder.
void fsync_directory(const std::string& dir);

namespace test_hooks {
/// Test seam: called before each step of an atomic write ("open", "write", "fsync",
/// "rename", "fsync-dir") with the byte count of that step (0 for the others). Tests set it
/// to kill the process at a chosen point; nullptr (the default) disables it.
using WriteFaultHook = void (*)(const char* step, std::size_t bytes);
void set_write_fault_hook(WriteFaultHook hook);
}  // namespace test_hooks

}  // namespace tessera::io
