#include <cstdio>
#include "allocator.cuh"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <vector>
#include <sstream>

#include "cuda_context.cuh"

namespace tessera::cuda::detail {

namespace {
constexpr std::size_t kSmallLimit = std::size_t(1) << 20;  // 1 MiB
constexpr std::size_t kGranule = 512;

std::string bytes_str(std::size_t b) {
  char buf[48];
  const double d = double(b);
  if (b >= (std::size_t(1) << 40)) std::snprintf(buf, sizeof buf, "%.2f TiB", d / double(std::size_t(1) << 40));
  else if (b >= (std::size_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", d / double(std::size_t(1) << 30));
  else if (b >= (std::size_t(1) << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", d / double(std::size_t(1) << 20));
  else std::snprintf(buf, sizeof buf, "%zu bytes", b);
  return buf;
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
    ::tessera_emu::poison_device_memory(p, bsize);
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
       << bytes_str(free_b) << " free of " << bytes_str(total_b);
    if (total_b > free_b + st.reserved)
      os << " (" << bytes_str(total_b - free_b - st.reserved) << " used by other processes or the CUDA context)";
    os << ". Tessera already returned its cached blocks and retried. Free tensors you no longer need"
          " (and their gradients), or use a smaller batch [" << __FILE__ << ":" << __LINE__ << "]";
    throw OutOfMemoryError(os.str());
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
constexpr std::size_t kRingBytes = std::size_t(32) << 20;
constexpr std::size_t kPieceBytes = kRingBytes / 4;  // largest piece one copy takes at a time

/// A ring of pinned memory per device. Each copy takes the next piece of the ring and records
/// an event after its cudaMemcpyAsync; the host waits only when the ring comes round to a piece
/// whose copy may still be queued. So a host-to-device copy of a batch does not wait for the
/// device work queued before it: the host runs ahead of the device by up to the ring's size,
/// as with PyTorch's pinned-memory copies.
struct Staging {
  struct Piece {
    std::size_t begin, end;
    cudaEvent_t done;
  };
  std::mutex mutex;
  char* ring = nullptr;
  std::size_t head = 0;          ///< where the next piece starts
  std::deque<Piece> in_flight;   ///< oldest first; one stream, so events complete in this order
  std::vector<cudaEvent_t> spare;

  void ensure(int device) {
    if (ring != nullptr) return;
    DeviceGuard guard(device);
    void* p = nullptr;
    TESSERA_CUDA_CHECK(cudaMallocHost(&p, kRingBytes));
    ring = static_cast<char*>(p);
  }
  /// len (<= kPieceBytes) bytes of the ring that no queued copy uses any more.
  char* take(std::size_t len) {
    // Retire the copies that have finished, so in_flight holds only queued ones (many small
    // copies, such as loss.item(), would otherwise pile up until the ring wraps). The newest
    // stays: copy_device_to_host still waits on its event, which must not be recycled yet.
    while (in_flight.size() > 1) {
      const cudaError_t q = cudaEventQuery(in_flight.front().done);
      if (q == cudaErrorNotReady) {
        (void)cudaGetLastError();  // "not ready" is no error; do not leave it for the next check
        break;
      }
      TESSERA_CUDA_CHECK(q);
      spare.push_back(in_flight.front().done);
      in_flight.pop_front();
    }
    len = (len + 255) / 256 * 256;  // pieces stay 256-byte aligned
    if (head + len > kRingBytes) head = 0;
    const std::size_t b = head, e = head + len;
    // Wait for the newest in-flight piece overlapping [b, e): the older ones are done then too.
    std::size_t last = in_flight.size();
    for (std::size_t i = 0; i < in_flight.size(); ++i)
      if (in_flight[i].begin < e && b < in_flight[i].end) last = i;
    if (last < in_flight.size()) {
      TESSERA_CUDA_CHECK(cudaEventSynchronize(in_flight[last].done));
      for (std::size_t i = 0; i <= last; ++i) {
        spare.push_back(in_flight.front().done);
        in_flight.pop_front();
      }
    }
    head = e;
    return ring + b;
  }
  /// Marks the piece at p (len bytes) as used by the copy just queued on `stream`.
  void queued(const char* p, std::size_t len, cudaStream_t stream) {
    cudaEvent_t ev = nullptr;
    if (spare.empty()) {
      TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    } else {
      ev = spare.back();
      spare.pop_back();
    }
    const std::size_t b = std::size_t(p - ring);
    in_flight.push_back(Piece{b, b + len, ev});
    TESSERA_CUDA_CHECK(cudaEventRecord(ev, stream));
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
  for (std::size_t off = 0; off < nbytes; off += kPieceBytes) {
    const std::size_t len = std::min(kPieceBytes, nbytes - off);
    char* piece = s.take(len);
    std::memcpy(piece, static_cast<const char*>(src) + off, len);
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + off, piece, len, cudaMemcpyHostToDevice, ctx.stream));
    s.queued(piece, len, ctx.stream);
  }
}

void copy_device_to_host(void* dst, const void* src, std::size_t nbytes, int device) {
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  DeviceContext& ctx = device_context(device);
  Staging& s = staging(device);
  std::lock_guard<std::mutex> lock(s.mutex);
  s.ensure(device);
  // Pipelined: queue piece k, then wait for piece k-1 and copy it out while k is in flight.
  const char* prev = nullptr;
  std::size_t prev_off = 0, prev_len = 0;
  cudaEvent_t prev_done = nullptr;
  for (std::size_t off = 0;; off += kPieceBytes) {
    const char* piece = nullptr;
    std::size_t len = 0;
    if (off < nbytes) {
      len = std::min(kPieceBytes, nbytes - off);
      piece = s.take(len);
      TESSERA_CUDA_CHECK(cudaMemcpyAsync(const_cast<char*>(piece), static_cast<const char*>(src) + off, len,
                                         cudaMemcpyDeviceToHost, ctx.stream));
      s.queued(piece, len, ctx.stream);
    }
    if (prev != nullptr) {
      TESSERA_CUDA_CHECK(cudaEventSynchronize(prev_done));
      std::memcpy(static_cast<char*>(dst) + prev_off, prev, prev_len);
    }
    if (piece == nullptr) break;
    prev = piece;
    prev_off = off;
    prev_len = len;
    prev_done = s.in_flight.back().done;
  }
  check_device_errors(device);
}

}  // namespace tessera::cuda::detail
