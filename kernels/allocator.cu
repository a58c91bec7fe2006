#include "allocator.cuh"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "cuda_context.cuh"

namespace tessera::cuda::detail {

namespace {
constexpr std::size_t kSmallLimit = std::size_t(1) << 20;  // 1 MiB
constexpr std::size_t kGranule = 512;

std::string bytes_str(std::size_t b) {
  std::ostringstream os;
  if (b >= (std::size_t(1) << 30)) os << double(b) / double(std::size_t(1) << 30) << " GiB";
  else if (b >= (std::size_t(1) << 20)) os << double(b) / double(std::size_t(1) << 20) << " MiB";
  else os << b << " bytes";
  return os.str();
}
}  // namespace

CachingAllocator& CachingAllocator::instance() {
  static CachingAllocator* a = new CachingAllocator();  // intentionally never destroyed
  return *a;
}

std::size_t CachingAllocator::round_size(std::size_t n) {
  if (n <= kSmallLimit) return std::max<std::size_t>(kGranule, (n + kGranule - 1) / kGranule * kGranule);
  std::size_t p = kSmallLimit;
  while (p * 2 <= n) p *= 2;  // p = 2^floor(log2 n)
  std::size_t step = p / 4;
  return (n + step - 1) / step * step;
}

MemoryStats& CachingAllocator::stats_locked(int device) {
  if (int(stats_.size()) <= device) stats_.resize(std::size_t(device) + 1);
  return stats_[std::size_t(device)];
}

void* CachingAllocator::allocate(std::size_t nbytes, int device, cudaStream_t stream) {
  if (nbytes == 0) return nullptr;
  const std::size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  MemoryStats& st = stats_locked(device);
  auto& pool = free_[PoolKey(device, stream)];
  auto it = pool.lower_bound(size);
  const std::size_t max_fit = std::max(size + size / 4, size + kGranule);
  if (it != pool.end() && it->first <= max_fit) {
    void* p = it->second;
    const std::size_t bsize = it->first;
    pool.erase(it);
    live_[p] = Block{bsize, device, stream};
    st.allocated += bsize;
    st.peak = std::max(st.peak, st.allocated);
#ifdef TESSERA_CUDA_EMULATOR_HOOKS
    // On the emulator a reused block is poisoned as a fresh cudaMalloc is (0xFF: NaN, -1), so
    // reading memory a kernel never wrote shows instead of returning an old tensor's values.
    DeviceGuard poison_guard(device);
    (void)cudaMemsetAsync(p, 0xFF, bsize, stream);
#endif
    return p;
  }
  DeviceGuard guard(device);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the error state
    free_cached_locked(device);
    err = cudaMalloc(&p, size);
  }
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    std::size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    std::ostringstream os;
    os << "CUDA out of memory on cuda:" << device << ": tried to allocate " << bytes_str(size)
       << " (cudaMalloc: " << cudaGetErrorName(err) << ", " << cudaGetErrorString(err) << "); Tessera holds "
       << bytes_str(st.allocated) << " in tensors and " << bytes_str(st.reserved) << " reserved; the device has "
       << bytes_str(free_b) << " free of " << bytes_str(total_b) << " [" << __FILE__ << ":" << __LINE__ << "]";
    throw CudaError(os.str());
  }
  st.num_device_mallocs += 1;
  st.reserved += size;
  live_[p] = Block{size, device, stream};
  st.allocated += size;
  st.peak = std::max(st.peak, st.allocated);
  return p;
}

void CachingAllocator::release(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) return;  // not ours: nothing to do (never throw from a deleter)
  Block b = it->second;
  live_.erase(it);
  stats_locked(b.device).allocated -= b.size;
  free_[PoolKey(b.device, b.stream)].emplace(b.size, ptr);
}

void CachingAllocator::free_cached_locked(int device) {
  for (auto& [key, pool] : free_) {
    if (device >= 0 && key.first != device) continue;
    if (pool.empty()) continue;
    DeviceGuard guard(key.first);
    // cudaFree synchronises the device, so queued kernels using these blocks are done.
    for (auto& [size, p] : pool) {
      TESSERA_CUDA_CHECK(cudaFree(p));
      stats_locked(key.first).reserved -= size;
    }
    pool.clear();
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked(-1);
}

MemoryStats CachingAllocator::stats(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_locked(device);
}

void CachingAllocator::reset_peak(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  MemoryStats& st = stats_locked(device);
  st.peak = st.allocated;
}

// ---- pinned staging -----------------------------------------------------------------------
namespace {
constexpr std::size_t kStagingBytes = std::size_t(16) << 20;

struct Staging {
  std::mutex mutex;
  void* buf[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};
  bool init = false;

  void ensure(int device) {
    if (init) return;
    DeviceGuard guard(device);
    for (int i = 0; i < 2; ++i) {
      TESSERA_CUDA_CHECK(cudaMallocHost(&buf[i], kStagingBytes));
      TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming));
    }
    init = true;
  }
};

Staging& staging(int device) {
  static std::mutex m;
  static std::map<int, Staging*>* all = new std::map<int, Staging*>();  // never destroyed
  std::lock_guard<std::mutex> lock(m);
  Staging*& s = (*all)[device];
  if (s == nullptr) s = new Staging();
  return *s;
}
}  // namespace

void copy_host_to_device(void* dst, const void* src, std::size_t nbytes, int device) {
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  DeviceContext& ctx = device_context(device);
  Staging& s = staging(device);
  std::lock_guard<std::mutex> lock(s.mutex);
  s.ensure(device);
  std::size_t done = 0;
  int c = 0;
  while (done < nbytes) {
    const std::size_t len = std::min(kStagingBytes, nbytes - done);
    const int k = c & 1;
    TESSERA_CUDA_CHECK(cudaEventSynchronize(s.done[k]));  // previous use of this buffer finished
    std::memcpy(s.buf[k], static_cast<const char*>(src) + done, len);
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + done, s.buf[k], len,
                                       cudaMemcpyHostToDevice, ctx.stream));
    TESSERA_CUDA_CHECK(cudaEventRecord(s.done[k], ctx.stream));
    done += len;
    ++c;
  }
}

void copy_device_to_host(void* dst, const void* src, std::size_t nbytes, int device) {
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  DeviceContext& ctx = device_context(device);
  Staging& s = staging(device);
  std::lock_guard<std::mutex> lock(s.mutex);
  s.ensure(device);
  std::size_t prev_off = 0, prev_len = 0;
  int c = 0;
  for (std::size_t off = 0; off < nbytes; off += kStagingBytes, ++c) {
    const std::size_t len = std::min(kStagingBytes, nbytes - off);
    const int k = c & 1;
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(s.buf[k], static_cast<const char*>(src) + off, len,
                                       cudaMemcpyDeviceToHost, ctx.stream));
    TESSERA_CUDA_CHECK(cudaEventRecord(s.done[k], ctx.stream));
    if (c > 0) {
      const int pk = (c - 1) & 1;
      TESSERA_CUDA_CHECK(cudaEventSynchronize(s.done[pk]));
      std::memcpy(static_cast<char*>(dst) + prev_off, s.buf[pk], prev_len);
    }
    prev_off = off;
    prev_len = len;
  }
  const int lk = (c - 1) & 1;
  TESSERA_CUDA_CHECK(cudaEventSynchronize(s.done[lk]));
  std::memcpy(static_cast<char*>(dst) + prev_off, s.buf[lk], prev_len);
}

}  // namespace tessera::cuda::detail
