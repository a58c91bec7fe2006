// The caching device allocator and the pinned host staging ring used for transfers.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tessera/cuda.hpp"
#include "tessera/storage.hpp"

namespace tessera::cuda::detail {

/// Caching allocator (the scheme of PyTorch's CUDACachingAllocator, simplified: no block
/// splitting). Requests are rounded up (512 B granules below 1 MiB, quarter powers of two
/// above); freed blocks go to a free list keyed by (device, stream) and are reused for a
/// request of the same rounded size without cudaMalloc/cudaFree. When cudaMalloc runs out of
/// memory the device's cache is released and the call retried once; then CudaError.
class CachingAllocator {
 public:
  /// The process-wide allocator (never destroyed, so storages freed at exit stay safe).
  static CachingAllocator& instance();

  /// nbytes on device, usable in stream order on `stream`. nbytes == 0 gives nullptr.
  void* allocate(std::size_t nbytes, int device, cudaStream_t stream);
  /// Returns a block from allocate() to the cache (no cudaFree).
  void release(void* ptr);
  /// cudaFree of every cached block on every device.
  void empty_cache();
  MemoryStats stats(int device);
  void reset_peak(int device);

  /// Size a request is rounded up to.
  static std::size_t round_size(std::size_t nbytes);

 private:
  struct Block {
    std::size_t size;
    int device;
    cudaStream_t stream;
  };
  using PoolKey = std::pair<int, cudaStream_t>;
  void free_cached_locked(int device);  // device < 0: all
  MemoryStats& stats_locked(int device);

  std::mutex mutex_;
  std::unordered_map<void*, Block> live_;
  std::map<PoolKey, std::multimap<std::size_t, void*>> free_;
  std::vector<MemoryStats> stats_;
};

/// Copies between pageable host memory and device memory through a 32 MiB ring of pinned
/// memory per device (pieces of at most 8 MiB). Host-to-device returns once the source has been
/// staged, waiting only when the ring comes round to a piece still queued for copying, so the
/// host does not wait for the device work queued before the copy. Device-to-host returns once
/// the data is in dst, then throws an error a kernel recorded (check_device_errors).
void copy_host_to_device(void* dst, const void* src, std::size_t nbytes, int device);
void copy_device_to_host(void* dst, const void* src, std::size_t nbytes, int device);

}  // namespace tessera::cuda::detail
