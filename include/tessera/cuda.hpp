// The CUDA runtime controls: whether the CUDA backend can be used and why not, device
// count, synchronisation, caching-allocator statistics and math options. CUDA-free: these
// functions exist in every build; in a build without CUDA they report "not built".
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::cuda {

/// Whether this copy of Tessera was compiled with the CUDA backend.
bool is_built();

/// Whether CUDA tensors can be made now: built with CUDA, not disabled by
/// TESSERA_DISABLE_CUDA=1, a driver at least as new as the runtime, at least one device
/// and a device whose architecture the binary covers. Decided once per process.
bool is_available();

/// Why is_available() is false, in one line ("" when available). One of: not built, disabled
/// by TESSERA_DISABLE_CUDA, no driver, driver older than the runtime, no device, architecture
/// not compiled (or the CUDA error text when the probe failed otherwise).
std::string unavailable_reason();

/// Number of CUDA devices usable by Tessera (0 when unavailable).
int device_count();

/// Waits for all work queued on `device` (-1: every device). No-op when unavailable.
/// Throws CudaError when queued work failed.
void synchronize(int device = -1);

/// Caching-allocator statistics for one device, in bytes.
struct MemoryStats {
  std::size_t allocated = 0;            ///< bytes held by live tensors (rounded block sizes)
  std::size_t reserved = 0;             ///< bytes obtained from cudaMalloc (live + cached)
  std::size_t peak = 0;                 ///< highest `allocated` since start or reset_peak_memory_stats
  std::uint64_t num_device_mallocs = 0; ///< number of cudaMalloc calls made by the allocator
};

/// Statistics of the caching allocator on `device` (all zero when unavailable).
MemoryStats memory_stats(int device = 0);
/// Sets `peak` to the current `allocated`.
void reset_peak_memory_stats(int device = 0);
/// Returns every cached (unused) device block to the driver with cudaFree.
void empty_cache();

/// TF32 tensor cores for float32 matmul (cuBLAS CUBLAS_COMPUTE_32F_FAST_TF32: inputs rounded
/// to 10 mantissa bits, float32 accumulation). Off by default, as PyTorch >= 1.12's
/// torch.backends.cuda.matmul.allow_tf32. The 16-bit dtypes use tensor cores regardless.
void set_allow_tf32_matmul(bool allow);
bool allow_tf32_matmul();
/// TF32 tensor cores for float32 convolution through cuDNN (CUDNN_DEFAULT_MATH instead of
/// CUDNN_FMA_MATH). Off by default in Tessera; note that PyTorch's default,
/// torch.backends.cudnn.allow_tf32, is True, so compare against PyTorch with it pinned.
void set_allow_tf32_cudnn(bool allow);
bool allow_tf32_cudnn();
/// Both flags at once (set_allow_tf32_matmul and set_allow_tf32_cudnn).
void set_allow_tf32(bool allow);
/// Whether both flags are on.
bool allow_tf32();

/// Which float32 GEMM the CUDA backend's bmm uses: cuBLAS (default) or Tessera's own tiled
/// SGEMM (shared-memory tiles, 8x8 register blocking). Float64 always uses cuBLAS.
enum class GemmImpl { Cublas, Tiled };
void set_gemm_impl(GemmImpl impl);
GemmImpl gemm_impl();

/// One device as the runtime reports it.
struct DeviceInfo {
  std::string name;
  int cc_major = 0, cc_minor = 0;  ///< compute capability
  std::size_t total_memory = 0;    ///< bytes
  int multiprocessors = 0;
  bool kernel_image_ok = false;    ///< the binary has code this device can run
};

/// Versions and devices as seen by the CUDA backend (empty/zero when not built).
struct RuntimeInfo {
  int driver_version = 0;   ///< CUDA version the driver supports, e.g. 13000 (0: no driver)
  int runtime_version = 0;  ///< CUDA runtime version linked, e.g. 13000
  int cublas_version = 0;   ///< e.g. 130100
  std::size_t cudnn_version = 0;  ///< e.g. 91900
  std::string compiled_architectures;  ///< CMAKE_CUDA_ARCHITECTURES of the build, comma-separated
  std::vector<DeviceInfo> devices;
};
/// Probes the runtime (does not throw; fields stay zero where a probe failed).
RuntimeInfo runtime_info();

// ---- availability decision, pure (unit-tested without a GPU) -----------------------

/// Everything the availability decision needs, gathered by the CUDA backend (or a test).
struct AvailabilityProbe {
  bool built = false;               ///< compiled with the CUDA backend
  bool disabled_by_env = false;     ///< TESSERA_DISABLE_CUDA set to a true value
  int driver_version = 0;           ///< cudaDriverGetVersion (0: no driver loadable)
  int runtime_version = 0;          ///< cudaRuntimeGetVersion
  /// Result of cudaGetDeviceCount: 0 success, else the CUDA error code (e.g. 35
  /// cudaErrorInsufficientDriver, 100 cudaErrorNoDevice) with its text in count_error_text.
  int count_error = 0;
  std::string count_error_text;
  int device_count = 0;
  std::string compiled_architectures;  ///< e.g. "75-real,80-real,86-real,89-real,90"
  std::vector<DeviceInfo> devices;     ///< one per device (cc and kernel_image_ok used)
};

/// The reason CUDA cannot be used given probe, or "" when it can. Order of checks: not built,
/// disabled, no driver, driver older than runtime, no device, no device whose architecture
/// is compiled.
std::string availability_reason(const AvailabilityProbe& probe);

/// Whether a device of compute capability major.minor can run a binary compiled for
/// `architectures` (CMake syntax, ',' or ';' separated: "80-real" = SASS only, "90-virtual"
/// = PTX only, "90" = both, "native"/"all" = assumed covered). SASS for X.y runs on X.z with
/// z >= y; PTX for X.y is JIT-compiled for any device >= X.y (CUDA C Programming Guide,
/// "Binary Compatibility" and "PTX Compatibility").
bool arch_covered(int cc_major, int cc_minor, const std::string& architectures);

/// Whether an environment value means "true" ("1", "true", "yes", "on", any case).
bool env_flag_true(const char* value);

}  // namespace tessera::cuda
