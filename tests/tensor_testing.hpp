// Helpers shared by the unit tests (tests/test_*.cpp).
//
// elem(), for_each_index() and values() read tensors straight from storage through the
// tensor's strides and storage offset, independently of the library's kernels, so the
// checks built on them do not depend on the code under test.
//
// values_of() and random_tensor() are conveniences for the nn/loss tests and DO go through
// the library (to/contiguous and randn); see their comments.
#pragma once
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "tessera/tensor.hpp"

namespace tessera {
namespace testing {

// Element at multi-index idx (one index per dim), read from storage through strides and
// offset (no kernels). Every dtype is read and returned as double.
inline double elem(const Tensor& t, const std::vector<int64_t>& idx) {
  REQUIRE(int64_t(idx.size()) == t.dim());
  int64_t off = t.storage_offset();
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  const char* p = static_cast<const char*>(t.storage()->data()) + off * int64_t(t.itemsize());
  switch (t.dtype()) {
    case kBool: return *reinterpret_cast<const bool*>(p) ? 1.0 : 0.0;
    case kUInt8: return double(*reinterpret_cast<const uint8_t*>(p));
    case kInt32: return double(*reinterpret_cast<const int32_t*>(p));
    case kInt64: return double(*reinterpret_cast<const int64_t*>(p));
    case kFloat32: return double(*reinterpret_cast<const float*>(p));
    case kFloat64: return *reinterpret_cast<const double*>(p);
    case kFloat16: return double(float(*reinterpret_cast<const Half*>(p)));
    case kBFloat16: return double(float(*reinterpret_cast<const BFloat16*>(p)));
  }
  return NAN;
}

// Calls fn with every multi-index of shape in row-major order (none when a dim is 0; one,
// the empty index, for a 0-d shape). Pure index arithmetic, no kernels.
inline void for_each_index(const Shape& shape, const std::function<void(const std::vector<int64_t>&)>& fn) {
  for (int64_t s : shape)
    if (s == 0) return;
  std::vector<int64_t> idx(shape.size(), 0);
  while (true) {
    fn(idx);
    int64_t d = int64_t(shape.size()) - 1;
    while (d >= 0) {
      if (++idx[size_t(d)] < shape[size_t(d)]) break;
      idx[size_t(d)] = 0;
      --d;
    }
    if (d < 0) return;
  }
}

// All elements in row-major order, read through strides with elem() (no kernels).
inline std::vector<double> values(const Tensor& t) {
  std::vector<double> out;
  for_each_index(t.shape(), [&](const std::vector<int64_t>& i) { out.push_back(elem(t, i)); });
  return out;
}

// All elements in row-major order as float64, via the library's detach/to/contiguous (so
// it also works for CPU copies of device tensors). Use values() where the copy and
// conversion kernels must not be trusted.
inline std::vector<double> values_of(const Tensor& t) {
  const Tensor c = t.detach().to(Device::cpu(), kFloat64).contiguous();
  const double* d = c.data_ptr<double>();
  return std::vector<double>(d, d + c.numel());
}

// Standard-normal tensor from the library's randn (global generator), optionally a leaf
// that requires grad.
inline Tensor random_tensor(const Shape& shape, DType dtype, bool requires_grad = false) {
  Tensor t = randn(shape, TensorOptions(dtype));
  if (requires_grad) t.requires_grad_(true);
  return t;
}

/// A fresh folder under the system's temporary directory, removed with its contents.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("tessera_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
  /// Names of the entries in the directory, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

/// The whole content of a file ("" when it cannot be read).
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace testing
}  // namespace tessera
