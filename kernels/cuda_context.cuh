// Shared pieces of the CUDA backend: error checking that throws (never aborts), the
// per-device context (stream, lazily created cuBLAS/cuDNN handles, workspace), dtype
// dispatch, and 64-bit strided offset calculation with dimension coalescing.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>

#include "tessera/backend.hpp"
#include "tessera/error.hpp"
#include "tessera/tensor.hpp"

namespace tessera::cuda::detail {

// ---- errors ---------------------------------------------------------------------------
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t st, const char* call, const char* file, int line);
[[noreturn]] void throw_cudnn_error(cudnnStatus_t st, const char* call, const char* file, int line);

}  // namespace tessera::cuda::detail

/// Checks a CUDA runtime call; throws tessera::CudaError with the call text, file:line and
/// CUDA's error name and description.
#define TESSERA_CUDA_CHECK(call)                                                          \
  do {                                                                                    \
    cudaError_t tessera_err_ = (call);                                                    \
    if (tessera_err_ != cudaSuccess)                                                      \
      ::tessera::cuda::detail::throw_cuda_error(tessera_err_, #call, __FILE__, __LINE__); \
  } while (0)
/// Checks the launch of the kernel just queued (bad configuration, missing image).
#define TESSERA_KERNEL_CHECK() TESSERA_CUDA_CHECK(cudaGetLastError())
#define TESSERA_CUBLAS_CHECK(call)                                                      \
  do {                                                                                  \
    cublasStatus_t tessera_st_ = (call);                                                \
    if (tessera_st_ != CUBLAS_STATUS_SUCCESS)                                           \
      ::tessera::cuda::detail::throw_cublas_error(tessera_st_, #call, __FILE__, __LINE__); \
  } while (0)
#define TESSERA_CUDNN_CHECK(call)                                                       \
  do {                                                                                  \
    cudnnStatus_t tessera_st_ = (call);                                                 \
    if (tessera_st_ != CUDNN_STATUS_SUCCESS)                                            \
      ::tessera::cuda::detail::throw_cudnn_error(tessera_st_, #call, __FILE__, __LINE__); \
  } while (0)

namespace tessera::cuda::detail {

// ---- per-device context -----------------------------------------------------------------
/// What a kernel found wrong with its input, for the host to report (check_device_errors) at
/// its next synchronisation with the device, without a synchronisation of its own. Lives in
/// pinned host memory, which kernels write directly (unified addressing); one thread per
/// error, elected through DeviceErrors::claim in device memory, writes it.
struct DeviceErrorRecord {
  int64_t code;  ///< 0 none; kBadClassIndex; kBadIndex
  int64_t index, value, rows, classes;
  int64_t dim;      ///< kBadIndex: the indexed dim (its size is in `rows`)
  uintptr_t op;     ///< kBadIndex: the op's name, a string literal (Backend::gather's contract)
};
constexpr int64_t kBadClassIndex = 1;  ///< nll_loss: target `value` at `index` outside [0, classes)
/// gather / scatter_add: index `value` at element offset `index` of the index tensor outside
/// [0, rows) for dim `dim` (index_out_of_range_message).
constexpr int64_t kBadIndex = 2;

struct DeviceErrors {
  int* claim = nullptr;                 ///< device memory, 0 until a kernel claims the record
  DeviceErrorRecord* record = nullptr;  ///< pinned host memory
};

/// Per-device state. Created on first use of the device; lives until process exit.
struct DeviceContext {
  int device = 0;
  cudaStream_t stream = nullptr;   ///< every op of this device runs on this stream
  int sm_count = 0;
  std::size_t max_smem_per_block = 0;
  /// Lazily created handles, bound to `stream`.
  cublasHandle_t cublas();
  cudnnHandle_t cudnn();

  /// The error record kernels of this device report to (created on first use).
  DeviceErrors errors();

  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  std::mutex errors_mutex_;  ///< guards errors_'s creation and check_device_errors' read-and-clear
  DeviceErrors errors_;
  void* cublas_workspace_ = nullptr;  ///< from the caching allocator, kept for the handle
};

/// The context of device `index` (creates it, with its stream, on first use). Throws
/// DeviceError for an index out of range.
DeviceContext& device_context(int index);

/// Throws the error a kernel of `device` recorded since the last check (an IndexError naming
/// the op, the value and what was expected), and clears it. Called after every host wait that
/// covers all queued work of the device: synchronize() and copies to the host.
void check_device_errors(int device);

/// RAII: makes `device` current for the calling thread, restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1;
};

/// Context of t's device, with that device made current by the guard the caller holds.
inline DeviceContext& context_of(const Tensor& t) { return device_context(t.device().index); }

// ---- launch geometry ----------------------------------------------------------------------
constexpr int kThreads = 256;
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
/// Blocks for n work items at `per_block` items each (at least 1, at most 2^31 - 1; kernels
/// use grid-stride loops so fewer blocks are always correct).
inline unsigned grid_for(int64_t n, int64_t per_block) {
  int64_t b = ceil_div(n, per_block);
  if (b < 1) b = 1;
  if (b > 0x7fffffff) b = 0x7fffffff;
#ifdef TESSERA_CUDA_EMULATOR_HOOKS
  // On the emulator, TESSERA_EMU_MAX_GRID=N tests that claim: every grid-stride loop and
  // per-block row loop then runs more than one iteration.
  if (::tessera_emu::max_grid() > 0 && b > ::tessera_emu::max_grid()) b = ::tessera_emu::max_grid();
#endif
  return unsigned(b);
}

// ---- dtype dispatch -------------------------------------------------------------------------
template <typename T> using Tag = ::tessera::TypeTag<T>;

/// Calls f(Tag<T>{}) with the C++ type of dtype (every dtype; float16/bfloat16 as
/// tessera::Half / tessera::BFloat16, which compute through float in device code too).
template <typename F>
void dispatch_all(DType t, F&& f) {
  ::tessera::dispatch<kAllTypes>(t, "cuda", std::forward<F>(f));
}
/// Every dtype but float16/bfloat16 (ops the backend runs in float32 for those).
template <typename F>
void dispatch_standard(DType t, F&& f) {
  ::tessera::dispatch<kAllTypes & ~kReducedFloatingTypes>(t, "cuda", std::forward<F>(f));
}
/// Float32/Float64 only; throws DTypeError naming op otherwise.
template <typename F>
void dispatch_float(DType t, const char* op, F&& f) {
  if (t != DType::Float32 && t != DType::Float64)
    throw DTypeError(std::string("cuda ") + op + ": expected float32 or float64, got " + dtype_name(t));
  ::tessera::dispatch<kStandardFloatingTypes>(t, op, std::forward<F>(f));
}

// ---- conversions on the device --------------------------------------------------------------
/// As the CPU backend's cast_value: floating point to uint8 through int64 (PyTorch's rule), so
/// a negative value wraps as on the CPU instead of saturating to 0 (found on the H200).
template <typename To, typename From>
__host__ __device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) return v != From(0);
  else if constexpr (std::is_same_v<To, uint8_t> && is_floating_type_v<From>)
    return static_cast<uint8_t>(static_cast<int64_t>(v));
  else if constexpr (is_reduced_type_v<To> && is_reduced_type_v<From>) return To(float(v));
  else return static_cast<To>(v);
}
template <typename T>
__host__ __device__ __forceinline__ bool is_nan(T v) {
  if constexpr (is_floating_type_v<T>) return float(v) != float(v);
  else return false;
}

// ---- strided offsets --------------------------------------------------------------------------
constexpr int kMaxDims = 12;

/// Element offsets of N operands sharing one iteration shape (row-major linear index).
template <int N>
struct OffsetCalc {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];

  __device__ __forceinline__ void get(int64_t linear, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t s = sizes[d];
      int64_t idx = linear % s;
      linear /= s;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

/// Builds an OffsetCalc for `shape` with one stride vector per operand, dropping size-1
/// dims and merging dims that are contiguous with their neighbour in every operand.
/// Throws UnsupportedError naming op when more than kMaxDims dims remain.
template <int N>
OffsetCalc<N> make_offset_calc(const Shape& shape, const std::array<const Strides*, N>& strides,
                               const char* op) {
  // Collect non-trivial dims (outermost first).
  int64_t sz[64];
  int64_t st[N][64];
  int nd = 0;
  TESSERA_CHECK(shape.size() <= 64, UnsupportedError, "cuda ", op, ": more than 64 dims");
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    sz[nd] = shape[d];
    for (int k = 0; k < N; ++k) st[k][nd] = (*strides[k])[d];
    ++nd;
  }
  // Merge from the inside out: dim i-1 merges into dim i when stride[i-1] == stride[i]*size[i].
  int out = 0;
  int64_t msz[64];
  int64_t mst[N][64];
  for (int d = nd - 1; d >= 0; --d) {
    if (out > 0) {
      bool can = true;
      for (int k = 0; k < N; ++k)
        if (st[k][d] != mst[k][out - 1] * msz[out - 1]) { can = false; break; }
      if (can) {
        msz[out - 1] *= sz[d];
        continue;
      }
    }
    msz[out] = sz[d];
    for (int k = 0; k < N; ++k) mst[k][out] = st[k][d];
    ++out;
  }
  TESSERA_CHECK(out <= kMaxDims, UnsupportedError, "cuda ", op, ": tensor layout of ", shape_str(shape),
                " needs ", out, " non-mergeable dims; at most ", kMaxDims, " are supported (make it contiguous first)");
  OffsetCalc<N> c;
  c.ndim = out;
  for (int i = 0; i < out; ++i) {  // msz is innermost-first; OffsetCalc is outermost-first
    c.sizes[i] = msz[out - 1 - i];
    for (int k = 0; k < N; ++k) c.strides[k][i] = mst[k][out - 1 - i];
  }
  return c;
}

/// Whether p is aligned to `bytes`.
inline bool aligned(const void* p, std::size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

/// 16-byte vector of T for vectorised global loads and stores.
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) VecT {
  T v[VEC];
};

}  // namespace tessera::cuda::detail

namespace tessera::cuda::detail {

/// Device scratch memory from the caching allocator, released (into the cache) at scope exit.
/// Safe to release while kernels that use it are still queued: the allocator hands the block
/// out again only on the same stream, which runs in order.
class TempBuffer {
 public:
  TempBuffer(std::size_t nbytes, int device);
  ~TempBuffer();
  TempBuffer(const TempBuffer&) = delete;
  TempBuffer& operator=(const TempBuffer&) = delete;
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

/// A contiguous tensor on `device` whose storage comes from the caching allocator.
Tensor make_device_tensor(const Shape& shape, DType dtype, Device device);

}  // namespace tessera::cuda::detail
