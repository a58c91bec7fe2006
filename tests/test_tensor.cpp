// Core tensor tests: Device, dtypes and promotion, views (storage sharing checked through
// storage pointers and strides), copies and conversion, copy_ with overlap, from_blob,
// factories, Philox random streams (checked against an independent Philox4x32-10 and the
// Random123 known-answer vectors), item/data_ptr, negative dims and printing.
// Element values are read straight from storage with the tensor's strides, so the view
// checks do not depend on the library's own copy kernels.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <sstream>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <vector>

#include "tessera/ops.hpp"
#include "tessera/random.hpp"
#include "tessera/tensor.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using namespace tessera::testing;  // elem, for_each_index, values

namespace {

// 0, 1, 2, ... as float32 in the given shape (built without arange).
Tensor iota(const Shape& shape, DType dt = kFloat32) {
  std::vector<double> v(size_t(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i);
  return from_vector<double>(v, shape).to(dt);
}

std::vector<double> range_values(int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = double(i);
  return v;
}

bool same_storage(const Tensor& a, const Tensor& b) { return a.storage().get() == b.storage().get(); }

// Independent Philox4x32-10 in Random123's formulation (key bumped before rounds 2..10).
std::array<uint32_t, 4> ref_philox(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  auto round = [](std::array<uint32_t, 4>& ctr, const std::array<uint32_t, 2>& key) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * ctr[0];
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * ctr[2];
    ctr = {uint32_t(p1 >> 32) ^ ctr[1] ^ key[0], uint32_t(p1), uint32_t(p0 >> 32) ^ ctr[3] ^ key[1], uint32_t(p0)};
  };
  round(c, k);
  for (int r = 1; r < 10; ++r) {
    k[0] += 0x9E3779B9u;
    k[1] += 0xBB67AE85u;
    round(c, k);
  }
  return c;
}

}  // namespace

// ---- Device ------------------------------------------------------------------------------

TEST_CASE("core tensor: Device parses, prints and compares", "[core][tensor]") {
  CHECK(Device("cpu") == Device::cpu());
  CHECK(Device("cuda") == Device::cuda(0));
  CHECK(Device("cuda:1") == Device::cuda(1));
  CHECK(Device("cuda:12").index == 12);
  CHECK(Device("cuda:1").is_cuda());
  CHECK_FALSE(Device("cuda:1").is_cpu());
  CHECK(Device::cpu().str() == "cpu");
  CHECK(Device::cuda(3).str() == "cuda:3");
  CHECK(Device("cuda").str() == "cuda:0");
  std::ostringstream os;
  os << Device::cuda(2) << " " << Device::cpu();
  CHECK(os.str() == "cuda:2 cpu");
  CHECK(Device::cuda(0) != Device::cuda(1));
  CHECK(Device::cuda(0) != Device::cpu());
  for (const char* bad : {"gpu", "", "cuda:", "cuda:x", "cuda:-1", "cuda1", "CPU", "cuda:1:2", " cpu", "cuda:1 "}) {
    INFO("spec \"" << bad << "\"");
    CHECK_THROWS_AS(Device(bad), ValueError);
  }
  CHECK_THROWS_WITH(Device("gpu"), Contains("gpu"));
}

// ---- dtypes ------------------------------------------------------------------------------

TEST_CASE("core tensor: dtype sizes, names and promotion follow PyTorch", "[core][tensor]") {
  CHECK(itemsize(kBool) == 1);
  CHECK(itemsize(kUInt8) == 1);
  CHECK(itemsize(kInt32) == 4);
  CHECK(itemsize(kInt64) == 8);
  CHECK(itemsize(kFloat32) == 4);
  CHECK(itemsize(kFloat64) == 8);
  CHECK(std::string(dtype_name(kFloat32)) == "float32");
  CHECK(std::string(dtype_name(kInt64)) == "int64");
  CHECK(std::string(dtype_name(kBool)) == "bool");
  // torch.promote_types for the pairs.
  CHECK(promote_types(kInt32, kFloat32) == kFloat32);
  CHECK(promote_types(kInt64, kFloat32) == kFloat32);
  CHECK(promote_types(kFloat32, kFloat64) == kFloat64);
  CHECK(promote_types(kFloat64, kInt64) == kFloat64);
  CHECK(promote_types(kBool, kUInt8) == kUInt8);
  CHECK(promote_types(kUInt8, kInt32) == kInt32);
  CHECK(promote_types(kInt32, kInt64) == kInt64);
  CHECK(promote_types(kBool, kBool) == kBool);
  CHECK(promote_types(kBool, kFloat32) == kFloat32);
  CHECK(is_floating_point(kFloat32));
  CHECK_FALSE(is_floating_point(kInt64));
  CHECK(is_integral(kUInt8));
  CHECK_FALSE(is_integral(kBool));
  CHECK(is_integral(kBool, true));
  // Tensors carry them through ops.
  Tensor i = from_vector<int32_t>({1, 2, 3});
  Tensor f = from_vector<float>({0.5f, 0.5f, 0.5f});
  Tensor d = from_vector<double>({0.25, 0.25, 0.25});
  CHECK((i + f).dtype() == kFloat32);
  CHECK((f + d).dtype() == kFloat64);
  CHECK((i + i).dtype() == kInt32);
  CHECK(values(i + f) == std::vector<double>{1.5, 2.5, 3.5});
}

// ---- views -------------------------------------------------------------------------------

TEST_CASE("core tensor: view and reshape share storage and copy only when they must", "[core][tensor]") {
  Tensor x = iota({2, 3, 4});
  Tensor v = x.view({6, 4});
  CHECK(same_storage(v, x));
  CHECK(v.shape() == Shape{6, 4});
  CHECK(values(v) == range_values(24));
  CHECK(x.view({-1}).shape() == Shape{24});
  CHECK(x.view({4, -1}).shape() == Shape{4, 6});
  CHECK(x.view({2, 1, 12, 1}).shape() == Shape{2, 1, 12, 1});
  // A write through the view is seen by the base.
  v.select(0, 5).fill_(-1.0);
  CHECK(elem(x, {1, 2, 0}) == -1.0);
  CHECK(elem(x, {1, 2, 3}) == -1.0);
  CHECK(elem(x, {1, 1, 3}) == 19.0);

  // Narrowing the last dim leaves dims 0 and 1 mergeable: view must succeed without copying.
  Tensor y = iota({2, 3, 4});
  Tensor s = y.narrow(2, 1, 2);  // [2, 3, 2], strides [12, 4, 1]
  Tensor sv = s.view({6, 2});
  CHECK(same_storage(sv, y));
  CHECK(values(sv) == values(s));
  // ... but the last two dims cannot merge.
  CHECK_THROWS_AS(s.view({2, 6}), ShapeError);
  Tensor sr = s.reshape({2, 6});
  CHECK_FALSE(same_storage(sr, y));
  CHECK(values(sr) == values(s));
  CHECK(sr.is_contiguous());

  // Transposed: view impossible, reshape copies.
  Tensor t = y.transpose(0, 2);  // [4, 3, 2]
  CHECK_THROWS_AS(t.view({24}), ShapeError);
  Tensor tr = t.reshape({24});
  CHECK_FALSE(same_storage(tr, y));
  CHECK(values(tr) == values(t));
  // Contiguous reshape is a view.
  CHECK(same_storage(y.reshape({3, 8}), y));
  // Expanded: reshape of dims that stay broadcast is a view.
  Tensor e = iota({1, 4}).expand({3, 4});
  Tensor er = e.reshape({3, 2, 2});
  CHECK(values(er) == values(e));
  CHECK(same_storage(er, e));
  CHECK_THROWS_AS(e.view({12}), ShapeError);
  Tensor ef = e.reshape({12});
  CHECK_FALSE(same_storage(ef, e));
  CHECK(values(ef) == values(e));

  CHECK_THROWS_AS(x.view({5, 5}), ShapeError);
  CHECK_THROWS_AS(x.view({-1, -1}), ShapeError);
  CHECK_THROWS_AS(x.reshape({7, -1}), ShapeError);
  CHECK_THROWS_AS(x.view({-3, 8}), ShapeError);

  // 0-size and 0-dim.
  Tensor z = zeros({0, 3});
  CHECK(z.view({3, 0}).shape() == Shape{3, 0});
  CHECK(z.reshape({-1, 3}).shape() == Shape{0, 3});
  Tensor sc = scalar_tensor(7.0);
  CHECK(sc.view({1, 1}).shape() == Shape{1, 1});
  CHECK(sc.reshape({}).dim() == 0);
  CHECK(sc.view({-1}).shape() == Shape{1});
}

TEST_CASE("core tensor: permute, transpose and t() are strided views", "[core][tensor]") {
  Tensor x = iota({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});
  CHECK(same_storage(p, x));
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Strides{1, 12, 4});
  for_each_index(p.shape(), [&](const std::vector<int64_t>& i) { CHECK(elem(p, i) == elem(x, {i[1], i[2], i[0]})); });
  CHECK_FALSE(p.is_contiguous());
  CHECK(x.permute({-1, -3, -2}).shape() == Shape{4, 2, 3});
  CHECK_THROWS_AS(x.permute({0, 1}), ShapeError);
  CHECK_THROWS_AS(x.permute({0, 1, 1}), ShapeError);
  CHECK_THROWS_AS(x.permute({0, 1, 3}), IndexError);

  Tensor t = x.transpose(-1, 0);
  CHECK(t.shape() == Shape{4, 3, 2});
  for_each_index(t.shape(), [&](const std::vector<int64_t>& i) { CHECK(elem(t, i) == elem(x, {i[2], i[1], i[0]})); });
  CHECK(x.transpose(1, 1).strides() == x.strides());

  Tensor m = iota({3, 5});
  Tensor mt = m.t();
  CHECK(mt.shape() == Shape{5, 3});
  CHECK(elem(mt, {4, 2}) == elem(m, {2, 4}));
  CHECK(same_storage(mt, m));
  Tensor v = iota({5});
  CHECK(v.t().shape() == Shape{5});
  CHECK(scalar_tensor(1.0).t().dim() == 0);
  CHECK_THROWS_AS(x.t(), ShapeError);
}

TEST_CASE("core tensor: narrow, slice with step and select", "[core][tensor]") {
  Tensor x = iota({10});
  CHECK(values(x.slice(0, 1, 8, 3)) == std::vector<double>{1, 4, 7});
  CHECK(values(x.slice(0, 1, 9, 3)) == std::vector<double>{1, 4, 7});
  CHECK(values(x.slice(0, 1, 10, 3)) == std::vector<double>{1, 4, 7});
  CHECK(values(x.slice(0, 0, 10, 4)) == std::vector<double>{0, 4, 8});
  CHECK(values(x.slice(0, -3, 100)) == std::vector<double>{7, 8, 9});
  CHECK(values(x.slice(0, -100, 2)) == std::vector<double>{0, 1});
  CHECK(x.slice(0, 6, 3).numel() == 0);
  CHECK(x.slice(0, 20, 30).numel() == 0);
  CHECK(values(x.slice(0, 2, -2, 2)) == std::vector<double>{2, 4, 6});
  CHECK(same_storage(x.slice(0, 1, 8, 3), x));
  CHECK_THROWS_AS(x.slice(0, 0, 5, 0), ValueError);
  CHECK_THROWS_AS(x.slice(0, 0, 5, -1), ValueError);
  CHECK_THROWS_AS(x.slice(1, 0, 5), IndexError);

  Tensor m = iota({4, 6});
  Tensor s = m.slice(1, 1, 6, 2).slice(0, 1, 4, 2);  // rows 1,3; cols 1,3,5
  CHECK(s.shape() == Shape{2, 3});
  CHECK(values(s) == std::vector<double>{7, 9, 11, 19, 21, 23});
  CHECK(same_storage(s, m));
  // A slice of a slice with steps composes.
  Tensor ss = iota({20}).slice(0, 1, 20, 2).slice(0, 1, 10, 3);  // elements 3, 9, 15
  CHECK(values(ss) == std::vector<double>{3, 9, 15});

  CHECK(values(m.narrow(1, 2, 3).select(0, 1)) == std::vector<double>{8, 9, 10});
  CHECK(values(m.narrow(-1, -2, 2).select(0, 0)) == std::vector<double>{4, 5});
  CHECK(m.narrow(0, 4, 0).shape() == Shape{0, 6});
  CHECK_THROWS_AS(m.narrow(1, 4, 3), IndexError);
  CHECK_THROWS_AS(m.narrow(1, 0, -1), IndexError);
  CHECK_THROWS_AS(m.narrow(2, 0, 1), IndexError);

  Tensor r = m.select(1, -1);
  CHECK(r.shape() == Shape{4});
  CHECK(values(r) == std::vector<double>{5, 11, 17, 23});
  CHECK(values(m[2]) == std::vector<double>{12, 13, 14, 15, 16, 17});
  CHECK(m.select(0, 0).select(0, 0).dim() == 0);
  CHECK(elem(m.select(0, 3).select(0, 5), {}) == 23);
  CHECK_THROWS_AS(m.select(0, 4), IndexError);
  CHECK_THROWS_AS(m.select(0, -5), IndexError);
  CHECK_THROWS_AS(m.select(2, 0), IndexError);
}

TEST_CASE("core tensor: squeeze, unsqueeze, expand and flatten", "[core][tensor]") {
  Tensor x = iota({1, 3, 1, 2});
  CHECK(x.squeeze().shape() == Shape{3, 2});
  CHECK(x.squeeze(0).shape() == Shape{3, 1, 2});
  CHECK(x.squeeze(-2).shape() == Shape{1, 3, 2});
  CHECK(x.squeeze(1).shape() == Shape{1, 3, 1, 2});
  CHECK(same_storage(x.squeeze(), x));
  CHECK(ones({1, 1}).squeeze().dim() == 0);
  CHECK_THROWS_AS(x.squeeze(4), IndexError);

  Tensor v = iota({3, 4});
  CHECK(v.unsqueeze(0).shape() == Shape{1, 3, 4});
  CHECK(v.unsqueeze(1).shape() == Shape{3, 1, 4});
  CHECK(v.unsqueeze(2).shape() == Shape{3, 4, 1});
  CHECK(v.unsqueeze(-1).shape() == Shape{3, 4, 1});
  CHECK(v.unsqueeze(-3).shape() == Shape{1, 3, 4});
  CHECK_THROWS_AS(v.unsqueeze(3), IndexError);
  CHECK_THROWS_AS(v.unsqueeze(-4), IndexError);
  // unsqueeze of a transposed view keeps sharing and values.
  Tensor tu = v.t().unsqueeze(1);
  CHECK(same_storage(tu, v));
  CHECK(elem(tu, {3, 0, 2}) == elem(v, {2, 3}));
  CHECK(scalar_tensor(2.0).unsqueeze(0).shape() == Shape{1});

  Tensor c = iota({3, 1});
  Tensor e = c.expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides()[0] == 0);
  CHECK(e.strides()[2] == 0);
  CHECK(same_storage(e, c));
  for_each_index(e.shape(), [&](const std::vector<int64_t>& i) { CHECK(elem(e, i) == double(i[1])); });
  CHECK(c.expand({-1, 5}).shape() == Shape{3, 5});
  CHECK(c.expand({3, 0}).shape() == Shape{3, 0});
  CHECK_THROWS_AS(c.expand({4, 4}), ShapeError);
  CHECK_THROWS_AS(c.expand({4}), ShapeError);
  CHECK_THROWS_AS(c.expand({-1, 3, 4}), ShapeError);
  CHECK_THROWS_AS(c.expand({3, -2}), ShapeError);  // PyTorch: negative sizes other than -1 are errors

  Tensor f = iota({2, 3, 4});
  CHECK(f.flatten().shape() == Shape{24});
  CHECK(f.flatten(1).shape() == Shape{2, 12});
  CHECK(f.flatten(0, 1).shape() == Shape{6, 4});
  CHECK(f.flatten(-2, -1).shape() == Shape{2, 12});
  CHECK(f.flatten(1, 1).shape() == Shape{2, 3, 4});
  CHECK(same_storage(f.flatten(), f));
  Tensor ft = f.transpose(0, 2).flatten();
  CHECK(values(ft) == values(f.transpose(0, 2)));
  CHECK(scalar_tensor(3.0).flatten().shape() == Shape{1});
  CHECK_THROWS_AS(f.flatten(2, 1), Error);
  CHECK_THROWS_AS(f.flatten(0, 3), IndexError);
}

// ---- copies and conversion ---------------------------------------------------------------

TEST_CASE("core tensor: contiguous, clone and to(dtype)", "[core][tensor]") {
  Tensor x = iota({3, 4});
  CHECK(x.is_contiguous());
  CHECK(x.contiguous().is_same(x));
  Tensor t = x.t();
  CHECK_FALSE(t.is_contiguous());
  Tensor tc = t.contiguous();
  CHECK(tc.is_contiguous());
  CHECK(tc.strides() == Strides{3, 1});
  CHECK(values(tc) == values(t));
  CHECK_FALSE(same_storage(tc, x));
  // Size-1 dims with any stride still count as contiguous; a sliced-with-step row does not.
  CHECK(x.narrow(0, 1, 1).is_contiguous());
  CHECK_FALSE(x.slice(1, 0, 4, 2).is_contiguous());
  Tensor sc = x.slice(1, 0, 4, 2).contiguous();
  CHECK(values(sc) == std::vector<double>{0, 2, 4, 6, 8, 10});

  // fill_ on strided views writes exactly the viewed elements.
  Tensor fx = zeros({3, 4});
  fx.slice(1, 0, 4, 2).fill_(7.0);
  fx.t().select(0, 1).fill_(2.0);
  CHECK(values(fx) == std::vector<double>{7, 2, 7, 0, 7, 2, 7, 0, 7, 2, 7, 0});
  fx.zero_();
  CHECK(values(fx) == std::vector<double>(12, 0.0));

  Tensor cl = x.clone();
  CHECK_FALSE(same_storage(cl, x));
  CHECK(values(cl) == values(x));
  cl.fill_(5.0);
  CHECK(elem(x, {0, 1}) == 1.0);
  Tensor ct = t.clone();
  CHECK(values(ct) == values(t));
  CHECK(ct.is_contiguous());

  Tensor f = from_vector<double>({2.7, -2.7, 0.0, 0.5, -0.5, 100.25}, {6});
  CHECK(values(f.to(kInt64)) == std::vector<double>{2, -2, 0, 0, 0, 100});
  CHECK(values(f.to(kInt32)) == std::vector<double>{2, -2, 0, 0, 0, 100});
  CHECK(values(f.to(kBool)) == std::vector<double>{1, 1, 0, 1, 1, 1});
  CHECK(values(f.to(kFloat32)) == std::vector<double>{double(2.7f), double(-2.7f), 0.0, 0.5, -0.5, 100.25});
  CHECK(f.to(kFloat32).dtype() == kFloat32);
  // to() of a strided view converts in logical order.
  Tensor ti = t.to(kInt64);
  CHECK(ti.shape() == Shape{4, 3});
  CHECK(values(ti) == values(t));
  // int64 -> float64 is exact below 2^53; 2^40 + 1 survives.
  Tensor big = from_vector<int64_t>({(int64_t(1) << 40) + 1});
  CHECK(elem(big.to(kFloat64), {0}) == double((int64_t(1) << 40) + 1));
  Tensor u = from_vector<uint8_t>({0, 200, 255});
  CHECK(values(u.to(kInt32)) == std::vector<double>{0, 200, 255});
  // Floating point -> uint8 goes through int64 (PyTorch's rule): negative values wrap, the
  // same on CUDA (whose direct conversion saturates to 0).
  CHECK(values(from_vector<float>({-34.7f, -1.f, 255.9f, 3.2f}).to(kUInt8)) == std::vector<double>{222, 255, 255, 3});
  CHECK(values(from_vector<double>({-34.7}).to(kUInt8)) == std::vector<double>{222});
  // Same dtype and device: PyTorch returns the same tensor.
  CHECK(same_storage(x.to(kFloat32), x));
  CHECK(same_storage(x.to(Device::cpu()), x));
}

TEST_CASE("core tensor: copy_ broadcasts, casts and handles overlapping views", "[core][tensor]") {
  Tensor dst = zeros({2, 3});
  dst.copy_(from_vector<double>({1.5, 2.5, 3.5}));
  CHECK(dst.dtype() == kFloat32);
  CHECK(values(dst) == std::vector<double>{1.5, 2.5, 3.5, 1.5, 2.5, 3.5});
  // Into a transposed view writes through to the base.
  Tensor base = zeros({3, 2});
  base.t().copy_(iota({2, 3}));
  CHECK(values(base) == std::vector<double>{0, 3, 1, 4, 2, 5});
  // Cast on copy into an int tensor.
  Tensor di = zeros({3}, kInt64);
  di.copy_(from_vector<float>({1.9f, -1.9f, 7.0f}));
  CHECK(values(di) == std::vector<double>{1, -1, 7});
  CHECK_THROWS_AS(zeros({2, 3}).copy_(zeros({4})), ShapeError);

  // Overlapping shift right: x[1:] = x[:-1] must give the result of copying from a snapshot
  // (or throw); element-by-element forward copying would smear x[0] everywhere.
  SECTION("shift right") {
    Tensor x = iota({10});
    bool threw = false;
    try {
      x.slice(0, 1, 10).copy_(x.slice(0, 0, 9));
    } catch (const Error&) {
      threw = true;
    }
    if (!threw) CHECK(values(x) == std::vector<double>{0, 0, 1, 2, 3, 4, 5, 6, 7, 8});
  }
  SECTION("shift left") {
    Tensor x = iota({10});
    bool threw = false;
    try {
      x.slice(0, 0, 9).copy_(x.slice(0, 1, 10));
    } catch (const Error&) {
      threw = true;
    }
    if (!threw) CHECK(values(x) == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 9});
  }
  SECTION("in-place transpose of a square matrix") {
    Tensor m = iota({3, 3});
    bool threw = false;
    try {
      m.copy_(m.t());
    } catch (const Error&) {
      threw = true;
    }
    if (!threw) CHECK(values(m) == std::vector<double>{0, 3, 6, 1, 4, 7, 2, 5, 8});
  }
  SECTION("large overlapping shift (parallel copy path)") {
    const int64_t n = 3'000'001;
    Tensor x = iota({n}, kFloat64);
    bool threw = false;
    try {
      x.slice(0, 1, n).copy_(x.slice(0, 0, n - 1));
    } catch (const Error&) {
      threw = true;
    }
    if (!threw) {
      const double* p = x.data_ptr<double>();
      bool ok = p[0] == 0;
      for (int64_t i = 1; i < n && ok; ++i) ok = p[i] == double(i - 1);
      CHECK(ok);
    }
  }
  SECTION("copy onto itself is a no-op") {
    Tensor x = iota({4});
    x.copy_(x);
    CHECK(values(x) == std::vector<double>{0, 1, 2, 3});
  }
  SECTION("into an expanded destination is refused") {
    Tensor e = zeros({1, 3}).expand({4, 3});
    CHECK_THROWS_AS(e.copy_(ones({4, 3})), ValueError);
  }
  SECTION("0-size copies") {
    Tensor z = zeros({0, 3});
    z.copy_(ones({0, 3}));
    z.copy_(ones({3}));
    CHECK(z.numel() == 0);
  }
}

TEST_CASE("core tensor: from_blob wraps caller memory without copying or freeing it", "[core][tensor]") {
  std::vector<float> buf = {1, 2, 3, 4, 5, 6};
  {
    Tensor t = from_blob(buf.data(), {2, 3}, kFloat32);
    CHECK(t.data_ptr<float>() == buf.data());
    CHECK(t.raw_data() == static_cast<void*>(buf.data()));
    CHECK(values(t) == std::vector<double>{1, 2, 3, 4, 5, 6});
    buf[4] = 50;
    CHECK(elem(t, {1, 1}) == 50);
    t.select(0, 0).fill_(-1.0);  // writes land in buf
    Tensor view = t.t();
    Tensor cl = t.clone();
    CHECK(cl.data_ptr<float>() != buf.data());
    buf[5] = 60;
    CHECK(elem(cl, {1, 2}) == 6);
    CHECK(elem(view, {2, 1}) == 60);
  }
  // The tensors are gone; the buffer is untouched by their destruction and still ours.
  CHECK(buf == std::vector<float>{-1, -1, -1, 4, 50, 60});

  // Custom strides: a column-major 2x3 view of the same 6 numbers.
  std::vector<double> cm = {1, 4, 2, 5, 3, 6};
  Tensor c = from_blob(cm.data(), {2, 3}, kFloat64, Device::cpu(), {1, 2});
  CHECK(values(c) == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK_FALSE(c.is_contiguous());
  CHECK(values(c.contiguous()) == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(values(c + 0.0) == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK_THROWS_AS(from_blob(cm.data(), {2, 3}, kFloat64, Device::cpu(), {1}), ShapeError);
  CHECK_THROWS_AS(from_blob(nullptr, {2}, kFloat64), ValueError);
  CHECK(from_blob(nullptr, {0}, kFloat64).numel() == 0);
}

// ---- factories ---------------------------------------------------------------------------

TEST_CASE("core tensor: empty/zeros/ones/full/scalar_tensor and *_like", "[core][tensor]") {
  for (DType dt : {kBool, kUInt8, kInt32, kInt64, kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    Tensor z = zeros({2, 3}, dt);
    CHECK(z.dtype() == dt);
    CHECK(z.shape() == Shape{2, 3});
    CHECK(z.is_contiguous());
    CHECK(values(z) == std::vector<double>(6, 0.0));
    CHECK(values(ones({4}, dt)) == std::vector<double>(4, 1.0));
    CHECK(values(full({2}, 1.0, dt)) == std::vector<double>(2, 1.0));
    CHECK(empty({3, 0}, dt).numel() == 0);
  }
  CHECK(values(full({3}, -2.5, kFloat64)) == std::vector<double>(3, -2.5));
  CHECK(values(full({3}, 7.0, kInt64)) == std::vector<double>(3, 7.0));
  Tensor s = scalar_tensor(4.5, kFloat64);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item<double>() == 4.5);
  CHECK(zeros({}).dim() == 0);
  Tensor x = full({2, 2}, 3.0, kInt32);
  CHECK(zeros_like(x).dtype() == kInt32);
  CHECK(values(ones_like(x)) == std::vector<double>(4, 1));
  CHECK(values(full_like(x, 9)) == std::vector<double>(4, 9));
  CHECK(empty_like(x).shape() == Shape{2, 2});
  CHECK_THROWS_AS(empty({2, -1}), ValueError);
  CHECK_THROWS_AS(zeros({-3}), ValueError);
  CHECK_THROWS_AS(from_vector<float>({1, 2, 3}, {2, 2}), ShapeError);
  CHECK(values(from_vector<int32_t>({1, 2, 3, 4}, {2, 2}, TensorOptions(kFloat64))) ==
        std::vector<double>{1, 2, 3, 4});
  CHECK(from_vector<int32_t>({1, 2, 3, 4}, {2, 2}, TensorOptions(kFloat64)).dtype() == kFloat64);
  CHECK(values(from_vector<bool>({true, false, true})) == std::vector<double>{1, 0, 1});
  Tensor rg = zeros({2}, TensorOptions(kFloat32).with_requires_grad());
  CHECK(rg.requires_grad());
  CHECK(rg.is_leaf());
}

TEST_CASE("core tensor: arange values and dtype rules", "[core][tensor]") {
  Tensor a = arange(5);
  CHECK(a.dtype() == kInt64);
  CHECK(values(a) == std::vector<double>{0, 1, 2, 3, 4});
  CHECK(values(arange(2, 11, 3)) == std::vector<double>{2, 5, 8});
  CHECK(values(arange(10, 0, -3)) == std::vector<double>{10, 7, 4, 1});
  CHECK(arange(3, 3).numel() == 0);
  CHECK(values(arange(0, 1, 0.25, kFloat32)) == std::vector<double>{0, 0.25, 0.5, 0.75});
  CHECK(arange(0, 1, 0.1, kFloat64).numel() == 10);  // torch.arange(0, 1, 0.1) has 10 elements
  CHECK(arange(-1.5, 1.5, 0.5, kFloat64).numel() == 6);
  CHECK(values(arange(0.5, 3, 1, kFloat64)) == std::vector<double>{0.5, 1.5, 2.5});
  CHECK_THROWS_AS(arange(0, 5, 0), ValueError);
  CHECK_THROWS_AS(arange(0, 5, -1), ValueError);
  CHECK_THROWS_AS(arange(5, 0, 1), ValueError);

  // "dtype defaults to int64 when all are integers": non-integral arguments must not be
  // truncated to int64 (torch.arange(0, 1, 0.25) is float32 [0, .25, .5, .75]).
  Tensor fr = arange(0.0, 1.0, 0.25);
  CHECK(fr.numel() == 4);
  CHECK(is_floating_point(fr.dtype()));
  CHECK(values(fr) == std::vector<double>{0, 0.25, 0.5, 0.75});
  Tensor fe = arange(2.5);
  CHECK(is_floating_point(fe.dtype()));
  CHECK(values(fe) == std::vector<double>{0, 1, 2});
}

// ---- random ------------------------------------------------------------------------------

TEST_CASE("core tensor: Philox4x32-10 matches the Random123 known answers and an independent implementation",
          "[core][tensor][random]") {
  // Random123 kat_vectors: philox4x32 10 (ctr, key) -> out.
  auto k0 = philox4x32_10(0, 0, 0, 0, 0, 0);
  CHECK(k0.v[0] == 0x6627e8d5u);
  CHECK(k0.v[1] == 0xe169c58du);
  CHECK(k0.v[2] == 0xbc57ac4cu);
  CHECK(k0.v[3] == 0x9b00dbd8u);
  auto k1 = philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  CHECK(k1.v[0] == 0x408f276du);
  CHECK(k1.v[1] == 0x41c83b0eu);
  CHECK(k1.v[2] == 0xa20bc7c6u);
  CHECK(k1.v[3] == 0x6d5451fdu);
  auto k2 = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  CHECK(k2.v[0] == 0xd16cfe09u);
  CHECK(k2.v[1] == 0x94fdccebu);
  CHECK(k2.v[2] == 0x5001e420u);
  CHECK(k2.v[3] == 0x24126ea1u);
  std::mt19937 gen(7);
  for (int i = 0; i < 200; ++i) {
    std::array<uint32_t, 4> c = {uint32_t(gen()), uint32_t(gen()), uint32_t(gen()), uint32_t(gen())};
    std::array<uint32_t, 2> k = {uint32_t(gen()), uint32_t(gen())};
    auto r = ref_philox(c, k);
    auto t = philox4x32_10(c[0], c[1], c[2], c[3], k[0], k[1]);
    CHECK(r == std::array<uint32_t, 4>{t.v[0], t.v[1], t.v[2], t.v[3]});
  }
  // philox_block: 64-bit counter + offset split into words 0 and 1, key = seed.
  const uint64_t seed = 0x0123456789abcdefULL;
  auto b = philox_block(seed, 5, (uint64_t(1) << 32) + 2);
  auto rb = ref_philox({7u, 1u, 0u, 0u}, {uint32_t(seed), uint32_t(seed >> 32)});
  CHECK(std::array<uint32_t, 4>{b.v[0], b.v[1], b.v[2], b.v[3]} == rb);
  CHECK(uint_to_unit_float(0xffffffffu) < 1.0f);
  CHECK(uint_to_unit_float(0) == 0.0f);
  CHECK(uint2_to_unit_double(0xffffffffu, 0xffffffffu) < 1.0);
}

TEST_CASE("core tensor: rand/randn/randint follow the documented Philox stream", "[core][tensor][random]") {
  // backend.hpp: "element i from Philox block (seed, offset + i)"; float32 uniform from word 0
  // (24 bits), float64 from words 0-1 (53 bits); the generator's offset advances per draw.
  const uint64_t seed = 20240601;
  manual_seed(seed);
  CHECK(default_generator().seed() == seed);
  CHECK(default_generator().offset() == 0);
  Tensor u = rand({9});
  const uint64_t off1 = default_generator().offset();
  CHECK(off1 >= 3);  // at least ceil(9/4) counters consumed: the next draw must not reuse them
  for (int64_t i = 0; i < 9; ++i) {
    auto blk = ref_philox({uint32_t(i), 0u, 0u, 0u}, {uint32_t(seed), uint32_t(seed >> 32)});
    INFO("element " << i);
    CHECK(elem(u, {i}) == double(float(blk[0] >> 8) * (1.0f / 16777216.0f)));
  }
  Tensor d = rand({5}, kFloat64);
  for (int64_t i = 0; i < 5; ++i) {
    auto blk = ref_philox({uint32_t(off1 + uint64_t(i)), 0u, 0u, 0u}, {uint32_t(seed), uint32_t(seed >> 32)});
    const double expect = double(((uint64_t(blk[0]) << 32) | blk[1]) >> 11) / 9007199254740992.0;
    INFO("element " << i);
    CHECK(elem(d, {i}) == expect);
  }
  const uint64_t off2 = default_generator().offset();
  CHECK(off2 > off1);
  // randn: Box-Muller on words (0,1) and (2,3).
  Tensor n = randn({6}, kFloat64);
  for (int64_t i = 0; i < 6; ++i) {
    auto blk = ref_philox({uint32_t(off2 + uint64_t(i)), 0u, 0u, 0u}, {uint32_t(seed), uint32_t(seed >> 32)});
    const double u1 = double(((uint64_t(blk[0]) << 32) | blk[1]) >> 11) / 9007199254740992.0;
    const double u2 = double(((uint64_t(blk[2]) << 32) | blk[3]) >> 11) / 9007199254740992.0;
    const double z = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * M_PI * u2);
    INFO("element " << i);
    CHECK(elem(n, {i}) == Approx(z).epsilon(1e-14));
  }
}

TEST_CASE("core tensor: random streams are reproducible, distinct and well distributed", "[core][tensor][random]") {
  manual_seed(42);
  Tensor a = rand({1000});
  Tensor a2 = rand({1000});
  manual_seed(42);
  Tensor b = rand({1000});
  CHECK(values(a) == values(b));
  CHECK(values(a) != values(a2));
  manual_seed(43);
  CHECK(values(rand({1000})) != values(a));
  // Draws of different shapes from the same state are prefixes of one stream.
  manual_seed(42);
  Tensor p = rand({2, 5});
  std::vector<double> av = values(a);
  CHECK(values(p) == std::vector<double>(av.begin(), av.begin() + 10));

  manual_seed(1);
  const int64_t N = 200000;
  std::vector<double> uv = values(rand({N}));
  double mean = 0, m2 = 0;
  for (double v : uv) {
    CHECK_FALSE((v < 0.0 || v >= 1.0));
    mean += v;
  }
  mean /= double(N);
  for (double v : uv) m2 += (v - mean) * (v - mean);
  m2 /= double(N);
  CHECK(std::fabs(mean - 0.5) < 5 * std::sqrt(1.0 / 12.0 / double(N)));
  CHECK(std::fabs(m2 - 1.0 / 12.0) < 0.002);

  std::vector<double> nv = values(randn({N}, kFloat64));
  double nm = 0, nvar = 0;
  for (double v : nv) nm += v;
  nm /= double(N);
  for (double v : nv) nvar += (v - nm) * (v - nm);
  nvar /= double(N);
  CHECK(std::fabs(nm) < 5.0 / std::sqrt(double(N)));
  CHECK(std::fabs(nvar - 1.0) < 0.02);
  Tensor nf = randn({10}, kFloat32);
  CHECK(nf.dtype() == kFloat32);

  Tensor ri = randint(-3, 4, {20000});
  CHECK(ri.dtype() == kInt64);
  std::set<double> seen;
  for (double v : values(ri)) {
    CHECK_FALSE((v < -3 || v > 3 || v != std::floor(v)));
    seen.insert(v);
  }
  CHECK(seen.size() == 7);
  CHECK(randint(0, 10, {4}, kInt32).dtype() == kInt32);
  CHECK_THROWS_AS(randint(5, 5, {3}), ValueError);
  CHECK_THROWS_AS(rand({3}, kInt64), DTypeError);
  CHECK_THROWS_AS(randn({3}, kInt32), DTypeError);

  Tensor un = uniform({5000}, -2.0, 3.0, kFloat64);
  for (double v : values(un)) CHECK_FALSE((v < -2.0 || v >= 3.0));
  CHECK(rand({0, 3}).numel() == 0);
}

TEST_CASE("core tensor: uniform float32 never returns the upper bound", "[core][tensor][random]") {
  // With seed 11, element 858091 of the first draw uses a Philox word whose top 24 bits are all
  // ones, i.e. u = 1 - 2^-24, the largest unit float. 1 + u rounds to 2.0f in float32, so
  // uniform(1, 2) must compute in a way that keeps the result < high (documented [low, high)).
  const uint64_t seed = 11;
  const int64_t i = 858091;
  REQUIRE((philox_block(seed, 0, uint64_t(i)).v[0] >> 8) == 0xFFFFFFu);
  manual_seed(seed);
  Tensor u = uniform({i + 1}, 1.0, 2.0, kFloat32);
  const float v = u.data_ptr<float>()[i];
  CHECK(v < 2.0f);
  CHECK(v >= 1.0f);
  manual_seed(seed);
  Tensor r = rand({i + 1});
  CHECK(r.data_ptr<float>()[i] < 1.0f);
  CHECK(r.data_ptr<float>()[i] == 1.0f - 1.0f / 16777216.0f);
}

// ---- metadata, item, data_ptr --------------------------------------------------------------

TEST_CASE("core tensor: item and data_ptr check dtype and numel", "[core][tensor]") {
  Tensor f = from_vector<float>({2.75f});
  CHECK(f.item<float>() == 2.75f);
  CHECK(f.item<double>() == 2.75);
  CHECK(f.item<int64_t>() == 2);  // converted like a C++ cast
  CHECK(f.reshape({}).item<float>() == 2.75f);
  CHECK(from_vector<int64_t>({-7}).item<int64_t>() == -7);
  CHECK(from_vector<bool>({true}).item<bool>());
  CHECK_THROWS_AS(zeros({2}).item<float>(), ShapeError);
  CHECK_THROWS_AS(zeros({0}).item<float>(), ShapeError);
  // item of a strided single element reads the right one.
  Tensor m = iota({3, 3});
  CHECK(m.select(0, 2).select(0, 1).item<float>() == 7.0f);
  CHECK(m.t().slice(0, 1, 2).slice(1, 2, 3).item<double>() == 7.0);

  CHECK(f.data_ptr<float>() != nullptr);
  CHECK_THROWS_AS(f.data_ptr<double>(), DTypeError);
  CHECK_THROWS_AS(f.data_ptr<int32_t>(), DTypeError);
  CHECK_THROWS_AS(from_vector<int64_t>({1}).data_ptr<int32_t>(), DTypeError);
  CHECK_THROWS_AS(from_vector<uint8_t>({1}).data_ptr<bool>(), DTypeError);
  // data_ptr of a view points at its first element.
  Tensor v = iota({10});
  CHECK(v.slice(0, 3, 10).data_ptr<float>() == v.data_ptr<float>() + 3);
  CHECK(*v.slice(0, 3, 10).data_ptr<float>() == 3.0f);
}

TEST_CASE("core tensor: numel, dim, size and stride with negative dims", "[core][tensor]") {
  Tensor x = zeros({2, 3, 4});
  CHECK(x.numel() == 24);
  CHECK(x.dim() == 3);
  CHECK(x.ndim() == 3);
  CHECK(x.size(-1) == 4);
  CHECK(x.size(-3) == 2);
  CHECK(x.stride(-1) == 1);
  CHECK(x.stride(0) == 12);
  CHECK(x.nbytes() == 96);
  CHECK_THROWS_AS(x.size(3), IndexError);
  CHECK_THROWS_AS(x.size(-4), IndexError);
  CHECK_THROWS_AS(x.stride(3), IndexError);
  Tensor s = scalar_tensor(1.0);
  CHECK(s.numel() == 1);
  CHECK(s.dim() == 0);
  CHECK(zeros({3, 0, 2}).numel() == 0);
  CHECK(wrap_dim(-1, 3) == 2);
  CHECK(wrap_dim(0, 0) == 0);
  CHECK(wrap_dim(-1, 0) == 0);
  CHECK_THROWS_AS(wrap_dim(1, 0), IndexError);
  CHECK(shape_str({2, 3}) == "[2, 3]");
  CHECK(shape_str({}) == "[]");
  CHECK(contiguous_strides({2, 3, 4}) == Strides{12, 4, 1});
  CHECK(broadcast_shapes({2, 1, 4}, {3, 1}) == Shape{2, 3, 4});
  CHECK(broadcast_shapes({0, 1}, {1, 5}) == Shape{0, 5});
  CHECK(broadcast_shapes({}, {2}) == Shape{2});
  CHECK_THROWS_AS(broadcast_shapes({2}, {3}), ShapeError);
  CHECK_THROWS_AS(broadcast_shapes({0}, {2}), ShapeError);
  CHECK_THROWS_AS(shape_numel({int64_t(1) << 40, int64_t(1) << 40}), ValueError);
  Tensor undefined;
  CHECK_FALSE(undefined.defined());
  CHECK_THROWS_AS(undefined.shape(), ValueError);
}

// ---- printing ----------------------------------------------------------------------------

TEST_CASE("core tensor: printing shows values, shape, dtype and device with ellipsis", "[core][tensor]") {
  Tensor f = from_vector<float>({1.5f, -2.25f, 3.0f, 4.125f}, {2, 2});
  const std::string s = f.str();
  CHECK_THAT(s, Contains("tensor("));
  CHECK_THAT(s, Contains("1.5000"));
  CHECK_THAT(s, Contains("-2.2500"));
  CHECK_THAT(s, Contains("4.1250"));
  CHECK_THAT(s, Contains("[2, 2]"));
  CHECK_THAT(s, Contains("float32"));
  CHECK_THAT(s, Contains("cpu"));
  std::ostringstream os;
  os << f;
  CHECK(os.str() == s);

  const std::string si = from_vector<int64_t>({3, -40, 500}).str();
  CHECK_THAT(si, Contains("3"));
  CHECK_THAT(si, Contains("-40"));
  CHECK_THAT(si, Contains("500"));
  CHECK_THAT(si, Contains("int64"));
  CHECK_THAT(from_vector<bool>({true, false}).str(), Contains("True"));
  CHECK_THAT(from_vector<bool>({true, false}).str(), Contains("False"));
  CHECK_THAT(scalar_tensor(2.5, kFloat64).str(), Contains("2.5000"));
  CHECK_THAT(from_vector<double>({NAN, INFINITY, -INFINITY}).str(), Contains("nan"));
  CHECK_THAT(from_vector<double>({NAN, INFINITY, -INFINITY}).str(), Contains("-inf"));
  // A strided view prints its logical values.
  CHECK_THAT(iota({2, 3}, kInt64).t().str(), Contains("[[0, 3]"));

  // Up to 1000 elements: everything, no ellipsis.
  const std::string small = arange(1000).str();
  CHECK_THAT(small, Contains("999"));
  CHECK_THAT(small, Contains(" 500,"));
  CHECK(small.find("...") == std::string::npos);
  // Beyond: the first and last three, an ellipsis, none of the middle.
  const std::string big = arange(2000).str();
  CHECK_THAT(big, Contains("..."));
  CHECK_THAT(big, Contains("1999"));
  CHECK_THAT(big, Contains("1997"));
  CHECK(big.find("1000") == std::string::npos);
  CHECK(big.find("1996") == std::string::npos);
  CHECK(big.size() < 200);
  const std::string mat = arange(0, 1600, 1, kInt64).reshape({40, 40}).str();
  CHECK_THAT(mat, Contains("..."));
  CHECK_THAT(mat, Contains("1599"));
  CHECK(mat.find("800") == std::string::npos);
  CHECK(mat.size() < 600);
  CHECK_THAT(zeros({0, 2}).str(), Contains("[0, 2]"));
}
