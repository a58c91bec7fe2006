// RAII owners of cuDNN descriptors (cuDNN types stay inside kernels/).
#pragma once
#include <cudnn.h>

#include <climits>

#include "cuda_context.cuh"

namespace tessera::cuda::detail {

inline cudnnDataType_t cudnn_dtype(DType t, const char* op) {
  switch (t) {
    case DType::Float32: return CUDNN_DATA_FLOAT;
    case DType::Float64: return CUDNN_DATA_DOUBLE;
    default: throw DTypeError(std::string("cuda ") + op + ": cuDNN path expects float32 or float64, got " + dtype_name(t));
  }
}
inline int to_int(int64_t v, const char* op) {
  TESSERA_CHECK(v >= 0 && v <= INT_MAX, UnsupportedError, "cuda ", op, ": size ", v, " exceeds cuDNN's int range");
  return int(v);
}

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { TESSERA_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  /// NCHW, fully packed.
  void set(int64_t n, int64_t c, int64_t h, int64_t w, DType t, const char* op) {
    TESSERA_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, cudnn_dtype(t, op), to_int(n, op),
                                                   to_int(c, op), to_int(h, op), to_int(w, op)));
  }
  void set(const Tensor& t, const char* op) { set(t.size(0), t.size(1), t.size(2), t.size(3), t.dtype(), op); }
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc() { TESSERA_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d)); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
  void set(const Tensor& w, const char* op) {
    TESSERA_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, cudnn_dtype(w.dtype(), op), CUDNN_TENSOR_NCHW,
                                                   to_int(w.size(0), op), to_int(w.size(1), op),
                                                   to_int(w.size(2), op), to_int(w.size(3), op)));
  }
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { TESSERA_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d)); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

struct PoolDesc {
  cudnnPoolingDescriptor_t d = nullptr;
  PoolDesc() { TESSERA_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&d)); }
  ~PoolDesc() { cudnnDestroyPoolingDescriptor(d); }
  PoolDesc(const PoolDesc&) = delete;
  PoolDesc& operator=(const PoolDesc&) = delete;
};

}  // namespace tessera::cuda::detail
