// The CUDA runtime API functions Tessera's CUDA backend calls, emulated on the host (see
// emu.hpp for the memory model). Each follows the CUDA Runtime API reference: the same
// arguments are rejected with the same error codes where the reference states them.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <vector>
#include <sstream>
#include <string>

#include "emu.hpp"
#include "emu_internal.hpp"

namespace tessera_emu {

namespace {

struct Allocation {
  char* mapping;        // start of the mmap'd range
  std::size_t pages;    // bytes of accessible pages (guard page after them)
  std::size_t size;     // bytes requested
  int device;           // current device at cudaMalloc
};

std::recursive_mutex g_mutex;
std::map<std::uintptr_t, Allocation>& allocations() {  // keyed by the pointer handed out
  static auto* m = new std::map<std::uintptr_t, Allocation>();
  return *m;
}
int g_access_depth = 0;
thread_local bool t_uncounted = false;  // emulator-only work (poison_device_memory): no operation
std::size_t g_in_use = 0;
thread_local cudaError_t t_last_error = cudaSuccess;
thread_local int t_device = 0;
std::map<const void*, int>& streams() { static auto* s = new std::map<const void*, int>(); return *s; }  // -> device
std::set<const void*>& events() { static auto* s = new std::set<const void*>(); return *s; }
std::map<std::uintptr_t, std::size_t>& pinned() {  // start -> bytes
  static auto* s = new std::map<std::uintptr_t, std::size_t>();
  return *s;
}
bool is_pinned(const void* p, std::size_t bytes) {
  const auto key = reinterpret_cast<std::uintptr_t>(p);
  auto it = pinned().upper_bound(key);
  if (it == pinned().begin()) return false;
  --it;
  return key + bytes <= it->first + it->second;
}

// cudaMemcpyAsync between device memory and pinned host memory completes only when the host
// waits for it: a device-to-host copy takes its data at the call (stream order: the device
// work before it has run) but lands in the pinned buffer only at a cudaEventSynchronize /
// cudaEventQuery of an event recorded after it, a cudaStreamSynchronize of its stream, a
// cudaDeviceSynchronize or cudaFree*; a host-to-device copy reads the pinned buffer at the
// next device work or such a wait. So host code that reads or refills a pinned buffer
// without waiting for the right thing sees what a GPU may show it.
// TESSERA_EMU_EAGER_ASYNC=1 copies at the call instead.
struct PendingCopy {
  void* dst;
  const void* src;
  std::size_t count;
  bool to_host;               // device -> pinned host (data holds the bytes taken at the call)
  cudaStream_t stream;
  unsigned long long seq;     // position in the queue
  std::vector<char> data;
};
std::vector<PendingCopy>& pending() { static auto* v = new std::vector<PendingCopy>(); return *v; }
unsigned long long g_copy_seq = 0;  // copies enqueued so far
bool g_flushing = false;

// Host drains (emu.hpp): g_work counts device work queued so far; a wait for position `upto`
// that leaves fewer than kDrainSlack operations queued after it, for work beyond g_drained,
// is a drain.
constexpr unsigned long long kDrainSlack = 8;
unsigned long long g_work = 0, g_drained = 0;
std::uint64_t g_drains = 0;
void note_work() {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  ++g_work;
}
/// The host waited until device work up to position `upto` had finished.
void host_waited(unsigned long long upto) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (g_work - upto < kDrainSlack && upto > g_drained) ++g_drains;
  if (upto > g_drained) g_drained = upto;
}
/// The host waited until all device work queued so far had finished.
void host_waited_all() {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  host_waited(g_work);
}

std::size_t page_size() {
  static const std::size_t p = std::size_t(sysconf(_SC_PAGESIZE));
  return p;
}

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* e = std::getenv(name);
  if (e == nullptr || *e == '\0') return fallback;
  return std::size_t(std::strtoull(e, nullptr, 10));
}

int device_count() { return int(env_size("TESSERA_EMU_DEVICES", 1)); }
int sm_count() { return int(env_size("TESSERA_EMU_SMS", 4)); }

/// TESSERA_EMU_PROTECT=0 leaves device memory accessible to host code at all times: faster
/// (the mprotect calls around every kernel dominate large runs), but a host dereference of a
/// device pointer then goes unnoticed.
bool protecting() {
  static const bool on = [] {
    const char* e = std::getenv("TESSERA_EMU_PROTECT");
    return e == nullptr || std::string(e) != "0";
  }();
  return on;
}

void protect(const Allocation& a, bool accessible) {
  if (!protecting() && !accessible) return;
  mprotect(a.mapping, a.pages, accessible ? PROT_READ | PROT_WRITE : PROT_NONE);
}

/// The allocation containing p, or nullptr.
const Allocation* find(const void* p, std::uintptr_t* start = nullptr) {
  auto& m = allocations();
  const auto key = reinterpret_cast<std::uintptr_t>(p);
  auto it = m.upper_bound(key);
  if (it == m.begin()) return nullptr;
  --it;
  if (key >= it->first + it->second.size && !(it->second.size == 0 && key == it->first)) return nullptr;
  if (start) *start = it->first;
  return &it->second;
}

cudaError_t fail(cudaError_t e, const std::string& message) {
  diagnose(message);
  t_last_error = e;
  return e;
}

void segv_handler(int sig, siginfo_t* info, void*) {
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  std::string where = "not device memory";
  for (const auto& [start, a] : allocations()) {
    const auto lo = reinterpret_cast<std::uintptr_t>(a.mapping);
    if (addr >= lo && addr < lo + a.pages + page_size()) {
      char buf[160];
      if (addr >= start && addr < start + a.size)
        std::snprintf(buf, sizeof buf, "inside a device allocation of %zu bytes at %p", a.size, (void*)start);
      else
        std::snprintf(buf, sizeof buf, "%lld bytes from a device allocation of %zu bytes at %p",
                      (long long)(addr - start), a.size, (void*)start);
      where = buf;
      break;
    }
  }
  const char* work = running_work();
  std::fprintf(stderr, "cuda-emu: memory fault at %p (%s) %s%s%s\n", info->si_addr, where.c_str(),
               g_access_depth > 0 ? "during emulated device work: a kernel or library call read or wrote out of bounds"
                                  : "in host code: device memory was dereferenced on the host",
               g_access_depth > 0 && work ? "; running: " : "", g_access_depth > 0 && work ? work : "");
  if (info->si_addr == nullptr)
    std::fprintf(stderr, "cuda-emu: (a fault at address 0 is often a misaligned 16-byte vector access)\n");
  std::fflush(stderr);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

/// (Re)installs the fault report for SIGSEGV/SIGBUS when another handler has replaced it (test
/// frameworks install their own per test case and restore the previous one afterwards).
void install_fault_handler() {
  for (int sig : {SIGSEGV, SIGBUS}) {
    struct sigaction old {};
    sigaction(sig, nullptr, &old);
    if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == segv_handler) continue;
    struct sigaction sa {};
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(sig, &sa, nullptr);
  }
}

namespace {

const char* error_name(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    default: return "cudaErrorUnknown";
  }
}

}  // namespace

// ---- emu.hpp / emu_internal.hpp ---------------------------------------------------------------
/// Completes the pending copies `which` selects (host-to-device ones only when
/// host_to_device_only), in queue order.
template <typename Which>
void complete_copies(Which which, bool host_to_device_only) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (g_flushing || pending().empty()) return;
  g_flushing = true;
  std::vector<PendingCopy> keep, work;
  for (PendingCopy& c : pending())
    ((!host_to_device_only || !c.to_host) && which(c) ? work : keep).push_back(std::move(c));
  pending().swap(keep);
  {
    DeviceAccess access;
    for (const PendingCopy& c : work) std::memmove(c.dst, c.to_host ? c.data.data() : c.src, c.count);
  }
  g_flushing = false;
}

void flush_pending_copies() {
  complete_copies([](const PendingCopy&) { return true; }, false);
}

const char*& running_work() {
  static thread_local const char* what = nullptr;
  return what;
}

DeviceAccess::DeviceAccess() {
  // Device work follows the host-to-device copies queued before it (stream order).
  complete_copies([](const PendingCopy&) { return true; }, true);
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (g_access_depth == 0 && !g_flushing && !t_uncounted) note_work();
  if (g_access_depth++ == 0 && protecting())
    for (auto& [p, a] : allocations()) protect(a, true);
}
DeviceAccess::~DeviceAccess() {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (--g_access_depth == 0 && protecting())
    for (auto& [p, a] : allocations()) protect(a, false);
}

bool is_device_range(const void* p, std::size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  std::uintptr_t start = 0;
  const Allocation* a = find(p, &start);
  if (a == nullptr) return false;
  const auto off = reinterpret_cast<std::uintptr_t>(p) - start;
  return off + bytes <= a->size;
}
bool is_device_pointer(const void* p) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  return find(p) != nullptr;
}
bool kernel_may_access(const void* p) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (find(p) != nullptr || is_pinned(p, 0)) return true;
  const char* c = static_cast<const char*>(p);
  std::uintptr_t start = 0;
  const Allocation* a = find(c - 1, &start);  // one past the end of an allocation
  return a != nullptr && reinterpret_cast<std::uintptr_t>(c) == start + a->size;
}
void diagnose(const std::string& message) {
  std::fprintf(stderr, "cuda-emu: %s\n", message.c_str());
  std::fflush(stderr);
}
int device_of(const void* p) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  const Allocation* a = find(p);
  return a ? a->device : -1;
}
int current_device() { return t_device; }
std::string wrong_device(const void* p) {
  const int d = device_of(p);
  if (d < 0 || d == t_device) return "";
  std::ostringstream s;
  s << p << " is memory of cuda:" << d << " but the current device is cuda:" << t_device
    << " (a missing cudaSetDevice / DeviceGuard?)";
  return s.str();
}
std::size_t total_memory() { return env_size("TESSERA_EMU_MEMORY", std::size_t(4) << 30); }
std::uint64_t host_drains() {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  return g_drains;
}
void poison_device_memory(void* p, std::size_t bytes) {
  if (bytes == 0) return;
  if (!is_device_range(p, bytes)) {
    fail(cudaErrorInvalidValue, "poison_device_memory: range is not device memory");
    return;
  }
  t_uncounted = true;
  {
    DeviceAccess access;  // after the host-to-device copies queued before it, as a memset
    std::memset(p, 0xFF, bytes);
  }
  t_uncounted = false;
}
std::uint64_t device_operations() {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  return g_work;
}

void record_launch_failure(cudaError_t error, const std::string& message) { fail(error, message); }
void check_stream(cudaStream_t stream, const char* what) {
  const auto v = reinterpret_cast<std::uintptr_t>(stream);
  if (v <= 2) return;  // 0, cudaStreamLegacy, cudaStreamPerThread
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  auto it = streams().find(stream);
  if (it == streams().end()) {
    fail(cudaErrorInvalidResourceHandle, std::string(what) + ": stream is not a live stream");
  } else if (it->second != t_device) {
    fail(cudaErrorInvalidResourceHandle, std::string(what) + ": stream of cuda:" + std::to_string(it->second) +
                                             " used while the current device is cuda:" + std::to_string(t_device));
  }
}

}  // namespace tessera_emu

using namespace tessera_emu;

extern "C" {

// ---- memory ------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** devPtr, size_t size) {
  if (devPtr == nullptr) return fail(cudaErrorInvalidValue, "cudaMalloc: devPtr is null");
  install_fault_handler();
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (size > total_memory() - g_in_use) {
    *devPtr = nullptr;
    return fail(cudaErrorMemoryAllocation,
                "cudaMalloc(" + std::to_string(size) + "): out of emulated device memory (" + std::to_string(g_in_use) +
                    " of " + std::to_string(total_memory()) + " bytes in use; TESSERA_EMU_MEMORY sets the total)");
  }
  const std::size_t ps = page_size();
  const std::size_t rounded = (size + 255) / 256 * 256;
  const std::size_t pages = (rounded + ps - 1) / ps * ps;
  void* m = mmap(nullptr, pages + ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return fail(cudaErrorMemoryAllocation, "cudaMalloc: mmap failed");
  Allocation a{static_cast<char*>(m), pages, size, t_device};
  // End-aligned (256-byte granularity) so that an overrun reaches the guard page soon.
  char* p = a.mapping + (pages - rounded);
  protect(a, true);
  std::memset(p, 0xFF, rounded);  // the slack up to the 256-byte granule too
  if (g_access_depth == 0) protect(a, false);
  allocations().emplace(reinterpret_cast<std::uintptr_t>(p), a);
  g_in_use += size;
  *devPtr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* devPtr) {
  flush_pending_copies();
  if (devPtr == nullptr) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  auto it = allocations().find(reinterpret_cast<std::uintptr_t>(devPtr));
  if (it == allocations().end())
    return fail(cudaErrorInvalidDevicePointer, "cudaFree: pointer was not returned by cudaMalloc (or freed twice)");
  munmap(it->second.mapping, it->second.pages + page_size());
  g_in_use -= it->second.size;
  allocations().erase(it);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (ptr == nullptr) return fail(cudaErrorInvalidValue, "cudaMallocHost: ptr is null");
  *ptr = std::aligned_alloc(256, (size + 255) / 256 * 256 + 256);
  if (*ptr == nullptr) return fail(cudaErrorMemoryAllocation, "cudaMallocHost: out of memory");
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  pinned()[reinterpret_cast<std::uintptr_t>(*ptr)] = size;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  flush_pending_copies();
  if (ptr == nullptr) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (!pinned().erase(reinterpret_cast<std::uintptr_t>(ptr))) return fail(cudaErrorInvalidValue, "cudaFreeHost: pointer was not returned by cudaMallocHost");
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (free) *free = total_memory() - g_in_use;
  if (total) *total = total_memory();
  return cudaSuccess;
}

static cudaError_t copy(void* dst, const void* src, size_t count, cudaMemcpyKind kind, const char* what) {
  if (count == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return fail(cudaErrorInvalidValue, std::string(what) + ": null pointer");
  const bool dd = is_device_range(dst, count), sd = is_device_range(src, count);
  const bool dany = is_device_pointer(dst), sany = is_device_pointer(src);
  auto bad = [&](const char* why) {
    return fail(cudaErrorInvalidValue, std::string(what) + " of " + std::to_string(count) + " bytes: " + why);
  };
  switch (kind) {
    case cudaMemcpyHostToDevice:
      if (!dd) return bad(dany ? "destination range runs past its device allocation" : "destination is not device memory");
      if (sany) return bad("source is device memory but the kind says host");
      break;
    case cudaMemcpyDeviceToHost:
      if (!sd) return bad(sany ? "source range runs past its device allocation" : "source is not device memory");
      if (dany) return bad("destination is device memory but the kind says host");
      break;
    case cudaMemcpyDeviceToDevice:
      if (!dd || !sd) return bad("source and destination must both lie inside device allocations");
      break;
    case cudaMemcpyHostToHost:
      if (dany || sany) return bad("kind says host to host but a pointer is device memory");
      break;
    case cudaMemcpyDefault:
      if ((dany && !dd) || (sany && !sd)) return bad("a range runs past its device allocation");
      break;
    default:
      return fail(cudaErrorInvalidMemcpyDirection, std::string(what) + ": invalid cudaMemcpyKind");
  }
  DeviceAccess access;
  std::memmove(dst, src, count);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  const cudaError_t e = copy(dst, src, count, kind, "cudaMemcpy");
  host_waited_all();  // synchronous: returns after all device work queued before it
  return e;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  check_stream(stream, "cudaMemcpyAsync");
  static const bool eager = std::getenv("TESSERA_EMU_EAGER_ASYNC") != nullptr;
  const void* host = kind == cudaMemcpyDeviceToHost ? static_cast<const void*>(dst)
                     : kind == cudaMemcpyHostToDevice ? src
                                                      : nullptr;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  const bool defer = !eager && count > 0 && host != nullptr && is_pinned(host, count) &&
                     (kind == cudaMemcpyDeviceToHost ? is_device_range(src, count) : is_device_range(dst, count));
  if (!defer) return copy(dst, src, count, kind, "cudaMemcpyAsync");
  PendingCopy c{dst, src, count, kind == cudaMemcpyDeviceToHost, stream, g_copy_seq++, {}};
  if (!c.to_host) note_work();  // a device-to-host copy counts through its DeviceAccess below
  if (c.to_host) {
    DeviceAccess access;  // runs earlier host-to-device copies first
    c.data.assign(static_cast<const char*>(src), static_cast<const char*>(src) + count);
  }
  pending().push_back(std::move(c));
  return cudaSuccess;
}
cudaError_t cudaMemcpyPeer(void* dst, int dstDevice, const void* src, int srcDevice, size_t count) {
  if (dstDevice < 0 || dstDevice >= device_count() || srcDevice < 0 || srcDevice >= device_count())
    return fail(cudaErrorInvalidDevice, "cudaMemcpyPeer: device out of range");
  return copy(dst, src, count, cudaMemcpyDeviceToDevice, "cudaMemcpyPeer");
}
cudaError_t cudaMemset(void* devPtr, int value, size_t count) {
  if (count == 0) return cudaSuccess;
  if (!is_device_range(devPtr, count)) return fail(cudaErrorInvalidValue, "cudaMemset: range is not device memory");
  DeviceAccess access;
  std::memset(devPtr, value, count);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  check_stream(stream, "cudaMemsetAsync");
  return cudaMemset(devPtr, value, count);
}

// ---- errors ------------------------------------------------------------------------------
cudaError_t cudaGetLastError(void) {
  const cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return t_last_error; }
const char* cudaGetErrorName(cudaError_t error) { return error_name(error); }
const char* cudaGetErrorString(cudaError_t error) {
  return error == cudaSuccess ? "no error" : error_name(error);
}

// ---- devices -----------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDeviceCount: count is null");
  *count = device_count();
  return *count > 0 ? cudaSuccess : cudaErrorNoDevice;
}
cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice, "cudaSetDevice: no device " + std::to_string(device));
  t_device = device;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDevice: device is null");
  *device = t_device;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
  flush_pending_copies();
  host_waited_all();
  return t_last_error;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  if (v == nullptr) return cudaErrorInvalidValue;
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  if (v == nullptr) return cudaErrorInvalidValue;
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: prop is null");
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties: no such device");
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "Tessera CUDA emulator");
  prop->totalGlobalMem = total_memory();
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 48 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024; prop->maxThreadsDim[1] = 1024; prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7fffffff; prop->maxGridSize[1] = 65535; prop->maxGridSize[2] = 65535;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = sm_count();
  prop->pciDeviceID = device;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: value is null");
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice, "cudaDeviceGetAttribute: no such device");
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = sm_count(); return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    default:
      return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " + std::to_string(int(attr)) +
                                             " is not emulated (add it to tests/cuda_emu/emu_runtime.cpp)");
  }
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func) {
  if (attr == nullptr || func == nullptr) return fail(cudaErrorInvalidValue, "cudaFuncGetAttributes: null argument");
  std::memset(attr, 0, sizeof *attr);
  attr->maxThreadsPerBlock = 1024;
  attr->binaryVersion = 90;
  attr->ptxVersion = 90;
  attr->numRegs = 32;
  return cudaSuccess;
}

// ---- streams and events (everything runs synchronously at the call) ----------------------
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (stream == nullptr) return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: stream is null");
  if (flags > cudaStreamNonBlocking) return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: bad flags");
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  *stream = reinterpret_cast<cudaStream_t>(new char[16]);
  streams()[*stream] = t_device;
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (!streams().erase(stream)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: not a live stream");
  delete[] reinterpret_cast<char*>(stream);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  check_stream(stream, "cudaStreamSynchronize");
  complete_copies([stream](const PendingCopy& c) { return c.stream == stream; }, false);
  host_waited_all();
  return t_last_error;
}

struct EmuEvent {
  std::chrono::steady_clock::time_point t;
  bool recorded = false;
  unsigned flags = 0;
  unsigned long long copies_before = 0;  // pending copies enqueued before the last record
  unsigned long long work_before = 0;    // device work queued before the last record
};
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr) return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags: event is null");
  auto* e = new EmuEvent;
  e->flags = flags;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  *event = reinterpret_cast<cudaEvent_t>(e);
  events().insert(e);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }
static EmuEvent* event_of(cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  return events().count(e) ? reinterpret_cast<EmuEvent*>(e) : nullptr;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  EmuEvent* e = event_of(event);
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy: not a live event");
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  events().erase(e);
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  EmuEvent* e = event_of(event);
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: not a live event");
  check_stream(stream, "cudaEventRecord");
  e->t = std::chrono::steady_clock::now();
  e->recorded = true;
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  e->copies_before = g_copy_seq;
  e->work_before = g_work;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  EmuEvent* e = event_of(event);
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: not a live event");
  // A never-recorded event completes at once and waits for nothing.
  const unsigned long long before = e->copies_before;
  complete_copies([before](const PendingCopy& c) { return c.seq < before; }, false);
  if (e->recorded) host_waited(e->work_before);
  return t_last_error;
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  EmuEvent* e = event_of(event);
  if (e == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaEventQuery: not a live event");
  const unsigned long long before = e->copies_before;
  complete_copies([before](const PendingCopy& c) { return c.seq < before; }, false);
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  EmuEvent *a = event_of(start), *b = event_of(end);
  if (ms == nullptr || a == nullptr || b == nullptr) return fail(cudaErrorInvalidValue, "cudaEventElapsedTime: bad argument");
  if ((a->flags | b->flags) & cudaEventDisableTiming)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event created with cudaEventDisableTiming");
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  check_stream(stream, "cudaStreamWaitEvent");
  if (event_of(event) == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: not a live event");
  return cudaSuccess;
}

}  // extern "C"
