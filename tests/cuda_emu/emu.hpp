// Internal interface of Tessera's CUDA emulator (tests/cuda_emu): the pieces shared by the
// emulated CUDA runtime (emu_runtime.cpp), the fiber scheduler that runs kernels
// (emu_scheduler.cpp) and the reference cuBLAS and cuDNN (emu_cublas.cpp, emu_cudnn.cpp).
//
// What the emulator is for: running the CUDA backend's host code and kernels on a machine
// without a GPU, so that index arithmetic, launch configurations, barriers and warp
// shuffles, the cuBLAS/cuDNN calls (argument order, leading dimensions, descriptors,
// alpha/beta) and the caching allocator are checked against the CPU backend in CI. It is
// not a GPU: timing, the memory model, races between blocks and numerics of the real
// libraries are not reproduced. See tests/cuda_emu/README.md.
//
// Device memory: every cudaMalloc is its own mapping, inaccessible (PROT_NONE) except while
// emulated device work runs (a kernel, a memcpy/memset, a cuBLAS or cuDNN call), so host code
// that dereferences a device pointer faults at once, as it would on a GPU; the page after
// each allocation stays inaccessible, so an overrun of the mapping faults too. Fresh
// allocations are filled with 0xFF bytes (NaN for floats, -1 for integers).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace tessera_emu {

/// While an instance lives, every device allocation is readable and writable from host code
/// (nested instances are fine). Emulated library calls take one around their work.
class DeviceAccess {
 public:
  DeviceAccess();
  ~DeviceAccess();
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;
};

/// True when [p, p + bytes) lies inside one live device allocation.
bool is_device_range(const void* p, std::size_t bytes);
/// True when p points into a live device allocation.
bool is_device_pointer(const void* p);
/// What a kernel argument may point at: device memory (or one past the end of an allocation),
/// or pinned host memory from cudaMallocHost (mapped for the device under unified addressing).
bool kernel_may_access(const void* p);

/// The device (cudaSetDevice index) whose cudaMalloc returned the allocation containing p, or
/// -1 when p is not device memory; and the calling thread's current device.
int device_of(const void* p);
int current_device();
/// Empty when p is memory of the current device (or not device memory at all); otherwise a
/// sentence saying whose memory it is. Kernels and library calls may only touch memory of the
/// device they run on (Tessera enables no peer access).
std::string wrong_device(const void* p);

/// Records a diagnostic (printed to stderr with the prefix "cuda-emu: ") for failures a real
/// library would report only as a status code, so a failing test says what was wrong.
void diagnose(const std::string& message);

/// The integer value of an enum argument, read without an enum-typed load, so an invalid value
/// passed by a caller is reported as the library would instead of tripping UBSan's enum check.
template <typename E>
int raw(const E& e) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

/// The emulated device memory size (TESSERA_EMU_MEMORY, default 4 GiB).
std::size_t total_memory();

/// How many times the host has drained the device: waited, for device work queued since its
/// previous drain, until fewer than 8 device operations (a few microseconds of GPU work) were
/// left queued. The waits are cudaStreamSynchronize, cudaDeviceSynchronize, a synchronous
/// cudaMemcpy, and cudaEventSynchronize (up to where the event was recorded). On a GPU a
/// drain leaves the device idle while the host queues the next work; waiting on an older event
/// (a staging buffer's previous use, a step ago) leaves the device busy and is not a drain.
/// Device work is a kernel, a cuBLAS/cuDNN call, a memset or a copy involving device memory;
/// all devices and streams count as one queue.
std::uint64_t host_drains();
/// cuDNN convolution calls (backward data / filter) made with an algorithm whose
/// cudnnFind*AlgorithmEx entry says CUDNN_NON_DETERMINISTIC: deterministic mode must keep
/// this from growing.
std::uint64_t nondeterministic_conv_calls();
/// Device operations queued so far (kernels, cuBLAS/cuDNN calls, memsets, copies involving
/// device memory): the launch count that per-launch overhead multiplies.
std::uint64_t device_operations();

}  // namespace tessera_emu
