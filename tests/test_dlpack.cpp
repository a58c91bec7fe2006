// DLPack export/import against DLManagedTensors made here by hand (the libtorch peer test is
// tests/peers/test_dlpack_libtorch.cpp).
#include <dlpack/dlpack.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "tensor_testing.hpp"
#include "tessera/interop/dlpack.hpp"
#include "tessera/ops.hpp"

using namespace tessera;
using tessera::testing::values;
using Catch::Matchers::Contains;

namespace {

// A producer's tensor: owns its buffer and arrays, counts deleter calls.
struct Produced {
  std::vector<float> buffer;
  std::vector<int64_t> shape, strides;
  DLManagedTensor managed{};
  int* deletes = nullptr;
};

DLManagedTensor* produce(std::vector<float> buffer, std::vector<int64_t> shape, std::vector<int64_t> strides,
                         uint64_t byte_offset, int* deletes) {
  auto* p = new Produced{std::move(buffer), std::move(shape), std::move(strides), {}, deletes};
  DLTensor& d = p->managed.dl_tensor;
  d.data = p->buffer.data();
  d.device = {kDLCPU, 0};
  d.ndim = int(p->shape.size());
  d.dtype = {kDLFloat, 32, 1};
  d.shape = p->shape.data();
  d.strides = p->strides.empty() ? nullptr : p->strides.data();
  d.byte_offset = byte_offset;
  p->managed.manager_ctx = p;
  p->managed.deleter = [](DLManagedTensor* self) {
    auto* q = static_cast<Produced*>(self->manager_ctx);
    ++*q->deletes;
    delete q;
  };
  return &p->managed;
}

}  // namespace

TEST_CASE("dlpack: to_dlpack describes the tensor's own memory; the deleter keeps it alive", "[interop][dlpack]") {
  Tensor base = randn({3, 5}, kFloat64);
  Tensor v = base.t().slice(0, 1, 5, 2);  // [2, 3], strides {1, 10}, offset 1
  REQUIRE(v.shape() == Shape{2, 3});
  DLManagedTensor* m = to_dlpack(v);
  const DLTensor& d = m->dl_tensor;
  CHECK(d.data == v.raw_data());
  CHECK(d.byte_offset == 0);
  CHECK(d.ndim == 2);
  CHECK(d.shape[0] == 2);
  CHECK(d.shape[1] == 3);
  CHECK(d.strides[0] == v.stride(0));
  CHECK(d.strides[1] == v.stride(1));
  CHECK(d.dtype.code == kDLFloat);
  CHECK(d.dtype.bits == 64);
  CHECK(d.dtype.lanes == 1);
  CHECK(d.device.device_type == kDLCPU);
  const std::vector<double> want = values(v);
  base = Tensor();
  v = Tensor();  // the export still holds the storage: reading it is valid (ASan checks)
  const double* p = static_cast<const double*>(d.data);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) CHECK(p[i * d.strides[0] + j * d.strides[1]] == want[size_t(i * 3 + j)]);
  m->deleter(m);
}

TEST_CASE("dlpack: every dtype's type code, and a round trip shares memory", "[interop][dlpack]") {
  struct Row {
    DType dt;
    uint8_t code, bits;
  };
  for (Row r : {Row{kBool, 6, 8}, Row{kUInt8, kDLUInt, 8}, Row{kInt32, kDLInt, 32}, Row{kInt64, kDLInt, 64},
                Row{kFloat32, kDLFloat, 32}, Row{kFloat64, kDLFloat, 64}, Row{kFloat16, kDLFloat, 16},
                Row{kBFloat16, kDLBfloat, 16}}) {
    INFO(dtype_name(r.dt));
    Tensor t = randint(0, 2, {4, 3}).to(r.dt);
    DLManagedTensor* m = to_dlpack(t);
    CHECK(m->dl_tensor.dtype.code == r.code);
    CHECK(m->dl_tensor.dtype.bits == r.bits);
    Tensor back = from_dlpack(m);
    CHECK(back.dtype() == r.dt);
    CHECK(back.raw_data() == t.raw_data());
    CHECK(back.shape() == t.shape());
    CHECK(back.strides() == t.strides());
    back.fill_(1);
    CHECK(values(t) == std::vector<double>(12, 1.0));  // writes are visible both ways
  }
}

TEST_CASE("dlpack: from_dlpack honours strides and byte_offset and calls the deleter exactly once", "[interop][dlpack]") {
  int deletes = 0;
  std::vector<float> buf(20);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = float(i) * 0.5f - 3.f;
  const std::vector<float> copy = buf;
  // A [3, 2] view with strides {4, 1}, starting at element 2 (byte_offset 8).
  DLManagedTensor* m = produce(buf, {3, 2}, {4, 1}, 8, &deletes);
  const float* data = static_cast<const float*>(m->dl_tensor.data);
  {
    Tensor t = from_dlpack(m);
    CHECK(t.raw_data() == data + 2);
    CHECK(t.strides() == Strides{4, 1});
    std::vector<double> got = values(t);
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 2; ++j) CHECK(got[size_t(i * 2 + j)] == double(copy[size_t(2 + i * 4 + j)]));
    Tensor view = t.select(1, 1);
    t = Tensor();
    CHECK(deletes == 0);  // the view still uses the memory
    CHECK(values(view) == std::vector<double>{copy[3], copy[7], copy[11]});
  }
  CHECK(deletes == 1);

  // Null strides: contiguous. An empty tensor still calls the deleter once.
  Tensor c = from_dlpack(produce(std::vector<float>(6, 2.f), {2, 3}, {}, 0, &deletes));
  CHECK(c.is_contiguous());
  CHECK(values(c.sum()) == std::vector<double>{12});
  c = Tensor();
  CHECK(deletes == 2);
  Tensor e = from_dlpack(produce({}, {0, 4}, {}, 0, &deletes));
  CHECK(e.numel() == 0);
  e = Tensor();
  CHECK(deletes == 3);
}

TEST_CASE("dlpack: bad DLPack tensors are refused with the reason, and stay the caller's", "[interop][dlpack]") {
  int deletes = 0;
  auto expect = [&](DLManagedTensor* m, auto exception_tag, const std::string& fragment) {
    using E = decltype(exception_tag);
    try {
      from_dlpack(m);
      FAIL("no exception for " << fragment);
    } catch (const E& e) {
      CHECK_THAT(e.what(), Contains(fragment));
    }
    CHECK(deletes == 0);  // not taken
    m->deleter(m);
    deletes = 0;
  };
  DLManagedTensor* m = produce(std::vector<float>(4), {4}, {}, 0, &deletes);
  m->dl_tensor.dtype = {kDLInt, 16, 1};
  expect(m, DTypeError(""), "type code 0 (kDLInt) with 16 bits");
  m = produce(std::vector<float>(4), {4}, {}, 0, &deletes);
  m->dl_tensor.dtype = {kDLComplex, 64, 1};
  expect(m, DTypeError(""), "kDLComplex");
  m = produce(std::vector<float>(4), {4}, {}, 0, &deletes);
  m->dl_tensor.dtype.lanes = 4;
  expect(m, ValueError(""), "4-lane vector types");
  m = produce(std::vector<float>(4), {2, 2}, {-2, 1}, 8, &deletes);
  expect(m, ValueError(""), "negative stride");
  m = produce(std::vector<float>(4), {4}, {}, 0, &deletes);
  m->dl_tensor.device = {kDLOpenCL, 0};
  expect(m, DeviceError(""), "device type 4 is not supported");
  m = produce(std::vector<float>(4), {4}, {}, 0, &deletes);
  m->dl_tensor.device = {kDLCUDA, 0};
  if (find_backend(DeviceType::CUDA) == nullptr || !find_backend(DeviceType::CUDA)->is_available())
    expect(m, DeviceError(""), "a CUDA tensor (device 0)");
  else
    m->deleter(m);
  CHECK_THROWS_AS(from_dlpack(nullptr), ValueError);
  CHECK_THROWS_AS(to_dlpack(Tensor()), ValueError);
}
