// DLPack export/import (include/tessera/interop/dlpack.hpp).
#include "tessera/interop/dlpack.hpp"

#include <dlpack/dlpack.h>

#include <memory>
#include <string>
#include <vector>

#include "tessera/backend.hpp"
#include "tessera/error.hpp"

namespace tessera {

namespace {

// DLPack >= 0.8's kDLBool; Debian's 0.6 header predates it.
constexpr uint8_t kDLBoolCode = 6;

// One row per Tessera dtype that DLPack can describe: the only place the mapping is written.
struct DTypeCode {
  DType dtype;
  uint8_t code, bits;
};
constexpr DTypeCode kCodes[] = {
    {DType::Bool, kDLBoolCode, 8},        {DType::UInt8, kDLUInt, 8},     {DType::Int32, kDLInt, 32},
    {DType::Int64, kDLInt, 64},           {DType::Float32, kDLFloat, 32}, {DType::Float64, kDLFloat, 64},
    {DType::Float16, kDLFloat, 16},      {DType::BFloat16, kDLBfloat, 16},
};

const char* code_name(uint8_t code) {
  switch (code) {
    case kDLInt: return "kDLInt";
    case kDLUInt: return "kDLUInt";
    case kDLFloat: return "kDLFloat";
    case kDLOpaqueHandle: return "kDLOpaqueHandle";
    case kDLBfloat: return "kDLBfloat";
    case kDLComplex: return "kDLComplex";
    case kDLBoolCode: return "kDLBool";
    default: return "unknown";
  }
}

// What a DLManagedTensor made by to_dlpack owns: the tensor (hence its storage) and the
// shape/stride arrays the DLTensor points into.
struct ExportContext {
  Tensor tensor;
  std::vector<int64_t> shape, strides;
  DLManagedTensor managed{};
};

void delete_export(DLManagedTensor* self) {
  if (self) delete static_cast<ExportContext*>(self->manager_ctx);
}

// Calls the producer's deleter when destroyed: held by the Storage's deleter closure, so it
// runs exactly once, when the storage goes, whether or not the storage holds a data pointer.
struct ImportOwner {
  DLManagedTensor* m = nullptr;
  ~ImportOwner() {
    if (m && m->deleter) m->deleter(m);
  }
};

}  // namespace

DLManagedTensor* to_dlpack(const Tensor& t) {
  TESSERA_CHECK(t.defined(), ValueError, "to_dlpack: undefined tensor");
  const DTypeCode* row = nullptr;
  for (const DTypeCode& c : kCodes)
    if (c.dtype == t.dtype()) row = &c;
  TESSERA_CHECK(row != nullptr, DTypeError, "to_dlpack: dtype ", dtype_name(t.dtype()), " has no DLPack type");
  auto ctx = std::make_unique<ExportContext>();
  ctx->tensor = t.detach();
  ctx->shape.assign(t.shape().begin(), t.shape().end());
  ctx->strides.assign(t.strides().begin(), t.strides().end());
  DLTensor& d = ctx->managed.dl_tensor;
  d.data = t.raw_data();
  d.device.device_type = t.is_cuda() ? kDLCUDA : kDLCPU;
  d.device.device_id = t.is_cuda() ? t.device().index : 0;
  d.ndim = int(t.dim());
  d.dtype.code = row->code;
  d.dtype.bits = row->bits;
  d.dtype.lanes = 1;
  d.shape = ctx->shape.data();
  d.strides = ctx->strides.data();
  d.byte_offset = 0;
  ctx->managed.manager_ctx = ctx.get();
  ctx->managed.deleter = delete_export;
  return &ctx.release()->managed;
}

Tensor from_dlpack(DLManagedTensor* m) {
  TESSERA_CHECK(m != nullptr, ValueError, "from_dlpack: null DLManagedTensor");
  const DLTensor& d = m->dl_tensor;
  TESSERA_CHECK(d.ndim >= 0, ValueError, "from_dlpack: negative ndim ", d.ndim);
  TESSERA_CHECK(d.dtype.lanes == 1, ValueError, "from_dlpack: ", d.dtype.lanes,
                "-lane vector types are not supported (lanes must be 1)");
  const DTypeCode* row = nullptr;
  for (const DTypeCode& c : kCodes)
    if (c.code == d.dtype.code && c.bits == d.dtype.bits) row = &c;
  TESSERA_CHECK(row != nullptr, DTypeError, "from_dlpack: no Tessera dtype for DLPack type code ",
                int(d.dtype.code), " (", code_name(d.dtype.code), ") with ", int(d.dtype.bits),
                " bits; supported: bool (code 6), uint8, int32, int64, float32, float64");
  Device device = Device::cpu();
  switch (d.device.device_type) {
    case kDLCPU:
    case kDLCUDAHost: break;
    case kDLCUDA: {
      device = Device::cuda(d.device.device_id);
      Backend* b = find_backend(DeviceType::CUDA);
      TESSERA_CHECK(b != nullptr, DeviceError, "from_dlpack: a CUDA tensor (device ", d.device.device_id,
                    "), but this build of Tessera has no CUDA backend");
      TESSERA_CHECK(b->is_available(), DeviceError, "from_dlpack: a CUDA tensor (device ", d.device.device_id,
                    "), but CUDA is not usable: ", b->unavailable_reason());
      TESSERA_CHECK(d.device.device_id >= 0 && d.device.device_id < b->device_count(), DeviceError,
                    "from_dlpack: CUDA device ", d.device.device_id, " does not exist (", b->device_count(),
                    " visible)");
      break;
    }
    default:
      throw DeviceError("from_dlpack: DLPack device type " + std::to_string(int(d.device.device_type)) +
                        " is not supported (kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3 are)");
  }
  Shape shape(d.shape, d.shape + d.ndim);
  for (int64_t s : shape) TESSERA_CHECK(s >= 0, ValueError, "from_dlpack: negative size in ", shape_str(shape));
  Strides strides;
  if (d.strides != nullptr) strides.assign(d.strides, d.strides + d.ndim);
  for (int64_t st : strides)
    TESSERA_CHECK(st >= 0, ValueError, "from_dlpack: negative stride in ", shape_str(strides),
                  " (Tessera views never step backwards)");
  char* data = static_cast<char*>(d.data) + d.byte_offset;
  auto owner = std::make_shared<ImportOwner>();
  // from_blob validates sizes, strides and extent, and throws before taking ownership.
  Tensor t;
  try {
    t = from_blob(data, shape, row->dtype, device, strides, [owner](void*) {});
  } catch (const ValueError& e) {
    throw ValueError(std::string("from_dlpack: ") + e.what());
  }
  owner->m = m;  // owned from here on: the deleter runs when the storage is destroyed
  return t;
}

}  // namespace tessera
