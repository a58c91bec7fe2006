// Zero-copy exchange of tensors with other frameworks through DLPack (the DLPack 0.6 ABI of
// Debian's libdlpack-dev, which PyTorch, NumPy, JAX, CuPy and TVM all speak). This header
// needs no DLPack header itself: DLManagedTensor is the struct of <dlpack/dlpack.h>.
#pragma once
#include "tessera/tensor.hpp"

struct DLManagedTensor;

namespace tessera {

/// Exports t without copying: the result describes t's memory (data pointer = address of
/// element 0, byte_offset 0, as PyTorch exports; shape and strides in elements, kept as they
/// are, so a transposed or sliced view stays a view) and keeps t's storage alive until its
/// deleter is called, which the consumer must do exactly once. Autograd history is not
/// carried (as torch.utils.dlpack.to_dlpack of a detached tensor).
/// Devices: cpu -> kDLCPU 0, cuda:N -> kDLCUDA N. Dtypes: uint8 kDLUInt 8, int32/int64
/// kDLInt 32/64, float32/float64 kDLFloat 32/64; bool -> type code 6, 8 bits: DLPack 0.6 has no bool code, 6 is kDLBool of DLPack >= 0.8,
/// which PyTorch >= 2.0 and NumPy use (PyTorch 1.13 refuses bool tensors altogether).
/// Throws ValueError for an undefined tensor.
DLManagedTensor* to_dlpack(const Tensor& t);

/// Imports a DLPack tensor without copying and takes ownership of it: its deleter is called
/// exactly once, when the last Tessera tensor or view using the memory is destroyed (empty
/// tensors included). byte_offset is honoured; null strides mean contiguous (row-major).
/// Throws, leaving `m` with the caller (its deleter not called):
///  - ValueError for a null pointer, negative sizes or strides (Tessera views never step
///    backwards), lanes != 1 (vector types), or an extent past 2^63 - 1 bytes;
///  - DTypeError for a type code/bits pair Tessera has no dtype for (int8, int16, uint16,
///    complex, float8, opaque handles ...), naming the code and bits;
///  - DeviceError for a device type other than kDLCPU, kDLCUDAHost (pinned host memory: a
///    CPU tensor) and kDLCUDA, or a CUDA tensor when this build or machine has no usable GPU.
Tensor from_dlpack(DLManagedTensor* m);

}  // namespace tessera
