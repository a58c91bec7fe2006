// Reference cuBLAS for Tessera's CUDA emulator (tests/cuda_emu): the cuBLAS C API functions
// the CUDA backend (kernels/*.cu) calls, implemented on the host with plain loops and linked
// instead of libcublas. Compiled against the real <cublas_v2.h>, so every signature, enum
// value and status code is the library's own.
//
// It is a test oracle, not a fast BLAS: it follows the cuBLAS documentation
// (https://docs.nvidia.com/cuda/cublas/) for semantics and argument validation, rejects what
// the real library rejects (with a diagnostic saying why, via tessera_emu::diagnose), and is
// stricter where the real library would silently misbehave on a GPU (matrices that do not lie
// in device memory). Calls run synchronously at call time; the stream set on the handle is
// recorded but work is not queued on it (the emulator's runtime executes stream work eagerly).
//
// Nothing throws across the C API: every entry point catches and returns a status.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <library_types.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "emu.hpp"

/// The opaque handle behind cublasHandle_t (incomplete in cublas_api.h; defined here).
struct cublasContext {
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
  int device = 0;  // current device at cublasCreate: the handle works only there
};

namespace {

using tessera_emu::raw;

std::mutex g_mutex;
std::unordered_set<const cublasContext*>& live_handles() {
  static auto* s = new std::unordered_set<const cublasContext*>();  // never destroyed
  return *s;
}

bool handle_ok(const cublasContext* h) {
  if (h == nullptr) return false;
  std::lock_guard<std::mutex> lock(g_mutex);
  return live_handles().count(h) != 0;
}

cublasStatus_t reject(cublasStatus_t st, const std::string& msg) {
  tessera_emu::diagnose(msg);
  return st;
}

const char* op_name(int op) {
  switch (op) {
    case CUBLAS_OP_N: return "N";
    case CUBLAS_OP_T: return "T";
    case CUBLAS_OP_C: return "C";
    default: return "?";
  }
}

/// An element as double: through float for the two-byte types (which convert only to float),
/// exactly for float and double.
template <typename T>
double as_double(T v) {
  if constexpr (sizeof(T) == 2) return double(float(v));
  else return double(v);
}

/// Column-major gemm of one batch entry, accumulating in double.
/// C[i + j*ldc] = alpha * sum_l opA(i,l) * opB(l,j) + beta * C[i + j*ldc]; C not read when
/// beta == 0; A and B not read when alpha == 0 or k == 0 (as in the reference BLAS).
template <typename T>
void gemm_one(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const T* A, int64_t lda, const T* B,
              int64_t ldb, double beta, T* C, int64_t ldc, std::vector<double>& bcol, std::vector<double>& acc) {
  const bool use_ab = alpha != 0.0 && k > 0;
  bcol.resize(std::size_t(k > 0 ? k : 1));
  acc.resize(std::size_t(m > 0 ? m : 1));
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < m; ++i) acc[std::size_t(i)] = 0.0;
    if (use_ab) {
      // Column j of op(B), k entries.
      for (int64_t l = 0; l < k; ++l) bcol[std::size_t(l)] = as_double(tb ? B[j + l * ldb] : B[l + j * ldb]);
      if (!ta) {
        for (int64_t l = 0; l < k; ++l) {
          const double b = bcol[std::size_t(l)];
          const T* a = A + l * lda;  // column l of A, m entries
          for (int64_t i = 0; i < m; ++i) acc[std::size_t(i)] += as_double(a[i]) * b;
        }
      } else {
        for (int64_t i = 0; i < m; ++i) {
          const T* a = A + i * lda;  // column i of A = row i of op(A), k entries
          double s = 0.0;
          for (int64_t l = 0; l < k; ++l) s += as_double(a[l]) * bcol[std::size_t(l)];
          acc[std::size_t(i)] = s;
        }
      }
    }
    T* c = C + j * ldc;
    for (int64_t i = 0; i < m; ++i) {
      const double r = use_ab ? alpha * acc[std::size_t(i)] : 0.0;
      const double v = beta == 0.0 ? r : r + beta * as_double(c[i]);
      if constexpr (sizeof(T) == 2) c[i] = T(float(v));  // float32 compute, one rounding to 16 bits
      else c[i] = T(v);
    }
  }
}

/// Bytes spanned by a column-major rows x cols matrix with leading dimension ld.
std::size_t matrix_span_bytes(int64_t rows, int64_t cols, int64_t ld, std::size_t elem) {
  if (rows <= 0 || cols <= 0) return 0;
  return std::size_t((cols - 1) * ld + rows) * elem;
}

/// Checks that every batch entry of a strided-batched matrix lies in one device allocation.
bool batch_in_device_memory(const char* name, const void* base, int64_t rows, int64_t cols, int64_t ld,
                            long long stride, int64_t batch, std::size_t elem, std::string& why) {
  const std::size_t span = matrix_span_bytes(rows, cols, ld, elem);
  if (span == 0) return true;
  for (int64_t b = 0; b < batch; ++b) {
    const char* p = static_cast<const char*>(base) + static_cast<long long>(b) * stride * static_cast<long long>(elem);
    if (!tessera_emu::is_device_range(p, span)) {
      std::ostringstream os;
      os << "matrix " << name << " of batch entry " << b << " (" << rows << " x " << cols << ", ld " << ld
         << ", stride " << stride << " elements) at " << static_cast<const void*>(p) << " spans " << span
         << " bytes, which do not lie inside one live device allocation"
         << (tessera_emu::is_device_pointer(base) ? "" : " (the base pointer is not device memory at all)");
      why = os.str();
      return false;
    }
    if (const std::string wd = tessera_emu::wrong_device(p); !wd.empty()) {
      why = std::string("matrix ") + name + ": " + wd;
      return false;
    }
    if (stride == 0) break;  // every entry is the same matrix
  }
  return true;
}

bool known_compute_type(int ct) {
  switch (ct) {
    case CUBLAS_COMPUTE_16F: case CUBLAS_COMPUTE_16F_PEDANTIC: case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC: case CUBLAS_COMPUTE_32F_FAST_16F: case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32: case CUBLAS_COMPUTE_32F_EMULATED_16BFX9: case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC: case CUBLAS_COMPUTE_64F_EMULATED_FIXEDPOINT: case CUBLAS_COMPUTE_32I:
    case CUBLAS_COMPUTE_32I_PEDANTIC:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" {

// cublasCreate (cuBLAS API reference, "cublasCreate()"): initialises a handle; the handle
// pointer must be valid. Returns CUBLAS_STATUS_INVALID_VALUE for a null handle pointer.
cublasStatus_t CUBLASWINAPI cublasCreate_v2(cublasHandle_t* handle) {
  if (handle == nullptr) return reject(CUBLAS_STATUS_INVALID_VALUE, "cublasCreate: handle is NULL");
  try {
    auto* h = new cublasContext();
    h->device = tessera_emu::current_device();
    std::lock_guard<std::mutex> lock(g_mutex);
    live_handles().insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
  } catch (...) {
    return reject(CUBLAS_STATUS_ALLOC_FAILED, "cublasCreate: host allocation failed");
  }
}

// cublasDestroy ("cublasDestroy()"): releases the handle; CUBLAS_STATUS_NOT_INITIALIZED when
// the library was not initialised (here: a null, unknown or already destroyed handle).
cublasStatus_t CUBLASWINAPI cublasDestroy_v2(cublasHandle_t handle) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (handle == nullptr || live_handles().erase(handle) == 0) {
      tessera_emu::diagnose("cublasDestroy: handle is NULL, unknown or already destroyed");
      return CUBLAS_STATUS_NOT_INITIALIZED;
    }
  }
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

// cublasSetStream ("cublasSetStream()"): sets the stream used by later calls on the handle
// (NULL = the default stream). Recorded only: the emulator executes calls synchronously.
// The real function also resets the workspace to the default pool; a user workspace set with
// cublasSetWorkspace is kept here, as the backend sets the stream before the workspace.
cublasStatus_t CUBLASWINAPI cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
  if (!handle_ok(handle)) return reject(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetStream: invalid handle");
  handle->stream = streamId;
  return CUBLAS_STATUS_SUCCESS;
}

// cublasSetWorkspace ("cublasSetWorkspace()"): sets a user-owned device workspace. The
// workspace pointer must be aligned to at least 256 bytes (CUBLAS_STATUS_INVALID_VALUE
// otherwise); NULL with size 0 reverts to the default. The emulator also checks that the
// buffer is device memory of at least the given size.
cublasStatus_t CUBLASWINAPI cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace,
                                                  size_t workspaceSizeInBytes) {
  if (!handle_ok(handle)) return reject(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetWorkspace: invalid handle");
  if (workspace != nullptr && reinterpret_cast<uintptr_t>(workspace) % 256 != 0)
    return reject(CUBLAS_STATUS_INVALID_VALUE, "cublasSetWorkspace: workspace pointer is not 256-byte aligned");
  if (workspace == nullptr && workspaceSizeInBytes != 0)
    return reject(CUBLAS_STATUS_INVALID_VALUE, "cublasSetWorkspace: NULL workspace with a non-zero size");
  if (workspace != nullptr && workspaceSizeInBytes > 0 && !tessera_emu::is_device_range(workspace, workspaceSizeInBytes)) {
    std::ostringstream os;
    os << "cublasSetWorkspace: [" << workspace << ", +" << workspaceSizeInBytes
       << " bytes) is not inside one live device allocation";
    return reject(CUBLAS_STATUS_INVALID_VALUE, os.str());
  }
  handle->workspace = workspace;
  handle->workspace_bytes = workspaceSizeInBytes;
  return CUBLAS_STATUS_SUCCESS;
}

// cublasSetPointerMode ("cublasSetPointerMode()"): whether alpha/beta are host or device
// pointers. Recorded; CUBLAS_STATUS_INVALID_VALUE for a value outside the enum. The emulator's
// gemm supports only CUBLAS_POINTER_MODE_HOST (DEVICE mode is rejected there).
cublasStatus_t CUBLASWINAPI cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (!handle_ok(handle)) return reject(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetPointerMode: invalid handle");
  if (raw(mode) != CUBLAS_POINTER_MODE_HOST && raw(mode) != CUBLAS_POINTER_MODE_DEVICE)
    return reject(CUBLAS_STATUS_INVALID_VALUE, "cublasSetPointerMode: mode " + std::to_string(raw(mode)) +
                                                   " is not a cublasPointerMode_t");
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

// cublasGetProperty ("cublasGetProperty()"): MAJOR_VERSION / MINOR_VERSION / PATCH_LEVEL of
// the library: here the header's CUBLAS_VER_MAJOR / _MINOR / _PATCH.
cublasStatus_t CUBLASWINAPI cublasGetProperty(libraryPropertyType type, int* value) {
  if (value == nullptr) return reject(CUBLAS_STATUS_INVALID_VALUE, "cublasGetProperty: value is NULL");
  switch (raw(type)) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; return CUBLAS_STATUS_SUCCESS;
    default:
      return reject(CUBLAS_STATUS_INVALID_VALUE, "cublasGetProperty: unknown libraryPropertyType " +
                                                     std::to_string(raw(type)));
  }
}

// cublasGetCudartVersion ("cublasGetCudartVersion()"): the CUDA runtime version the library
// was built against: here the header's CUDART_VERSION.
size_t CUBLASWINAPI cublasGetCudartVersion(void) { return size_t(CUDART_VERSION); }

// cublasGetStatusName ("cublasGetStatusName()"): the enum name of a status.
const char* CUBLASWINAPI cublasGetStatusName(cublasStatus_t status) {
  switch (raw(status)) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

// cublasGetStatusString ("cublasGetStatusString()"): a description of a status.
const char* CUBLASWINAPI cublasGetStatusString(cublasStatus_t status) {
  switch (raw(status)) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "an error was detected when checking the current licensing";
  }
  return "an unknown internal error has occurred";
}

// cublasGemmStridedBatchedEx_64 ("cublasGemmStridedBatchedEx()", 64-bit integer interface):
//   C_i = alpha * op(A_i) * op(B_i) + beta * C_i,  i = 0 .. batchCount-1,
//   A_i = A + i*strideA, B_i = B + i*strideB, C_i = C + i*strideC (strides in elements),
// column-major, op(A_i) m x k, op(B_i) k x n, C_i m x n. When beta == 0, C need not hold valid
// values (it is not read, so NaN there does not propagate). Validation as documented:
//   CUBLAS_STATUS_NOT_INITIALIZED: invalid handle;
//   CUBLAS_STATUS_INVALID_VALUE: m, n or k < 0; transa/transb not N, T or C; lda < max(1, m)
//     when transa == N and lda < max(1, k) otherwise; ldb < max(1, k) when transb == N and
//     ldb < max(1, n) otherwise; ldc < max(1, m); batchCount < 0; alpha or beta NULL; a value
//     that is not a cublasComputeType_t;
//   CUBLAS_STATUS_NOT_SUPPORTED: an Atype/Btype/Ctype/computeType combination outside the
//     documented table (here: all CUDA_R_32F with CUBLAS_COMPUTE_32F[_PEDANTIC|_FAST_16F|
//     _FAST_16BF|_FAST_TF32], or all CUDA_R_64F with CUBLAS_COMPUTE_64F[_PEDANTIC]), or an
//     algo value that is not a cublasGemmAlgo_t.
// Emulator-only: CUBLAS_POINTER_MODE_DEVICE is NOT_SUPPORTED (alpha/beta must be host
// pointers), and a matrix that does not lie in device memory is EXECUTION_FAILED (an illegal
// address on a GPU). CUBLAS_OP_C is the same as CUBLAS_OP_T for real types. Sums are
// accumulated in double; TF32/FAST modes are computed in full precision.
cublasStatus_t CUBLASWINAPI cublasGemmStridedBatchedEx_64(cublasHandle_t handle, cublasOperation_t transa,
                                                          cublasOperation_t transb, int64_t m, int64_t n, int64_t k,
                                                          const void* alpha, const void* A, cudaDataType Atype,
                                                          int64_t lda, long long int strideA, const void* B,
                                                          cudaDataType Btype, int64_t ldb, long long int strideB,
                                                          const void* beta, void* C, cudaDataType Ctype, int64_t ldc,
                                                          long long int strideC, int64_t batchCount,
                                                          cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  try {
    const char* fn = "cublasGemmStridedBatchedEx_64";
    if (!handle_ok(handle)) return reject(CUBLAS_STATUS_NOT_INITIALIZED, std::string(fn) + ": invalid handle");
    if (handle->device != tessera_emu::current_device())
      return reject(CUBLAS_STATUS_EXECUTION_FAILED, std::string(fn) + ": handle created on cuda:" +
                                                        std::to_string(handle->device) + " used while cuda:" +
                                                        std::to_string(tessera_emu::current_device()) + " is current");
    auto valid_op = [](int op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; };
    std::ostringstream args;
    args << fn << "(transa=" << op_name(raw(transa)) << ", transb=" << op_name(raw(transb)) << ", m=" << m << ", n=" << n
         << ", k=" << k << ", lda=" << lda << ", strideA=" << strideA << ", ldb=" << ldb << ", strideB=" << strideB
         << ", ldc=" << ldc << ", strideC=" << strideC << ", batchCount=" << batchCount << ")";
    auto invalid = [&](const std::string& why) { return reject(CUBLAS_STATUS_INVALID_VALUE, args.str() + ": " + why); };
    if (!valid_op(raw(transa))) return invalid("transa is not CUBLAS_OP_N, CUBLAS_OP_T or CUBLAS_OP_C");
    if (!valid_op(raw(transb))) return invalid("transb is not CUBLAS_OP_N, CUBLAS_OP_T or CUBLAS_OP_C");
    if (m < 0 || n < 0 || k < 0) return invalid("m, n and k must be >= 0");
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;  // A as stored (column-major)
    const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
    auto max1 = [](int64_t v) { return v > 1 ? v : int64_t(1); };
    if (lda < max1(a_rows))
      return invalid(std::string("lda must be >= max(1, ") + (ta ? "k" : "m") + ") = " + std::to_string(max1(a_rows)));
    if (ldb < max1(b_rows))
      return invalid(std::string("ldb must be >= max(1, ") + (tb ? "n" : "k") + ") = " + std::to_string(max1(b_rows)));
    if (ldc < max1(m)) return invalid("ldc must be >= max(1, m) = " + std::to_string(max1(m)));
    if (batchCount < 0) return invalid("batchCount must be >= 0");
    if (alpha == nullptr || beta == nullptr) return invalid("alpha and beta must not be NULL");
    if (!known_compute_type(raw(computeType)))
      return invalid("computeType " + std::to_string(raw(computeType)) + " is not a cublasComputeType_t");

    const bool algo_ok = (raw(algo) >= int(CUBLAS_GEMM_DEFAULT) && raw(algo) <= int(CUBLAS_GEMM_ALGO23)) ||
                         (raw(algo) >= int(CUBLAS_GEMM_DEFAULT_TENSOR_OP) && raw(algo) <= int(CUBLAS_GEMM_ALGO15_TENSOR_OP));
    if (!algo_ok)
      return reject(CUBLAS_STATUS_NOT_SUPPORTED, args.str() + ": algo " + std::to_string(raw(algo)) + " is not supported");
    const bool f32 = Atype == CUDA_R_32F && Btype == CUDA_R_32F && Ctype == CUDA_R_32F &&
                     (computeType == CUBLAS_COMPUTE_32F || computeType == CUBLAS_COMPUTE_32F_PEDANTIC ||
                      computeType == CUBLAS_COMPUTE_32F_FAST_TF32 || computeType == CUBLAS_COMPUTE_32F_FAST_16F ||
                      computeType == CUBLAS_COMPUTE_32F_FAST_16BF);
    const bool f64 = Atype == CUDA_R_64F && Btype == CUDA_R_64F && Ctype == CUDA_R_64F &&
                     (computeType == CUBLAS_COMPUTE_64F || computeType == CUBLAS_COMPUTE_64F_PEDANTIC);
    // Two-byte inputs and output with float32 compute (alpha, beta float): the table's
    // CUDA_R_16F / CUDA_R_16BF rows with CUBLAS_COMPUTE_32F[_PEDANTIC].
    const bool compute32 = computeType == CUBLAS_COMPUTE_32F || computeType == CUBLAS_COMPUTE_32F_PEDANTIC;
    const bool h16 = Atype == CUDA_R_16F && Btype == CUDA_R_16F && Ctype == CUDA_R_16F && compute32;
    const bool bf16 = Atype == CUDA_R_16BF && Btype == CUDA_R_16BF && Ctype == CUDA_R_16BF && compute32;
    if (!f32 && !f64 && !h16 && !bf16) {
      std::ostringstream os;
      os << args.str() << ": the combination Atype=" << raw(Atype) << ", Btype=" << raw(Btype) << ", Ctype=" << raw(Ctype)
         << ", computeType=" << raw(computeType)
         << " is not supported (the emulator supports all CUDA_R_32F (0) with CUBLAS_COMPUTE_32F*, all CUDA_R_64F (1)"
            " with CUBLAS_COMPUTE_64F*, or all CUDA_R_16F (2) / CUDA_R_16BF (14) with CUBLAS_COMPUTE_32F[_PEDANTIC])";
      return reject(CUBLAS_STATUS_NOT_SUPPORTED, os.str());
    }
    if (handle->pointer_mode != CUBLAS_POINTER_MODE_HOST)
      return reject(CUBLAS_STATUS_NOT_SUPPORTED,
                    args.str() + ": the emulator supports only CUBLAS_POINTER_MODE_HOST for alpha and beta");

    // Quick return (nothing is read or written).
    if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;

    const bool float_scalars = f32 || h16 || bf16;
    const std::size_t elem = f32 ? sizeof(float) : f64 ? sizeof(double) : sizeof(__half);
    const double al = float_scalars ? double(*static_cast<const float*>(alpha)) : *static_cast<const double*>(alpha);
    const double be = float_scalars ? double(*static_cast<const float*>(beta)) : *static_cast<const double*>(beta);

    if (C == nullptr) return invalid("C is NULL");
    if (k > 0 && (A == nullptr || B == nullptr)) return invalid("A or B is NULL");
    std::string why;
    if (k > 0 && !batch_in_device_memory("A", A, a_rows, a_cols, lda, strideA, batchCount, elem, why))
      return reject(CUBLAS_STATUS_EXECUTION_FAILED, args.str() + ": " + why);
    if (k > 0 && !batch_in_device_memory("B", B, b_rows, b_cols, ldb, strideB, batchCount, elem, why))
      return reject(CUBLAS_STATUS_EXECUTION_FAILED, args.str() + ": " + why);
    if (!batch_in_device_memory("C", C, m, n, ldc, strideC, batchCount, elem, why))
      return reject(CUBLAS_STATUS_EXECUTION_FAILED, args.str() + ": " + why);

    tessera_emu::DeviceAccess access;
    std::vector<double> bcol, acc;
    for (int64_t b = 0; b < batchCount; ++b) {
      if (f32) {
        gemm_one<float>(ta, tb, m, n, k, al, static_cast<const float*>(A) + b * strideA, lda,
                        static_cast<const float*>(B) + b * strideB, ldb, be, static_cast<float*>(C) + b * strideC, ldc,
                        bcol, acc);
      } else if (h16) {
        gemm_one<__half>(ta, tb, m, n, k, al, static_cast<const __half*>(A) + b * strideA, lda,
                         static_cast<const __half*>(B) + b * strideB, ldb, be, static_cast<__half*>(C) + b * strideC,
                         ldc, bcol, acc);
      } else if (bf16) {
        gemm_one<__nv_bfloat16>(ta, tb, m, n, k, al, static_cast<const __nv_bfloat16*>(A) + b * strideA, lda,
                                static_cast<const __nv_bfloat16*>(B) + b * strideB, ldb, be,
                                static_cast<__nv_bfloat16*>(C) + b * strideC, ldc, bcol, acc);
      } else {
        gemm_one<double>(ta, tb, m, n, k, al, static_cast<const double*>(A) + b * strideA, lda,
                         static_cast<const double*>(B) + b * strideB, ldb, be, static_cast<double*>(C) + b * strideC,
                         ldc, bcol, acc);
      }
    }
    return CUBLAS_STATUS_SUCCESS;
  } catch (const std::bad_alloc&) {
    return reject(CUBLAS_STATUS_ALLOC_FAILED, "cublasGemmStridedBatchedEx_64: host allocation failed");
  } catch (...) {
    return reject(CUBLAS_STATUS_INTERNAL_ERROR, "cublasGemmStridedBatchedEx_64: unexpected exception");
  }
}

}  // extern "C"
