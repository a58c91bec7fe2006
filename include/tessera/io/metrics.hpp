// Training metrics as JSON lines (one object per line, flushed as written), the format the
// examples' --metrics FILE writes and scripts/plot-metrics draws:
//   {"kind":"step","epoch":1,"step":100,"loss":0.8123,"lr":0.002,"images_per_s":1480.2}
//   {"kind":"epoch","epoch":1,"train_loss":0.61,"test_loss":0.44,"test_accuracy":0.8938}
// A resumed run appends to the file of the run it continues.
#pragma once
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

namespace tessera::io {

class MetricsWriter {
 public:
  /// Opens path for writing (append: continue an existing file). Throws IOError naming the
  /// file and the system's reason when it cannot be opened.
  explicit MetricsWriter(const std::string& path, bool append = false);
  /// Writes {"kind": kind, name: value, ...} as one line and flushes it. Non-finite values are
  /// written as null (JSON has no NaN). Throws IOError when the write fails (disk full).
  void write(const std::string& kind, std::initializer_list<std::pair<const char*, double>> fields);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
};

}  // namespace tessera::io
