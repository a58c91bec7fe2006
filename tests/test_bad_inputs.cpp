// Catalogue of bad inputs (issue 7): every row is a short name, a call that must fail, the
// exact tessera::Error subclass it must throw and the fragments its what() must contain
// (the op, the offending shapes/dtypes/devices/files, what was expected). One TEST_CASE per
// category runs its whole table and names each failing row. Rows never crash the process:
// a crash, an abort, a non-tessera exception, the wrong subclass or a missing fragment is a
// failed row.
//
// Beside the tables: value checks where the op defines the behaviour for non-finite input
// (NaN through max/argmax/max_pool2d, -inf logits through log_softmax/cross_entropy, as
// PyTorch does), in-place ops and copy_ on overlapping views, and checkpoint save atomicity
// (a failed save leaves the old file byte-identical and no temporary file behind).
#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "tensor_testing.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/backend.hpp"
#include "tessera/cuda.hpp"
#include "tessera/data/idx.hpp"
#include "tessera/io/safetensors.hpp"
#include "tessera/nn/layers.hpp"
#include "tessera/nn/serialize.hpp"
#include "tessera/ops.hpp"
#include "tessera/random.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using tessera::testing::values;
namespace fs = std::filesystem;

namespace {

// ---- the catalogue machinery --------------------------------------------------------------

/// The most derived tessera::Error class of e, by name ("ShapeError", ...; "Error" for the base).
std::string error_class(const Error& e) {
  if (dynamic_cast<const CublasError*>(&e)) return "CublasError";
  if (dynamic_cast<const CudnnError*>(&e)) return "CudnnError";
  if (dynamic_cast<const CudaError*>(&e)) return "CudaError";
  if (dynamic_cast<const ShapeError*>(&e)) return "ShapeError";
  if (dynamic_cast<const DTypeError*>(&e)) return "DTypeError";
  if (dynamic_cast<const DeviceError*>(&e)) return "DeviceError";
  if (dynamic_cast<const IndexError*>(&e)) return "IndexError";
  if (dynamic_cast<const ValueError*>(&e)) return "ValueError";
  if (dynamic_cast<const UnsupportedError*>(&e)) return "UnsupportedError";
  if (dynamic_cast<const IOError*>(&e)) return "IOError";
  if (dynamic_cast<const AutogradError*>(&e)) return "AutogradError";
  return "Error";
}

template <typename E>
const char* class_name() {
  static_assert(std::is_base_of_v<Error, E>, "rows expect a tessera::Error class");
  if constexpr (std::is_same_v<E, ShapeError>) return "ShapeError";
  else if constexpr (std::is_same_v<E, DTypeError>) return "DTypeError";
  else if constexpr (std::is_same_v<E, DeviceError>) return "DeviceError";
  else if constexpr (std::is_same_v<E, IndexError>) return "IndexError";
  else if constexpr (std::is_same_v<E, ValueError>) return "ValueError";
  else if constexpr (std::is_same_v<E, UnsupportedError>) return "UnsupportedError";
  else if constexpr (std::is_same_v<E, IOError>) return "IOError";
  else if constexpr (std::is_same_v<E, AutogradError>) return "AutogradError";
  else return "Error";
}

struct Row {
  std::string name;
  std::function<void()> call;
  std::string expected_class;
  std::vector<std::string> fragments;
};

/// A row expecting exactly class E with every fragment in what().
template <typename E>
Row row(std::string name, std::function<void()> call, std::vector<std::string> fragments) {
  return Row{std::move(name), std::move(call), class_name<E>(), std::move(fragments)};
}

/// Runs every row; a failing row is reported with its name, what it threw and the message.
void run_catalogue(const std::vector<Row>& rows) {
  for (const Row& r : rows) {
    std::string got = "nothing", msg;
    try {
      r.call();
    } catch (const Error& e) {
      got = error_class(e);
      msg = e.what();
    } catch (const std::exception& e) {
      got = std::string("non-tessera exception ") + typeid(e).name();
      msg = e.what();
    } catch (...) {
      got = "an unknown exception";
    }
    INFO("row '" << r.name << "': threw " << got << ": " << msg);
    CHECK(got == r.expected_class);
    for (const std::string& f : r.fragments) CHECK_THAT(msg, Contains(f));
  }
}

/// Random float32 tensor of shape (never constant, so no check passes by accident).
Tensor rnd(const Shape& shape, DType dtype = kFloat32) { return randn(shape, TensorOptions(dtype)); }

Tensor targets(const std::vector<int64_t>& t) { return from_vector<int64_t>(t); }

// ---- files -----------------------------------------------------------------------------------

using testing::read_bytes;
using testing::TempDir;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[std::size_t(i)] = char((n >> (8 * i)) & 0xff);
  return s;
}

/// A safetensors file whose length prefix is the header's true length.
std::string st_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

/// Big-endian IDX header: magic 0x00 0x00 type ndims, then the dims.
std::string idx_header(uint8_t type, const std::vector<uint32_t>& dims, uint8_t b0 = 0, uint8_t b1 = 0) {
  std::string h{char(b0), char(b1), char(type), char(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) h.push_back(char((d >> s) & 0xff));
  return h;
}

std::string random_bytes(std::size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = char(x >> 24);
  }
  return s;
}

nn::Sequential mlp(int64_t in, int64_t hidden, int64_t out) {
  return nn::Sequential(
      nn::Linear(in, hidden), nn::ReLU(), nn::Linear(hidden, out));
}

// ---- a second device for device-mismatch rows on machines without a GPU ----------------------

/// Stands in for CUDA when no GPU is usable: tensors "on cuda:0" live in host memory, so
/// building them works, and every op that mixes them with CPU tensors must refuse before it
/// computes anything. Only allocation, fill and copy are implemented; any other kernel call
/// throws UnsupportedError (a row reaching one would fail for the wrong class).
class HostBackedCudaBackend final : public Backend {
 public:
  DeviceType type() const override { return DeviceType::CUDA; }
  const char* name() const override { return "cuda"; }
  bool is_available() const override { return true; }
  std::string unavailable_reason() const override { return ""; }
  int device_count() const override { return 1; }
  std::shared_ptr<Storage> allocate(std::size_t nbytes, Device device) override {
    std::shared_ptr<Storage> host = cpu().allocate(nbytes, Device::cpu());
    return std::make_shared<Storage>(host->data(), nbytes, device, [host](void*) {});
  }
  void copy_bytes(void* dst, Device, const void* src, Device, std::size_t nbytes) override {
    cpu().copy_bytes(dst, Device::cpu(), src, Device::cpu(), nbytes);
  }
  void synchronize(Device) override {}
  void copy(const Tensor& src, const Tensor& dst) override { cpu().copy(on_cpu(src), on_cpu(dst)); }
  void fill(const Tensor& dst, double value) override { cpu().fill(on_cpu(dst), value); }
  void unary(UnaryOp, const Tensor&, const Tensor&, double, double) override { nope("unary"); }
  void binary(BinaryOp, const Tensor&, const Tensor&, const Tensor&) override { nope("binary"); }
  void where(const Tensor&, const Tensor&, const Tensor&, const Tensor&) override { nope("where"); }
  void random(RandomKind, const Tensor&, uint64_t, uint64_t, double, double) override { nope("random"); }
  void reduce_rows(ReduceOp, const Tensor&, const Tensor&, const Tensor&, double) override { nope("reduce"); }
  void softmax_rows(const Tensor&, const Tensor&, bool) override { nope("softmax"); }
  void softmax_rows_backward(const Tensor&, const Tensor&, const Tensor&, bool) override { nope("softmax"); }
  void bmm(const Tensor&, const Tensor&, const Tensor&) override { nope("bmm"); }
  void conv2d_forward(const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&, const Tensor&) override {
    nope("conv2d");
  }
  void conv2d_backward(const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&, const Tensor&,
                       const Tensor&, const Tensor&) override {
    nope("conv2d");
  }
  Tensor max_pool2d_forward(const Tensor&, const Pool2dParams&, const Tensor&) override { nope("pool"); }
  void max_pool2d_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Pool2dParams&,
                           const Tensor&) override {
    nope("pool");
  }
  void avg_pool2d_forward(const Tensor&, const Pool2dParams&, const Tensor&) override { nope("pool"); }
  void avg_pool2d_backward(const Tensor&, const Pool2dParams&, const Tensor&) override { nope("pool"); }
  void nll_loss_forward(const Tensor&, const Tensor&, const Tensor&, int64_t) override { nope("nll_loss"); }
  void nll_loss_backward(const Tensor&, const Tensor&, const Tensor&, int64_t) override { nope("nll_loss"); }
  void adam_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const Tensor& vmax,
                 const AdamStepParams& a) override {
    cpu().adam_step(on_cpu(p), on_cpu(g), on_cpu(m), on_cpu(v), vmax.defined() ? on_cpu(vmax) : Tensor(), a);
  }
  void sgd_step(const Tensor& p, const Tensor& g, const Tensor& buf, const SgdStepParams& a) override {
    cpu().sgd_step(on_cpu(p), on_cpu(g), buf.defined() ? on_cpu(buf) : Tensor(), a);
  }
  void gather(const Tensor&, int64_t, const Tensor&, const Tensor&, const char*) override { nope("gather"); }
  void scatter_add(const Tensor&, int64_t, const Tensor&, const Tensor&, const char*) override { nope("scatter_add"); }
  void topk_rows(const Tensor&, int64_t, bool, const Tensor&, const Tensor&) override { nope("topk"); }
  void multinomial_rows(const Tensor&, uint64_t, uint64_t, const Tensor&) override { nope("multinomial"); }

 private:
  static Backend& cpu() { return *find_backend(DeviceType::CPU); }
  /// The same bytes seen as a CPU tensor.
  static Tensor on_cpu(const Tensor& t) {
    auto impl = std::make_shared<TensorImpl>(t.impl());
    impl->storage = std::make_shared<Storage>(t.storage()->data(), t.storage()->nbytes(), Device::cpu(), nullptr);
    impl->autograd = nullptr;
    return Tensor(std::move(impl));
  }
  [[noreturn]] static void nope(const char* what) {
    throw UnsupportedError(std::string("host-backed test device: no ") + what + " kernel");
  }
};

/// Makes Device::cuda(0) usable for the scope: the real CUDA backend when it is available,
/// else HostBackedCudaBackend (restoring whatever was registered before).
class SecondDevice {
 public:
  SecondDevice() : previous_(find_backend(DeviceType::CUDA)) {
    if (!(previous_ && previous_->is_available())) register_backend(DeviceType::CUDA, &fake_);
  }
  ~SecondDevice() { register_backend(DeviceType::CUDA, previous_); }
  SecondDevice(const SecondDevice&) = delete;
  SecondDevice& operator=(const SecondDevice&) = delete;

 private:
  Backend* previous_;
  HostBackedCudaBackend fake_;
};

bool gpu_usable() {
  Backend* b = find_backend(DeviceType::CUDA);
  return b && b->is_available();
}

}  // namespace

// ================================ the catalogue ==============================================

TEST_CASE("bad-input catalogue: wrong rank", "[errors][catalogue]") {
  const Tensor x3 = rnd({1, 5, 5}), x4 = rnd({1, 1, 5, 5}), w = rnd({2, 1, 3, 3});
  const Tensor s = scalar_tensor(1.5);
  std::vector<Row> rows = {
      row<ShapeError>("conv2d with a 3-D input", [&] { conv2d(x3, w); }, {"conv2d", "4-D input", "[1, 5, 5]"}),
      row<ShapeError>("conv2d with a 2-D weight", [&] { conv2d(x4, rnd({2, 9})); },
                      {"conv2d", "4-D weight", "[2, 9]"}),
      row<ShapeError>("conv2d with a 2-D bias", [&] { conv2d(x4, w, rnd({2, 1})); },
                      {"conv2d", "bias", "[2]", "[2, 1]"}),
      row<ShapeError>("max_pool2d with a 2-D input", [&] { max_pool2d(rnd({4, 4}), {2, 2}); },
                      {"max_pool2d", "3-D [C, H, W] or 4-D [N, C, H, W]", "[4, 4]"}),
      row<ShapeError>("max_pool2d with a 5-D input", [&] { max_pool2d(rnd({1, 1, 1, 4, 4}), {2, 2}); },
                      {"max_pool2d", "[1, 1, 1, 4, 4]"}),
      row<ShapeError>("avg_pool2d with a 1-D input", [&] { avg_pool2d(rnd({4}), {2, 2}); }, {"avg_pool2d", "[4]"}),
      row<ShapeError>("adaptive_avg_pool2d with a 0-d input", [&] { adaptive_avg_pool2d(s, {1, 1}); },
                      {"adaptive_avg_pool2d", "[]"}),
      row<ShapeError>("linear with a 0-d input", [&] { linear(s, rnd({3, 1})); }, {"linear", "0-dim"}),
      row<ShapeError>("linear with a 1-D weight", [&] { linear(rnd({2, 3}), rnd({3})); },
                      {"linear", "weight [out_features, in_features]", "[3]"}),
      row<ShapeError>("matmul with a 0-d operand", [&] { matmul(s, rnd({2})); },
                      {"matmul", "at least 1 dim", "[]", "[2]"}),
      row<ShapeError>("matmul with two 0-d operands", [&] { matmul(s, s); }, {"matmul", "at least 1 dim"}),
      row<ShapeError>("mm with a 3-D operand", [&] { mm(rnd({2, 2, 2}), rnd({2, 2})); },
                      {"mm", "2-D", "[2, 2, 2]"}),
      row<ShapeError>("bmm with 2-D operands", [&] { bmm(rnd({2, 2}), rnd({2, 2})); }, {"bmm", "3-D", "[2, 2]"}),
      row<ShapeError>("nll_loss with a 3-D input and a 1-D target", [&] { nll_loss(rnd({2, 3, 4}), targets({0, 1})); },
                      {"nll_loss", "[N, C]", "[2, 3, 4]", "expected [2, 4]"}),
      row<ShapeError>("nll_loss with a 1-D input and a 1-D target", [&] { nll_loss(rnd({3}), targets({0})); },
                      {"nll_loss", "[N, C]", "[3]", "expected []"}),
      row<ShapeError>("nll_loss with a 0-d input", [&] { nll_loss(s, targets({0})); },
                      {"nll_loss", "[N, C]", "got shape []"}),
      row<ShapeError>("nll_loss with a 2-D target",
                      [&] { nll_loss(rnd({2, 3}), from_vector<int64_t>({0, 1}, {2, 1})); },
                      {"nll_loss", "target shape [2, 1]", "[2, 3]", "expected [2]"}),
      row<ShapeError>("nll_loss with a target of the wrong length", [&] { nll_loss(rnd({2, 3}), targets({0, 1, 2})); },
                      {"nll_loss", "[3]", "[2, 3]"}),
      row<ShapeError>("cross_entropy with a 3-D input and a 1-D target",
                      [&] { cross_entropy(rnd({2, 3, 4}), targets({0, 1})); },
                      {"cross_entropy", "[N, C]", "[2, 3, 4]", "expected [2, 4]"}),
      row<ShapeError>("t() of a 3-D tensor", [&] { rnd({2, 3, 4}).t(); }, {"t:", "<= 2 dims", "[2, 3, 4]"}),
      row<ShapeError>("permute with too few dims", [&] { rnd({2, 3, 4}).permute({1, 0}); },
                      {"permute", "2 dims", "[2, 3, 4]"}),
      row<ShapeError>("cat of 0-d tensors", [&] { cat({s, s}); }, {"cat", "zero-dim"}),
      row<ShapeError>("cat of tensors of different rank", [&] { cat({rnd({2, 3}), rnd({3})}); },
                      {"cat", "[3]", "[2, 3]"}),
      row<ShapeError>("stack of different shapes", [&] { stack({rnd({2, 3}), rnd({3, 2})}); },
                      {"stack", "[3, 2]", "[2, 3]"}),
      row<ShapeError>("item() of a 2-element tensor", [&] { rnd({2}).item<float>(); }, {"item", "[2]"}),
      row<ShapeError>("Linear module fed the wrong feature count",
                      [&] { nn::Linear(4, 2)->forward(rnd({3, 5})); }, {"linear", "[3, 5]", "[2, 4]"}),
      row<ShapeError>("Conv2d module fed a 3-D input", [&] { nn::Conv2d(1, 2, 3)->forward(x3); },
                      {"conv2d", "[1, 5, 5]"}),
      row<ShapeError>("conv2d input channels differ from weight", [&] { conv2d(rnd({1, 3, 5, 5}), w); },
                      {"conv2d", "[1, 3, 5, 5]", "[2, 1, 3, 3]", "C_in=3"}),
      row<ShapeError>("conv2d kernel larger than the padded input", [&] { conv2d(rnd({1, 1, 2, 2}), w); },
                      {"conv2d", "larger than the padded input", "[1, 1, 2, 2]"}),
      row<ShapeError>("max_pool2d kernel larger than the input", [&] { max_pool2d(rnd({1, 1, 2, 2}), {3, 3}); },
                      {"max_pool2d", "too small", "[1, 1, 2, 2]"}),
  };
  run_catalogue(rows);
}

TEST_CASE("bad-input catalogue: negative and overflowing sizes", "[errors][catalogue]") {
  const int64_t big = int64_t(1) << 40;
  const Tensor x = rnd({2, 3});
  const Tensor one = scalar_tensor(2.0);
  // 7 * 0x6DB6DB6DB6DB6DB7 == 1 (mod 2^64): a product that wraps around to one element.
  const int64_t wraps_to_one = 0x6DB6DB6DB6DB6DB7;
  std::vector<Row> rows = {
      row<ValueError>("zeros({-1})", [] { zeros({-1}); }, {"empty", "negative size", "[-1]"}),
      row<ValueError>("empty({2, -3})", [] { empty({2, -3}); }, {"empty", "negative size", "[2, -3]"}),
      row<ValueError>("ones({-1}, int64)", [] { ones({-1}, kInt64); }, {"negative size", "[-1]"}),
      row<ValueError>("zeros({2^40, 2^40}): numel overflows int64", [&] { zeros({big, big}); },
                      {"empty", "[1099511627776, 1099511627776]", "2^63"}),
      row<ValueError>("empty({2^31, 2^31}) float32: byte count overflows", [] {
                        empty({int64_t(1) << 31, int64_t(1) << 31});
                      }, {"empty", "[2147483648, 2147483648]", "float32", "overflows the byte count"}),
      row<ValueError>("empty({2^61 - 1}) float64: 2^64 - 8 bytes", [] { empty({(int64_t(1) << 61) - 1}, kFloat64); },
                      {"empty", "[2305843009213693951]", "float64"}),
      row<OutOfMemoryError>("empty({2^46}) float32: 256 TiB, beyond any address space", [] { empty({int64_t(1) << 46}); },
                 {"out of memory", "281474976710656 bytes"}),
      row<OutOfMemoryError>("Storage::allocate of 2^64 - 8 bytes on the CPU", [] { Storage::allocate(~std::size_t(7), Device::cpu()); },
                 {"cpu", "out of memory", "18446744073709551608 bytes"}),
      row<ValueError>("rand({-2})", [] { rand({-2}); }, {"negative size", "[-2]"}),
      row<ShapeError>("reshape to a negative size", [&] { x.reshape({-2, -3}); }, {"reshape", "[-2, -3]"}),
      row<ShapeError>("reshape with two -1", [&] { x.reshape({-1, -1}); }, {"reshape", "only one dim can be -1"}),
      row<ShapeError>("view to a shape whose numel overflows", [&] { x.view({big, big}); },
                      {"view", "[1099511627776, 1099511627776]", "2^63"}),
      row<ShapeError>("reshape to a shape whose numel wraps to the input's", [&] { one.reshape({7, wraps_to_one}); },
                      {"reshape", "[7, 7905747460161236407]"}),
      row<ShapeError>("reshape with -1 and an overflowing rest", [&] { x.reshape({-1, big, big}); },
                      {"reshape", "[-1, 1099511627776, 1099511627776]"}),
      row<ShapeError>("expand to a shape whose numel overflows", [&] { one.expand({big, big}); },
                      {"expand", "[1099511627776, 1099511627776]"}),
      row<ShapeError>("expand to a negative size", [&] { one.reshape({1}).expand({-2}); }, {"expand", "-2"}),
      row<ValueError>("arange with zero step", [] { arange(0, 10, 0); }, {"arange", "step", "non-zero"}),
      row<ValueError>("arange with the wrong step sign", [] { arange(0, 10, -1); }, {"arange", "wrong sign"}),
      row<ValueError>("arange to infinity", [] { arange(0, std::numeric_limits<double>::infinity()); },
                      {"arange", "finite"}),
      row<ValueError>("arange with NaN step", [] { arange(0, 10, std::nan("")); }, {"arange", "step"}),
      row<ValueError>("arange with more than 2^63 elements", [] { arange(0, 1e300, 1); }, {"arange", "1e+300"}),
      row<ValueError>("slice with step 0", [&] { x.slice(1, 0, 3, 0); }, {"slice", "step"}),
      row<ValueError>("slice with a negative step", [&] { x.slice(1, 0, 3, -1); }, {"slice", "step"}),
      row<IndexError>("narrow with a negative length", [&] { x.narrow(1, 0, -1); }, {"narrow", "length -1"}),
      row<ValueError>("conv2d with stride 0", [&] { conv2d(rnd({1, 1, 5, 5}), rnd({1, 1, 3, 3}), Tensor(), {0, 1}); },
                      {"conv2d", "stride", "(0, 1)"}),
      row<ValueError>("conv2d with negative padding",
                      [&] { conv2d(rnd({1, 1, 5, 5}), rnd({1, 1, 3, 3}), Tensor(), {1, 1}, {-1, 0}); },
                      {"conv2d", "padding", "(-1, 0)"}),
      row<ValueError>("conv2d with groups 0",
                      [&] { conv2d(rnd({1, 2, 5, 5}), rnd({2, 1, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 0); },
                      {"conv2d", "groups"}),
      row<ValueError>("max_pool2d with kernel 0", [] { max_pool2d(rnd({1, 1, 4, 4}), {0, 2}); },
                      {"max_pool2d", "kernel_size", "(0, 2)"}),
      row<ValueError>("max_pool2d with padding over half the kernel", [] { max_pool2d(rnd({1, 1, 4, 4}), {2, 2}, {2, 2}, {2, 0}); },
                      {"max_pool2d", "padding", "half"}),
      row<ValueError>("adaptive_avg_pool2d to size 0", [] { adaptive_avg_pool2d(rnd({1, 1, 4, 4}), {0, 2}); },
                      {"adaptive_avg_pool2d", "output_size"}),
      row<ValueError>("nn::Linear with a negative size", [] { nn::Linear(-1, 3); }, {"Linear", "-1"}),
      row<ValueError>("nn::Conv2d with channels not divisible by groups",
                      [] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)); }, {"groups"}),
      row<ValueError>("dropout with p = 1.5", [&] { dropout(x, 1.5, true); }, {"dropout", "1.5"}),
      row<ValueError>("nn::Dropout with p = -0.1", [] { nn::Dropout(-0.1); }, {"Dropout", "-0.1"}),
      row<ValueError>("randint with low >= high", [] { randint(5, 3, {2}); }, {"randint", "5", "3"}),
      row<ValueError>("uniform with low > high", [] { uniform({2}, 1.0, 0.0); }, {"uniform", "low"}),
      row<ValueError>("clamp with min > max", [&] { clamp(x, 1.0, 0.0); }, {"clamp", "min 1", "max 0"}),
      row<ValueError>("full of uint8 with 300", [] { full({2}, 300, kUInt8); }, {"fill_", "300", "uint8"}),
      row<ValueError>("fill_ of int64 with 1e30", [] { zeros({2}, kInt64).fill_(1e30); }, {"fill_", "int64"}),
      row<ValueError>("fill_ of int32 with NaN", [] { zeros({2}, kInt32).fill_(std::nan("")); }, {"fill_", "int32"}),
      row<ShapeError>("from_vector with too few values", [] { from_vector<float>({1, 2, 3}, {2, 2}); },
                      {"from_vector", "3 values", "[2, 2]"}),
      row<ValueError>("from_blob with a negative stride", [] {
                        static float buf[4] = {1, 2, 3, 4};
                        from_blob(buf, {2}, kFloat32, Device::cpu(), {-1});
                      }, {"from_blob", "negative stride"}),
      row<ValueError>("from_vector to a negative shape", [] { from_vector<float>({1, 2}, {-2}); },
                      {"from_vector", "negative size", "[-2]"}),
      row<ValueError>("from_blob with a shape whose numel overflows", [&] {
                        static float buf[4] = {1, 2, 3, 4};
                        from_blob(buf, {big, big}, kFloat32);
                      }, {"from_blob", "[1099511627776, 1099511627776]", "2^63"}),
      row<ValueError>("from_blob with a stride reaching past 2^63", [] {
                        static float buf[4] = {1, 2, 3, 4};
                        from_blob(buf, {3}, kFloat32, Device::cpu(), {std::numeric_limits<int64_t>::max() / 2});
                      }, {"from_blob", "[3]", "strides [4611686018427387903]"}),
      row<ValueError>("from_blob of float64 spanning 2^63 bytes", [] {
                        static double buf[2] = {1, 2};
                        from_blob(buf, {2}, kFloat64, Device::cpu(), {int64_t(1) << 61});
                      }, {"from_blob", "float64", "2^63 - 1 bytes"}),
      row<ShapeError>("from_blob with too few strides", [] {
                        static float buf[4] = {1, 2, 3, 4};
                        from_blob(buf, {2, 2}, kFloat32, Device::cpu(), {1});
                      }, {"from_blob", "[2, 2]"}),
      row<ShapeError>("max of an empty tensor", [] { max(zeros({0, 3})); }, {"max", "[0, 3]"}),
      row<ShapeError>("argmax over a 0-size dim", [] { argmax(zeros({3, 0}), 1); }, {"argmax", "[3, 0]"}),
      row<ValueError>("cat of no tensors", [] { cat({}); }, {"cat", "non-empty"}),
  };
  run_catalogue(rows);
}

TEST_CASE("bad-input catalogue: out-of-range dims and indices", "[errors][catalogue]") {
  const Tensor x = rnd({2, 3});
  const Tensor s = scalar_tensor(1.0);
  std::vector<Row> rows = {
      row<IndexError>("sum over dim 5 of a 2-D tensor", [&] { sum(x, {5}); }, {"sum", "dim 5", "2 dims", "-2 to 1"}),
      row<IndexError>("mean over dim -3 of a 2-D tensor", [&] { mean(x, {-3}); }, {"mean", "dim -3"}),
      row<ValueError>("sum over the same dim twice", [&] { sum(x, {0, -2}); }, {"sum", "dim 0 appears twice"}),
      row<IndexError>("prod over dim 2", [&] { prod(x, {2}); }, {"prod", "dim 2"}),
      row<IndexError>("var over dim 9", [&] { var(x, {9}); }, {"var", "dim 9"}),
      row<IndexError>("max over dim 2", [&] { max(x, 2); }, {"max", "dim 2"}),
      row<IndexError>("argmax over dim -3", [&] { argmax(x, -3); }, {"argmax", "dim -3"}),
      row<IndexError>("argmin over dim 1 of a 0-d tensor", [&] { argmin(s, 1); }, {"argmin", "dim 1"}),
      row<IndexError>("softmax over dim 2", [&] { softmax(x, 2); }, {"softmax", "dim 2"}),
      row<IndexError>("log_softmax over dim -3", [&] { log_softmax(x, -3); }, {"log_softmax", "dim -3"}),
      row<IndexError>("select index 3 of a size-3 dim", [&] { x.select(1, 3); },
                      {"select", "index 3", "size 3", "[2, 3]"}),
      row<IndexError>("select index -4 of a size-3 dim", [&] { x.select(1, -4); }, {"select", "index -4"}),
      row<IndexError>("select on dim 2", [&] { x.select(2, 0); }, {"select", "dim 2"}),
      row<IndexError>("operator[] past the end", [&] { x[2]; }, {"select", "index 2", "size 2"}),
      row<IndexError>("operator[] of a 0-d tensor", [&] { s[0]; }, {"select", "0-dim"}),
      row<IndexError>("narrow past the end", [&] { x.narrow(1, 2, 2); }, {"narrow", "start 2 length 2", "size 3"}),
      row<IndexError>("narrow with start past the end", [&] { x.narrow(0, 5, 0); }, {"narrow", "start 5"}),
      row<IndexError>("narrow with start before the beginning", [&] { x.narrow(0, -3, 1); }, {"narrow", "start -1"}),
      row<IndexError>("slice on dim 3", [&] { x.slice(3, 0, 1); }, {"slice", "dim 3"}),
      row<ShapeError>("permute with a repeated dim", [&] { x.permute({0, 0}); }, {"permute", "dim 0 repeated"}),
      row<ShapeError>("permute with a repeated dim (negative)", [&] { x.permute({1, -1}); },
                      {"permute", "dim 1 repeated"}),
      row<IndexError>("permute with dim 2", [&] { x.permute({0, 2}); }, {"permute", "dim 2"}),
      row<IndexError>("transpose dim 2", [&] { x.transpose(0, 2); }, {"transpose", "dim 2"}),
      row<IndexError>("unsqueeze dim 4", [&] { x.unsqueeze(4); }, {"unsqueeze", "dim 4"}),
      row<IndexError>("squeeze dim -3", [&] { x.squeeze(-3); }, {"squeeze", "dim -3"}),
      row<IndexError>("flatten end_dim 2", [&] { x.flatten(0, 2); }, {"flatten", "dim 2"}),
      row<ValueError>("flatten start_dim > end_dim", [&] { rnd({2, 3, 4}).flatten(2, 1); }, {"flatten", "start_dim 2"}),
      row<IndexError>("size(-3)", [&] { x.size(-3); }, {"size", "dim -3"}),
      row<IndexError>("stride(2)", [&] { x.stride(2); }, {"stride", "dim 2"}),
      row<IndexError>("cat along dim 2", [&] { cat({x, x}, 2); }, {"cat", "dim 2"}),
      row<IndexError>("stack along dim 4", [&] { stack({x, x}, 4); }, {"stack", "dim 4"}),
      row<IndexError>("nll_loss target 3 with 3 classes", [&] { nll_loss(log_softmax(x, 1), targets({0, 3})); },
                      {"nll_loss", "target 3 at index 1", "C = 3", "[0, 3)"}),
      row<IndexError>("nll_loss negative target", [&] { nll_loss(log_softmax(x, 1), targets({-1, 0})); },
                      {"nll_loss", "target -1 at index 0", "[0, 3)"}),
      row<IndexError>("cross_entropy target out of range", [&] { cross_entropy(x, targets({1, 100})); },
                      {"cross_entropy", "target 100", "[0, 3)"}),
      row<IndexError>("cross_entropy huge negative target",
                      [&] { cross_entropy(x, targets({std::numeric_limits<int64_t>::min(), 0})); },
                      {"cross_entropy", "target -9223372036854775808"}),
      row<IndexError>("Sequential index out of range", [] { (*mlp(2, 3, 1))[3]; }, {"Sequential", "index 3"}),
      row<IndexError>("x.index({0, 3}) past the end", [&] { x.index({0, 3}); },
                      {"index", "index 3", "dim 1 with size 3", "[2, 3]"}),
      row<IndexError>("x[idx] with an index past the end", [&] { x[from_vector<int64_t>({1, -3})]; },
                      {"index", "index -3", "element 1", "dim 0 with size 2"}),
      row<IndexError>("index_put_ with an index past the end",
                      [&] { rnd({2, 3}).index_put_({indexing::Slice(), from_vector<int64_t>({5})}, 0.0); },
                      {"index_put_", "index 5", "dim 1 with size 3"}),
      row<IndexError>("too many indices", [&] { x.index({0, 0, indexing::None, 0}); },
                      {"index", "too many indices", "dimension 2"}),
      row<IndexError>("a mask of the wrong shape", [&] { x.index({gt(rnd({3, 2}), 0.0)}); },
                      {"index", "mask [3, 2]", "does not match the shape [2, 3]"}),
  };
  run_catalogue(rows);
}

TEST_CASE("bad-input catalogue: dtype mismatch", "[errors][catalogue]") {
  // The library's rule (include/tessera/ops.hpp): elementwise ops promote (int + float ->
  // float, float32 + float64 -> float64); matmul/conv2d/linear do not promote and require
  // one float dtype; integer class targets are int64 only.
  const Tensor f = rnd({2, 2}), d = rnd({2, 2}, kFloat64), i = ones({2, 2}, kInt64);
  const Tensor x4 = rnd({1, 1, 4, 4});
  std::vector<Row> rows = {
      row<DTypeError>("matmul float32 x float64", [&] { matmul(f, d); }, {"matmul", "float32 [2, 2]", "float64 [2, 2]"}),
      row<DTypeError>("matmul int64 x int64", [&] { matmul(i, i); }, {"matmul", "int64"}),
      row<DTypeError>("mm float64 x float32", [&] { mm(d, f); }, {"mm", "float64", "float32"}),
      row<DTypeError>("bmm of bool", [] { bmm(ones({1, 2, 2}, kBool), ones({1, 2, 2}, kBool)); }, {"bmm", "bool"}),
      row<DTypeError>("conv2d of an int64 input", [&] { conv2d(ones({1, 1, 4, 4}, kInt64), ones({1, 1, 3, 3}, kInt64)); },
                      {"conv2d", "input", "int64"}),
      row<DTypeError>("conv2d float32 input, float64 weight", [&] { conv2d(x4, rnd({1, 1, 3, 3}, kFloat64)); },
                      {"conv2d", "weight has dtype float64", "float32"}),
      row<DTypeError>("conv2d float32 input, int64 bias", [&] { conv2d(x4, rnd({1, 1, 3, 3}), ones({1}, kInt64)); },
                      {"conv2d", "bias", "int64"}),
      row<DTypeError>("linear float32 input, float64 weight", [&] { linear(f, d); }, {"linear", "float64", "float32"}),
      row<DTypeError>("linear of an int64 input", [&] { linear(i, i); }, {"linear", "int64"}),
      row<DTypeError>("max_pool2d of uint8", [] { max_pool2d(ones({1, 1, 4, 4}, kUInt8), {2, 2}); },
                      {"max_pool2d", "uint8"}),
      row<DTypeError>("avg_pool2d of int32", [] { avg_pool2d(ones({1, 1, 4, 4}, kInt32), {2, 2}); },
                      {"avg_pool2d", "int32"}),
      row<DTypeError>("adaptive_avg_pool2d of int64", [] { adaptive_avg_pool2d(ones({1, 1, 4, 4}, kInt64), {2, 2}); },
                      {"adaptive_avg_pool2d", "int64"}),
      row<DTypeError>("mean of int64", [&] { mean(i); }, {"mean", "int64"}),
      row<DTypeError>("var of bool", [] { var(ones({3}, kBool)); }, {"var", "bool"}),
      row<DTypeError>("softmax of int64", [&] { softmax(i, 1); }, {"softmax", "int64"}),
      row<DTypeError>("log_softmax of int32", [] { log_softmax(ones({2}, kInt32), 0); }, {"log_softmax", "int32"}),
      row<DTypeError>("nll_loss with float targets", [&] { nll_loss(log_softmax(f, 1), rnd({2})); },
                      {"nll_loss", "target", "int64", "float32"}),
      row<DTypeError>("nll_loss with int32 targets",
                      [&] { nll_loss(log_softmax(f, 1), from_vector<int32_t>({0, 1})); },
                      {"nll_loss", "int64", "int32"}),
      row<DTypeError>("cross_entropy with uint8 targets",
                      [&] { cross_entropy(f, from_vector<uint8_t>({0, 1})); }, {"cross_entropy", "uint8"}),
      row<DTypeError>("cross_entropy of int64 logits", [&] { cross_entropy(i, targets({0, 1})); },
                      {"cross_entropy", "int64"}),
      row<DTypeError>("where with an int64 condition", [&] { where(i, f, f); }, {"where", "bool", "int64"}),
      row<DTypeError>("add_ of float32 into int64", [&] {
                        Tensor dst = ones({2, 2}, kInt64);
                        add_(dst, f);
                      }, {"add_", "float32", "int64"}),
      row<DTypeError>("div_ of an int64 tensor (true division gives float)", [&] {
                        Tensor dst = ones({2, 2}, kInt64);
                        div_(dst, 2.0);
                      }, {"div_", "float32", "int64"}),
      row<DTypeError>("mul_ of float64 into float32", [&] {
                        Tensor dst = rnd({2, 2});
                        mul_(dst, d);
                      }, {"mul_", "float64", "float32"}),
      row<DTypeError>("sub of bool tensors", [] { sub(ones({2}, kBool), ones({2}, kBool)); }, {"sub", "bool"}),
      row<DTypeError>("neg of bool", [] { neg(ones({2}, kBool)); }, {"neg", "bool"}),
      row<DTypeError>("rand with an int dtype", [] { rand({2}, kInt32); }, {"rand", "int32"}),
      row<DTypeError>("randn with an int dtype", [] { randn({2}, kInt64); }, {"randn", "int64"}),
      row<DTypeError>("dropout of an int64 tensor in training", [&] { dropout(i, 0.5, true); }, {"dropout", "int64"}),
      row<DTypeError>("data_ptr<float> of int64", [&] { i.data_ptr<float>(); }, {"data_ptr<float32>", "int64"}),
      row<DTypeError>("Module::to(int64)", [] { mlp(2, 3, 1)->to(kInt64); }, {"Sequential", "int64"}),
      row<AutogradError>("requires_grad_ on an int64 tensor", [] { ones({2}, kInt64).requires_grad_(); },
                         {"requires_grad_", "int64"}),
  };
  run_catalogue(rows);
}

TEST_CASE("bad-input catalogue: unusable devices", "[errors][catalogue]") {
  std::vector<Row> rows = {
      row<DeviceError>("zeros on cpu:3", [] { zeros({2}, Device(DeviceType::CPU, 3)); }, {"cpu", "does not exist", "1 cpu device"}),
      row<ValueError>("Device(\"tpu\")", [] { Device("tpu"); }, {"tpu"}),
      row<ValueError>("Device(\"cuda:x\")", [] { Device("cuda:x"); }, {"cuda:x"}),
      row<ValueError>("Device(\"cuda:-1\")", [] { Device("cuda:-1"); }, {"cuda:-1"}),
  };
  if (!gpu_usable()) {
    // Without a GPU every way of making a CUDA tensor says that CUDA is not available and why.
    const std::string reason = cuda::unavailable_reason();
    CHECK_FALSE(reason.empty());
    const std::vector<std::string> frags = {"cuda", "not available", reason};
    rows.push_back(row<DeviceError>("zeros on cuda:0", [] { zeros({2}, Device::cuda(0)); }, frags));
    rows.push_back(row<DeviceError>("empty on cuda:1", [] { empty({2}, Device::cuda(1)); }, frags));
    rows.push_back(row<DeviceError>("rand on cuda", [] { rand({2}, Device::cuda()); }, frags));
    rows.push_back(row<DeviceError>("arange on cuda", [] { arange(0, 4, 1, TensorOptions(kInt64, Device::cuda())); }, frags));
    rows.push_back(row<DeviceError>("from_vector to cuda",
                                    [] { from_vector<float>({1, 2}, {2}, TensorOptions(Device::cuda())); }, frags));
    rows.push_back(row<DeviceError>("Tensor::to(cuda)", [] { rnd({2}).to(Device::cuda()); }, frags));
    rows.push_back(row<DeviceError>("Module::to(cuda)", [] { mlp(2, 3, 1)->to(Device::cuda()); }, frags));
  } else {
    rows.push_back(row<DeviceError>("zeros on cuda:1000", [] { zeros({2}, Device::cuda(1000)); },
                                    {"cuda:1000", "does not exist"}));
  }
  run_catalogue(rows);
}

TEST_CASE("bad-input catalogue: tensors on different devices", "[errors][catalogue]") {
  // A real GPU when there is one, else host memory posing as cuda:0 (see SecondDevice).
  SecondDevice second;
  const Device g = Device::cuda(0);
  const Tensor a = rnd({2, 3}), b = rnd({2, 3}).to(g), sq = rnd({3, 3}).to(g);
  const Tensor x4 = rnd({1, 1, 5, 5}), w = rnd({2, 1, 3, 3});
  REQUIRE(b.device() == g);
  const std::vector<std::string> both = {"cpu", "cuda:0"};
  auto with = [](std::string op, std::vector<std::string> v) {
    v.insert(v.begin(), std::move(op));
    return v;
  };
  std::vector<Row> rows = {
      row<DeviceError>("add cpu + cuda", [&] { add(a, b); }, with("add", both)),
      row<DeviceError>("operator* cuda * cpu", [&] { b * a; }, with("mul", both)),
      row<DeviceError>("maximum cpu, cuda", [&] { maximum(a, b); }, with("maximum", both)),
      row<DeviceError>("eq cpu, cuda", [&] { eq(a, b); }, with("eq", both)),
      row<DeviceError>("where with the condition on cuda", [&] { where(gt(a, 0.0).to(g), a, a); }, with("where", both)),
      row<DeviceError>("add_ of a cuda tensor into a cpu tensor", [&] {
                         Tensor dst = rnd({2, 3});
                         add_(dst, b);
                       }, with("add", both)),
      row<DeviceError>("matmul cpu x cuda", [&] { matmul(a, sq); }, with("matmul", both)),
      row<DeviceError>("mm cpu x cuda", [&] { mm(a, sq); }, with("mm", both)),
      row<DeviceError>("bmm cpu x cuda", [&] { bmm(rnd({1, 2, 3}), rnd({1, 3, 2}).to(g)); }, with("bmm", both)),
      row<DeviceError>("conv2d weight on cuda", [&] { conv2d(x4, w.to(g)); }, with("conv2d", {"weight", "cpu", "cuda:0"})),
      row<DeviceError>("conv2d bias on cuda", [&] { conv2d(x4, w, rnd({2}).to(g)); },
                       with("conv2d", {"bias", "cpu", "cuda:0"})),
      row<DeviceError>("linear weight on cuda", [&] { linear(a, sq); }, with("linear", {"weight", "cpu", "cuda:0"})),
      row<DeviceError>("linear bias on cuda", [&] { linear(a, rnd({4, 3}), rnd({4}).to(g)); },
                       with("linear", {"bias", "cpu", "cuda:0"})),
      row<DeviceError>("nll_loss target on cuda", [&] { nll_loss(log_softmax(a, 1), targets({0, 1}).to(g)); },
                       with("nll_loss", {"target", "cpu", "cuda:0"})),
      row<DeviceError>("cross_entropy target on cuda", [&] { cross_entropy(a, targets({0, 1}).to(g)); },
                       with("cross_entropy", {"target", "cpu", "cuda:0"})),
      row<DeviceError>("cat of cpu and cuda", [&] { cat({a, b}); }, with("cat", {"tensor 1", "cpu", "cuda:0"})),
      row<DeviceError>("Linear module on cpu fed a cuda input", [&] { nn::Linear(3, 2)->forward(b); },
                       with("linear", both)),
  };
  run_catalogue(rows);
  // Explicit transfers are not errors: copy_ across devices and load_state_dict convert.
  Tensor back = zeros({2, 3});
  back.copy_(b);
  CHECK(values(back) == values(b.cpu()));
}

TEST_CASE("bad-input catalogue: in-place ops on overlapping or expanded tensors", "[errors][catalogue]") {
  // Documented (ops.hpp): in-place ops refuse a second input that overlaps the destination
  // partially, and a destination with overlapping elements (stride 0, from expand).
  // copy_ refuses an expanded destination too; for an overlapping source it reads from a
  // temporary (checked by value in the next TEST_CASE).
  std::vector<Row> rows = {
      row<ValueError>("a.add_(a.t())", [] {
                        Tensor a = rnd({3, 3});
                        a.add_(a.t());
                      }, {"add_", "overlaps the destination", "[3, 3]", "clone"}),
      row<ValueError>("a += a.t() (operator)", [] {
                        Tensor a = rnd({3, 3});
                        a += a.t();
                      }, {"add_", "overlaps"}),
      row<ValueError>("x[1:].sub_(x[:-1])", [] {
                        Tensor x = rnd({6});
                        Tensor dst = x.slice(0, 1, 6);
                        dst.sub_(x.slice(0, 0, 5));
                      }, {"sub_", "overlaps", "[5]"}),
      row<ValueError>("row.mul_(column of the same matrix)", [] {
                        Tensor m = rnd({3, 3});
                        Tensor r = m.select(0, 1);
                        r.mul_(m.select(1, 1));
                      }, {"mul_", "overlaps"}),
      row<ValueError>("x[::2].div_(x[1:4]) interleaved", [] {
                        Tensor x = rnd({6});
                        Tensor dst = x.slice(0, 0, 6, 2);
                        dst.div_(x.slice(0, 1, 4));
                      }, {"div_", "overlaps"}),
      row<ValueError>("add_ into an expanded destination", [] {
                        Tensor e = zeros({1, 3}).expand({4, 3});
                        e.add_(rnd({4, 3}));
                      }, {"add_", "overlapping elements", "stride 0 in dim 0", "[4, 3]"}),
      row<ValueError>("mul_ (scalar) into an expanded destination", [] {
                        Tensor e = rnd({3, 1}).expand({3, 5});
                        e.mul_(2.0);
                      }, {"mul_", "stride 0 in dim 1"}),
      row<ValueError>("copy_ into an expanded destination", [] { zeros({1, 3}).expand({2, 3}).copy_(rnd({2, 3})); },
                      {"copy_", "overlapping elements", "stride 0", "[2, 3]"}),
      row<ValueError>("clamp_ of an expanded destination", [] {
                        Tensor e = rnd({1, 3}).expand({2, 3});
                        clamp_(e, -1, 1);
                      }, {"clamp_", "stride 0"}),
      row<AutogradError>("add_ on a leaf that requires grad", [] {
                           Tensor w = rnd({2}).requires_grad_();
                           w.add_(1.0);
                         }, {"add_", "requires grad", "NoGradGuard"}),
      row<AutogradError>("copy_ into a leaf that requires grad", [] {
                           Tensor w = rnd({2}).requires_grad_();
                           w.copy_(rnd({2}));
                         }, {"copy_", "requires grad"}),
      row<ShapeError>("add_ that would broadcast the destination", [] {
                        Tensor a = rnd({3});
                        a.add_(rnd({2, 3}));
                      }, {"add_", "[2, 3]", "[3]"}),
  };
  run_catalogue(rows);
}

TEST_CASE("in-place ops and copy_ on overlapping views: the values", "[errors][catalogue]") {
  using tessera::testing::elem;
  SECTION("copy_ from its own transpose gives the transpose (read through a temporary)") {
    Tensor m = rnd({3, 3}, kFloat64);
    const std::vector<double> before = values(m);
    m.copy_(m.t());
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 3; ++j) CHECK(elem(m, {i, j}) == before[std::size_t(j * 3 + i)]);
  }
  SECTION("copy_ shifted by one element in both directions") {
    Tensor x = rnd({7}, kFloat64);
    std::vector<double> v = values(x);
    x.slice(0, 1, 7).copy_(x.slice(0, 0, 6));
    std::vector<double> want = v;
    for (int i = 6; i >= 1; --i) want[std::size_t(i)] = v[std::size_t(i - 1)];
    CHECK(values(x) == want);
    v = values(x);
    x.slice(0, 0, 6).copy_(x.slice(0, 1, 7));
    want = v;
    for (int i = 0; i < 6; ++i) want[std::size_t(i)] = v[std::size_t(i + 1)];
    CHECK(values(x) == want);
  }
  SECTION("copy_ of the right half onto the left half of a row-major matrix") {
    Tensor m = rnd({2, 4}, kFloat64);
    const std::vector<double> v = values(m);
    m.slice(1, 0, 3).copy_(m.slice(1, 1, 4));
    CHECK(values(m) == std::vector<double>{v[1], v[2], v[3], v[3], v[5], v[6], v[7], v[7]});
  }
  SECTION("an in-place op with the destination itself is the exact same view: allowed") {
    Tensor a = rnd({2, 3}, kFloat64);
    const std::vector<double> v = values(a);
    a.add_(a);
    std::vector<double> want;
    for (double e : v) want.push_back(2 * e);
    CHECK(values(a) == want);
    a.mul_(a);
    for (double& e : want) e *= e;
    CHECK(values(a) == want);
  }
  SECTION("a refused in-place op leaves the destination unchanged") {
    Tensor a = rnd({3, 3});
    const std::vector<double> v = values(a);
    CHECK_THROWS_AS(a.add_(a.t()), ValueError);
    CHECK(values(a) == v);
  }
}

// ================================ non-finite values ==========================================

TEST_CASE("non-finite values: NaN through max, argmax and max_pool2d (PyTorch semantics)",
          "[errors][catalogue][nan]") {
  const double nan = std::nan("");
  SECTION("max/min of all elements propagate NaN") {
    for (DType dt : {kFloat32, kFloat64}) {
      CAPTURE(dt);
      const Tensor x = from_vector<double>({1.5, -2.0, nan, 7.25, nan}).to(dt);
      CHECK(std::isnan(max(x).item<double>()));
      CHECK(std::isnan(min(x).item<double>()));
      CHECK(std::isnan(x.max().item<double>()));
      // argmax/argmin of the flattened tensor pick the first NaN (torch.argmax treats NaN as
      // the largest and torch.argmin as the smallest value).
      CHECK(argmax(x).item<int64_t>() == 2);
      CHECK(argmin(x).item<int64_t>() == 2);
    }
  }
  SECTION("max/argmax along a dim: rows with a NaN give NaN and its first index") {
    // [[1, NaN, 3, NaN], [4, 2, 9, 0], [-inf, -1, NaN, +inf]]
    const double inf = std::numeric_limits<double>::infinity();
    const Tensor x = from_vector<double>({1, nan, 3, nan, 4, 2, 9, 0, -inf, -1, nan, inf}, {3, 4});
    auto [mx, imx] = max(x, 1);
    auto [mn, imn] = min(x, 1);
    const std::vector<double> mxv = values(mx), mnv = values(mn);
    CHECK(std::isnan(mxv[0]));
    CHECK(mxv[1] == 9);
    CHECK(std::isnan(mxv[2]));
    CHECK(values(imx) == std::vector<double>{1, 2, 2});
    CHECK(std::isnan(mnv[0]));
    CHECK(mnv[1] == 0);
    CHECK(std::isnan(mnv[2]));
    CHECK(values(imn) == std::vector<double>{1, 3, 2});
    CHECK(values(argmax(x, 1)) == std::vector<double>{1, 2, 2});
    CHECK(values(argmin(x, 1)) == std::vector<double>{1, 3, 2});
    // Along dim 0: columns 1, 2, 3 hold a NaN.
    CHECK(values(argmax(x, 0)) == std::vector<double>{1, 0, 2, 0});
    CHECK(values(argmin(x, 0)) == std::vector<double>{2, 0, 2, 0});
  }
  SECTION("max_pool2d: a window with a NaN gives NaN, the others their max; the gradient goes to the NaN") {
    // 4x4 input, NaN at (0, 1) and (3, 3); 2x2 windows with stride 2.
    std::vector<double> v = {0.5, nan, 2.0, -1.0,   //
                             3.0, 1.0, -4.0, 6.5,   //
                             -2.0, 8.0, 0.0, 1.5,   //
                             7.0, -3.0, 2.5, nan};
    for (DType dt : {kFloat32, kFloat64}) {
      CAPTURE(dt);
      Tensor x = from_vector<double>(v, {1, 1, 4, 4}).to(dt).requires_grad_();
      Tensor y = max_pool2d(x, {2, 2});
      const std::vector<double> yv = values(y);
      REQUIRE(yv.size() == 4);
      CHECK(std::isnan(yv[0]));
      CHECK(yv[1] == 6.5);
      CHECK(yv[2] == 8.0);
      CHECK(std::isnan(yv[3]));
      // Backward of sum over the finite windows only (a NaN upstream would poison everything).
      Tensor weights = from_vector<double>({1, 10, 100, 1000}, {1, 1, 2, 2}).to(dt);
      sum(mul(where(eq(y, y), y, 0.0), weights)).backward();
      std::vector<double> want(16, 0.0);
      want[7] = 10;   // 6.5, window (0, 1)
      want[9] = 100;  // 8.0, window (1, 0); the NaN windows are masked out
      CHECK(values(x.grad()) == want);
    }
    // Overlapping windows (stride 1): every window that contains the NaN is NaN.
    Tensor x = from_vector<double>(v, {1, 4, 4});
    Tensor y = max_pool2d(x, {2, 2}, {1, 1});
    const std::vector<double> yv = values(y);
    REQUIRE(yv.size() == 9);
    for (int k : {0, 1}) CHECK(std::isnan(yv[std::size_t(k)]));
    CHECK(yv[2] == 6.5);
    CHECK(yv[3] == 8.0);
    CHECK(yv[4] == 8.0);
    CHECK(yv[5] == 6.5);
    CHECK(yv[6] == 8.0);
    CHECK(yv[7] == 8.0);
    CHECK(std::isnan(yv[8]));
  }
  SECTION("max_pool2d: the gradient of a NaN window goes to the NaN (first NaN)") {
    Tensor x = from_vector<double>({1.0, nan, nan, 5.0}, {1, 1, 2, 2}).requires_grad_();
    Tensor y = max_pool2d(x, {2, 2});
    CHECK(std::isnan(values(y)[0]));
    y.backward(ones({1, 1, 1, 1}, kFloat64));
    CHECK(values(x.grad()) == std::vector<double>{0, 1, 0, 0});
  }
}

TEST_CASE("non-finite values: -inf logits through log_softmax and cross_entropy", "[errors][catalogue][inf]") {
  const double inf = std::numeric_limits<double>::infinity();
  const double lse = std::log(1.0 + std::exp(1.0));  // log(e^0 + e^1)
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const double tol = dt == kFloat32 ? 1e-6 : 1e-14;
    SECTION(std::string("one -inf logit leaves the other classes finite and exact, ") + dtype_name(dt)) {
      const Tensor x = from_vector<double>({0.0, -inf, 1.0}).to(dt);
      const std::vector<double> ls = values(log_softmax(x, 0));
      CHECK(ls[0] == Approx(-lse).margin(tol));
      CHECK(ls[1] == -inf);
      CHECK(ls[2] == Approx(1.0 - lse).margin(tol));
      const std::vector<double> sm = values(softmax(x, 0));
      CHECK(sm[0] == Approx(1.0 / (1.0 + std::exp(1.0))).margin(tol));
      CHECK(sm[1] == 0.0);
      CHECK(sm[2] == Approx(std::exp(1.0) / (1.0 + std::exp(1.0))).margin(tol));
    }
    SECTION(std::string("cross_entropy with -inf logits: loss and gradient, ") + dtype_name(dt)) {
      // Row 0: [0, -inf, 1], target 2 -> lse - 1. Row 1: [2, -inf, -inf], target 0 -> 0.
      Tensor logits = from_vector<double>({0.0, -inf, 1.0, 2.0, -inf, -inf}, {2, 3}).to(dt).requires_grad_();
      Tensor loss = cross_entropy(logits, targets({2, 0}), Reduction::None);
      const std::vector<double> lv = values(loss);
      CHECK(lv[0] == Approx(lse - 1.0).margin(tol));
      CHECK(lv[1] == 0.0);
      Tensor mean_loss = cross_entropy(logits, targets({2, 0}));
      CHECK(mean_loss.item<double>() == Approx((lse - 1.0) / 2).margin(tol));
      mean_loss.backward();
      // d/dlogits = (softmax - onehot) / N; a -inf logit gets exactly 0.
      const double p0 = 1.0 / (1.0 + std::exp(1.0));
      const std::vector<double> gv = values(logits.grad());
      CHECK(gv[0] == Approx(p0 / 2).margin(tol));
      CHECK(gv[1] == 0.0);
      CHECK(gv[2] == Approx((1.0 - p0 - 1.0) / 2).margin(tol));
      CHECK(gv[3] == 0.0);
      CHECK(gv[4] == 0.0);
      CHECK(gv[5] == 0.0);
    }
    SECTION(std::string("a target on a -inf logit costs +inf; an all -inf row gives NaN, ") + dtype_name(dt)) {
      const Tensor logits = from_vector<double>({0.0, -inf, 1.0}, {1, 3}).to(dt);
      CHECK(cross_entropy(logits, targets({1})).item<double>() == inf);
      const Tensor dead = from_vector<double>({-inf, -inf, -inf, 0.5, 0.25, -1.0}, {2, 3}).to(dt);
      const std::vector<double> ls = values(log_softmax(dead, 1));
      for (int k = 0; k < 3; ++k) CHECK(std::isnan(ls[std::size_t(k)]));  // PyTorch: (-inf) - (-inf) = NaN
      for (int k = 3; k < 6; ++k) CHECK(std::isfinite(ls[std::size_t(k)]));
      const std::vector<double> ce = values(cross_entropy(dead, targets({0, 1}), Reduction::None));
      CHECK(std::isnan(ce[0]));
      CHECK(std::isfinite(ce[1]));
      CHECK(std::isnan(cross_entropy(dead, targets({0, 1})).item<double>()));
    }
  }
}

// ================================ files ======================================================

TEST_CASE("bad-input catalogue: checkpoints (safetensors and nn::load)", "[errors][catalogue][io]") {
  TempDir dir("ckpt");
  manual_seed(7);
  auto saved = mlp(4, 8, 3);
  const std::string good = dir.file("mlp.safetensors");
  nn::save(*saved, good);
  const std::string bytes = read_bytes(good);
  REQUIRE(bytes.size() > 100);
  const uint64_t header_len = [&] {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[std::size_t(i)])) << (8 * i);
    return n;
  }();
  const std::size_t data_bytes = bytes.size() - 8 - std::size_t(header_len);
  REQUIRE(data_bytes == (8 * 4 + 8 + 3 * 8 + 3) * 4);

  // Files written once; every row reads one.
  auto put = [&](const std::string& name, const std::string& contents) {
    const std::string p = dir.file(name);
    write_bytes(p, contents);
    return p;
  };
  const std::string truncated_mid_tensor = put("cut.safetensors", bytes.substr(0, bytes.size() - data_bytes / 2));
  const std::string truncated_last_byte = put("cut1.safetensors", bytes.substr(0, bytes.size() - 1));
  const std::string truncated_in_header = put("cuthdr.safetensors", bytes.substr(0, 8 + std::size_t(header_len) / 2));
  const std::string empty_file = put("empty.safetensors", "");
  const std::string f8 = random_bytes(8, 1), f16 = random_bytes(16, 2);
  const std::string past_end =
      put("pastend.safetensors", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                         f8 + f8.substr(0, 4)));
  const std::string huge_offsets =
      put("hugeoff.safetensors",
          st_file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[18446744073709551600,18446744073709551608]}})", f8));
  const std::string overlapping =
      put("overlap.safetensors", st_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                         f16));
  const std::string same_range =
      put("same.safetensors", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})",
                                      f8));
  const std::string hole = put("hole.safetensors", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", f16));
  const std::string trailing =
      put("trailing.safetensors", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f16));
  const std::string reversed =
      put("reversed.safetensors", st_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", f8));
  const std::string wrong_span =
      put("span.safetensors", st_file(R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", f8));
  const std::string header_too_long = put("hdrlen.safetensors", le64(4096) + R"({"a":1})");
  const std::string header_len_max = put("hdrmax.safetensors", le64(~uint64_t(0)) + "{}");
  const std::string not_json = put("notjson.safetensors", st_file("{\"a\": {\"dtype\": \"F32\", ", ""));
  const std::string binary_header = put("binhdr.safetensors", st_file(random_bytes(32, 3), ""));
  const std::string json_array = put("array.safetensors", st_file("[]", ""));
  const std::string float_offsets =
      put("floatoff.safetensors", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0.0,8.5]}})", f8));
  const std::string huge_shape = put(
      "hugeshape.safetensors",
      st_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})", f8));
  const std::string missing = dir.file("does-not-exist.safetensors");

  auto load_into_fresh = [](const std::string& path) {
    auto m = mlp(4, 8, 3);
    nn::load(*m, path);
  };
  std::vector<Row> rows = {
      row<ShapeError>("nn::load into a model with a different hidden size", [&] {
                        auto m = mlp(4, 6, 3);
                        nn::load(*m, good);
                      }, {"size mismatch for '0.weight'", "[8, 4]", "[6, 4]", good}),
      row<ShapeError>("nn::load into a model with a different output size", [&] {
                        auto m = mlp(4, 8, 5);
                        nn::load(*m, good);
                      }, {"size mismatch for '2.weight'", "[3, 8]", "[5, 8]", good}),
      row<ValueError>("nn::load into a model with other layer names", [&] {
                        auto m = nn::Sequential(nn::Linear(4, 8));
                        nn::load(*m, good);
                      }, {"Unexpected keys", "\"2.weight\"", good}),
      row<IOError>("nn::load of a checkpoint truncated mid-tensor", [&] { load_into_fresh(truncated_mid_tensor); },
                   {truncated_mid_tensor, "truncated"}),
      row<IOError>("nn::load of a checkpoint missing its last byte", [&] { load_into_fresh(truncated_last_byte); },
                   {truncated_last_byte, "truncated", "only"}),
      row<IOError>("load of a checkpoint cut inside its header", [&] { io::load_safetensors(truncated_in_header); },
                   {truncated_in_header, "header length", "beyond the end of the file"}),
      row<IOError>("load of an empty file", [&] { io::load_safetensors(empty_file); }, {empty_file, "too short"}),
      row<IOError>("load of a missing file", [&] { io::load_safetensors(missing); }, {missing, "cannot open"}),
      row<IOError>("load of a directory", [&] { io::load_safetensors(dir.path.string()); }, {dir.path.string()}),
      row<IOError>("offsets past the end of the file", [&] { io::load_safetensors(past_end); },
                   {past_end, "truncated", "16 bytes", "only 12"}),
      row<IOError>("offsets near 2^64", [&] { io::load_safetensors(huge_offsets); }, {huge_offsets, "belong to no tensor"}),
      row<IOError>("overlapping offsets", [&] { io::load_safetensors(overlapping); },
                   {overlapping, "'b'", "overlap", "'a'"}),
      row<IOError>("two tensors on the same bytes", [&] { io::load_safetensors(same_range); }, {same_range, "overlap"}),
      row<IOError>("offsets leaving a hole at the start", [&] { io::load_safetensors(hole); },
                   {hole, "data bytes [0, 8) belong to no tensor"}),
      row<IOError>("offsets not covering the buffer (trailing bytes)", [&] { io::load_safetensors(trailing); },
                   {trailing, "the last 8 of the 16 data bytes belong to no tensor"}),
      row<IOError>("begin > end", [&] { io::load_safetensors(reversed); }, {reversed, "[8, 0]", "out of order"}),
      row<IOError>("offsets spanning the wrong byte count", [&] { io::load_safetensors(wrong_span); },
                   {wrong_span, "needs 16 bytes", "span 8"}),
      row<IOError>("header length larger than the file", [&] { io::load_safetensors(header_too_long); },
                   {header_too_long, "header length 4096 goes beyond the end of the file"}),
      row<IOError>("header length 2^64 - 1", [&] { io::load_safetensors(header_len_max); },
                   {header_len_max, "header length 18446744073709551615"}),
      row<IOError>("header that is not JSON", [&] { io::load_safetensors(not_json); }, {not_json, "not valid JSON"}),
      row<IOError>("header of random bytes", [&] { io::load_safetensors(binary_header); }, {binary_header, "JSON"}),
      row<IOError>("header that is a JSON array", [&] { io::load_safetensors(json_array); },
                   {json_array, "not a JSON object"}),
      row<IOError>("non-integer offsets", [&] { io::load_safetensors(float_offsets); },
                   {float_offsets, "'a'", "data_offsets"}),
      row<IOError>("shape whose byte size overflows", [&] { io::load_safetensors(huge_shape); },
                   {huge_shape, "too large"}),
  };
  run_catalogue(rows);

  // A failed nn::load leaves the model as it was (all shapes are checked before any copy).
  auto target = mlp(4, 8, 5);
  const std::vector<double> before = values(target->named_parameters()[0].second);
  CHECK_THROWS_AS(nn::load(*target, good), ShapeError);
  CHECK(values(target->named_parameters()[0].second) == before);
}

TEST_CASE("bad-input catalogue: IDX files", "[errors][catalogue][io]") {
  TempDir dir("idx");
  auto put = [&](const std::string& name, const std::string& contents) {
    const std::string p = dir.file(name);
    write_bytes(p, contents);
    return p;
  };
  const std::string payload = random_bytes(2 * 3 * 4, 9);
  const std::string wrong_magic_bytes = put("magic01.idx", idx_header(0x08, {2, 3, 4}, 0x01, 0x00) + payload);
  const std::string float_type = put("f32.idx", idx_header(0x0D, {2, 3, 4}) + payload);
  const std::string images = put("images.idx", idx_header(0x08, {2, 3, 4}) + payload);
  const std::string zero_dims = put("zerodims.idx", idx_header(0x08, {}) + payload);
  const std::string short_header = put("shorthdr.idx", idx_header(0x08, {2, 3, 4}).substr(0, 9));
  const std::string short_magic = put("shortmagic.idx", std::string("\0\0", 2));
  const std::string short_data = put("shortdata.idx", idx_header(0x08, {2, 3, 4}) + payload.substr(0, 23));
  const std::string trailing = put("trailing.idx", idx_header(0x08, {2, 3, 4}) + payload + "x");
  const std::string overflow = put("overflow.idx", idx_header(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}) + payload);
  const std::string huge = put("huge.idx", idx_header(0x08, {0xFFFFFFFFu, 0x7FFFFFFFu}) + payload);
  const std::string not_gzip = put("badgz.idx.gz", std::string("\x1f\x8b", 2) + random_bytes(40, 4));
  const std::string missing = dir.file("missing.idx");
  std::vector<Row> rows = {
      row<IOError>("first magic bytes not zero", [&] { data::read_idx(wrong_magic_bytes); },
                   {"read_idx", wrong_magic_bytes, "magic"}),
      row<IOError>("float element type", [&] { data::read_idx(float_type); }, {"read_idx", float_type, "element type"}),
      row<IOError>("images read as labels (magic 2051, expected 2049)",
                   [&] { data::read_idx(images, data::kIdxLabelsMagic); }, {images, "wrong magic number", "2049"}),
      row<IOError>("header with 0 dims", [&] { data::read_idx(zero_dims); }, {zero_dims, "0 dims"}),
      row<IOError>("header cut inside the dims", [&] { data::read_idx(short_header); }, {short_header, "truncated header"}),
      row<IOError>("file of 2 bytes", [&] { data::read_idx(short_magic); }, {short_magic, "truncated header"}),
      row<IOError>("data one byte short", [&] { data::read_idx(short_data); }, {short_data, "truncated data"}),
      row<IOError>("one byte of trailing data", [&] { data::read_idx(trailing); }, {trailing, "does not match"}),
      row<IOError>("dims whose product overflows int64", [&] { data::read_idx(overflow); },
                   {overflow, "overflow a 64-bit element count"}),
      row<IOError>("dims of nearly 2^63 elements in a small file", [&] { data::read_idx(huge); }, {huge, "truncated data"}),
      row<IOError>("corrupt gzip stream", [&] { data::read_idx(not_gzip); }, {not_gzip, "gzip"}),
      row<IOError>("missing file", [&] { data::read_idx(missing); }, {missing, "cannot open"}),
      row<IOError>("a directory", [&] { data::read_idx(dir.path.string()); }, {"is a directory"}),
  };
  run_catalogue(rows);
}

// ================================ save atomicity =============================================

namespace {

/// Sets RLIMIT_FSIZE (and ignores SIGXFSZ, so an oversized write fails with EFBIG instead of
/// killing the process) for the scope; restores both.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    ok_ = ::getrlimit(RLIMIT_FSIZE, &old_) == 0;
    if (ok_) {
      rlimit lim = old_;
      lim.rlim_cur = bytes;
      ok_ = ::setrlimit(RLIMIT_FSIZE, &lim) == 0;
    }
  }
  ~FileSizeLimit() {
    if (ok_) ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  bool ok_ = false;
  void (*old_handler_)(int) = SIG_DFL;
};

}  // namespace

TEST_CASE("checkpoint save is atomic: a failed save keeps the old file and leaves no temporary",
          "[errors][catalogue][io][atomic]") {
  TempDir dir("atomic");
  const std::string path = dir.file("model.safetensors");
  manual_seed(11);
  auto model = mlp(4, 8, 3);
  nn::save(*model, path);
  const std::string old_bytes = read_bytes(path);
  REQUIRE(old_bytes.size() > 8);
  const std::vector<std::string> only_the_file = {"model.safetensors"};
  REQUIRE(dir.entries() == only_the_file);

  SECTION("a tensor that cannot be saved (undefined)") {
    CHECK_THROWS_AS(io::save_safetensors(path, {{"a", rnd({4})}, {"b", Tensor()}}), ValueError);
    CHECK_THROWS_WITH(io::save_safetensors(path, {{"a", rnd({4})}, {"b", Tensor()}}),
                      Contains(path) && Contains("'b'") && Contains("undefined"));
  }
  SECTION("a reserved tensor name") {
    CHECK_THROWS_AS(io::save_safetensors(path, {{"__metadata__", rnd({4})}}), ValueError);
  }
  SECTION("the disk fills up mid-write (RLIMIT_FSIZE of 4 KiB, 1 MiB of tensor data)") {
    const Tensor big = rnd({256, 1024});
    {
      FileSizeLimit limit(4096);
      REQUIRE(limit.ok());
      CHECK_THROWS_AS(io::save_safetensors(path, {{"big", big}}), IOError);
      CHECK_THROWS_WITH(io::save_safetensors(path, {{"big", big}}), Contains(path) && Contains("write failed"));
    }
    // The same save succeeds once the limit is gone (so the failure above was the limit).
    io::save_safetensors(path, {{"big", big}});
    CHECK(values(io::load_safetensors(path).at("big")) == values(big));
    CHECK(dir.entries() == only_the_file);
    return;  // the file was replaced on purpose; the checks below are for failed saves
  }
  SECTION("the directory is not writable") {
    if (::geteuid() == 0) {
      // Root writes through directory permissions (as in CI): block the temporary's name
      // instead with a non-empty directory (save_safetensors names it <path>.tmp<pid>).
      const fs::path blocker = path + ".tmp" + std::to_string(::getpid());
      fs::create_directories(blocker / "inside");
      CHECK_THROWS_AS(nn::save(*mlp(4, 8, 3), path), IOError);
      CHECK_THROWS_WITH(nn::save(*mlp(4, 8, 3), path), Contains(path) && Contains("temporary"));
      fs::remove_all(blocker);
      CHECK(read_bytes(path) == old_bytes);
      CHECK(dir.entries() == only_the_file);
      return;
    }
    fs::permissions(dir.path, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                    fs::perm_options::remove);
    CHECK_THROWS_AS(nn::save(*mlp(4, 8, 3), path), IOError);
    CHECK_THROWS_WITH(nn::save(*mlp(4, 8, 3), path), Contains(path) && Contains("temporary"));
    fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::add);
  }
  SECTION("the final name is a non-empty directory (rename fails)") {
    const std::string as_dir = dir.file("dir.safetensors");
    fs::create_directories(fs::path(as_dir) / "inside");
    CHECK_THROWS_AS(nn::save(*mlp(4, 8, 3), as_dir), IOError);
    CHECK_THROWS_WITH(nn::save(*mlp(4, 8, 3), as_dir), Contains(as_dir) && Contains("rename"));
    CHECK(fs::is_directory(fs::path(as_dir) / "inside"));
    fs::remove_all(as_dir);
  }
  // The old checkpoint is byte-identical and still loads; nothing else is in the directory.
  CHECK(read_bytes(path) == old_bytes);
  CHECK(dir.entries() == only_the_file);
  auto reloaded = mlp(4, 8, 3);
  nn::load(*reloaded, path);
  CHECK(values(reloaded->named_parameters()[0].second) == values(model->named_parameters()[0].second));
}

TEST_CASE("checkpoint save is atomic: a successful save replaces the file and leaves no temporary",
          "[errors][catalogue][io][atomic]") {
  TempDir dir("atomic_ok");
  const std::string path = dir.file("model.safetensors");
  manual_seed(12);
  auto first = mlp(4, 8, 3), second = mlp(4, 8, 3);
  nn::save(*first, path);
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  nn::save(*second, path);  // over an existing file
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  auto loaded = mlp(4, 8, 3);
  nn::load(*loaded, path);
  const auto lp = loaded->named_parameters(), sp = second->named_parameters();
  REQUIRE(lp.size() == sp.size());
  for (std::size_t i = 0; i < lp.size(); ++i) {
    INFO(lp[i].first);
    CHECK(values(lp[i].second) == values(sp[i].second));
  }
  io::save_safetensors(path, {{"x", arange(0, 6, 1).reshape({2, 3})}}, {{"note", "replaced"}});
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  io::Metadata meta;
  CHECK(values(io::load_safetensors(path, &meta).at("x")) == std::vector<double>{0, 1, 2, 3, 4, 5});
  CHECK(meta.at("note") == "replaced");
}
