// MnistDataset: an images IDX file and a labels IDX file held in CPU tensors.
#include "tessera/data/mnist.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "tessera/error.hpp"

namespace tessera::data {
namespace {

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

MnistDataset::MnistDataset(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx(images_path, kIdxImagesMagic);
  IdxArray labels = read_idx(labels_path, kIdxLabelsMagic);
  // Magic 2051 / 2049 fix the rank at 3 / 1 (read_idx checked them).
  const int64_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
  TESSERA_CHECK(labels.dims[0] == n, IOError, "MnistDataset: image and label counts differ: '", images_path,
                "' has ", n, " images [", n, ", ", rows, ", ", cols, "] but '", labels_path, "' has ",
                labels.dims[0], " labels");

  Tensor img = empty(Shape{n, rows, cols}, TensorOptions(kUInt8));
  if (!images.data.empty()) std::memcpy(img.data_ptr<uint8_t>(), images.data.data(), images.data.size());
  images.data = {};
  Tensor lab = empty(Shape{n}, TensorOptions(kInt64));
  int64_t* l = lab.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) l[i] = labels.data[size_t(i)];
  set(img, lab);
  source_ = images_path + " + " + labels_path;
}

MnistDataset::MnistDataset(const Tensor& images, const Tensor& labels) {
  TESSERA_CHECK(images.defined() && labels.defined(), ValueError,
                "MnistDataset: images and labels must be defined tensors");
  TESSERA_CHECK(images.dtype() == kUInt8 && labels.dtype() == kInt64, DTypeError,
                "MnistDataset: expected images uint8 and labels int64, got images ", images.dtype(),
                " and labels ", labels.dtype());
  TESSERA_CHECK(images.dim() == 3 && labels.dim() == 1 && images.size(0) == labels.size(0), ShapeError,
                "MnistDataset: expected images [N, rows, cols] and labels [N], got images ",
                shape_str(images.shape()), " and labels ", shape_str(labels.shape()));
  TESSERA_CHECK(images.is_cpu() && labels.is_cpu(), DeviceError,
                "MnistDataset: images and labels must be on the CPU, got images on ", images.device(),
                " and labels on ", labels.device());
  const Tensor lab = labels.contiguous();
  const int64_t* l = lab.data_ptr<int64_t>();
  for (int64_t i = 0; i < lab.numel(); ++i)
    TESSERA_CHECK(l[i] >= 0, ValueError, "MnistDataset: label ", i, " is ", l[i], ", labels must be >= 0");
  set(images.contiguous(), lab);
}

void MnistDataset::set(const Tensor& images, const Tensor& labels) {
  images_ = images;
  labels_ = labels;
  size_ = images.size(0);
  rows_ = images.size(1);
  cols_ = images.size(2);
  max_label_ = -1;
  const int64_t* l = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < size_; ++i) max_label_ = std::max(max_label_, l[i]);
}

MnistDataset MnistDataset::from_dir(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string base = dir.empty() ? std::string() : (dir.back() == '/' ? dir : dir + "/");
  std::vector<std::string> tried;
  auto find = [&](const std::string& stem) -> std::string {
    for (const char* ext : {"", ".gz"}) {
      std::string p = base + stem + ext;
      tried.push_back(p);
      if (is_regular_file(p)) return p;
    }
    return {};
  };
  std::string images = find(prefix + "-images-idx3-ubyte");
  std::string labels = find(prefix + "-labels-idx1-ubyte");
  if (images.empty() || labels.empty()) {
    std::string msg = "MnistDataset::from_dir: no MNIST " + std::string(train ? "training" : "test") +
                      " set in '" + dir + "'";
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) msg += " (the directory does not exist)";
    else if (!S_ISDIR(st.st_mode)) msg += " (not a directory)";
    msg += "; looked for";
    for (size_t i = 0; i < tried.size(); ++i) msg += (i ? ", " : " ") + tried[i];
    msg += "; missing: ";
    if (images.empty()) msg += prefix + "-images-idx3-ubyte[.gz]";
    if (images.empty() && labels.empty()) msg += " and ";
    if (labels.empty()) msg += prefix + "-labels-idx1-ubyte[.gz]";
    throw IOError(msg);
  }
  return MnistDataset(images, labels);
}

MnistDataset MnistDataset::first(int64_t n) const {
  TESSERA_CHECK(n >= 0, ValueError, "MnistDataset::first: n must be >= 0, got ", n);
  n = std::min(n, size_);
  MnistDataset out;
  out.set(images_.narrow(0, 0, n), labels_.narrow(0, 0, n));
  out.source_ = source_ + " (first " + std::to_string(n) + ")";
  return out;
}

}  // namespace tessera::data
