// Force-included (g++ -include) into every kernels/*.cu translation unit of the emulated
// CUDA build (TESSERA_CUDA=EMULATE): the device-side built-ins a host compiler lacks.
//
// Each CUDA thread of a block runs as a fiber (emu_scheduler.cpp); blocks run one after
// another on the launching host thread. threadIdx/blockIdx/... are variables the scheduler
// sets before it resumes a fiber. __shared__ variables become function-local thread_local
// statics, which all threads (fibers) of the running block share, as on a GPU. __syncthreads and the warp shuffles
// suspend the fiber until every live thread of the block (or warp) has arrived; arriving at
// different barriers, or shuffling with a full mask after a lane has exited, is reported as a
// kernel failure. The order in which threads run between barriers is shuffled per launch, so
// a missing __syncthreads changes results instead of being hidden by a lucky order.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "emu.hpp"

#undef __global__
#define __global__
#undef __shared__
#define __shared__ static thread_local
#undef __launch_bounds__
#define __launch_bounds__(...)
// Lets kernels/ code test hooks that exist only on the emulator (grid_for's cap).
#define TESSERA_CUDA_EMULATOR_HOOKS 1

namespace tessera_emu {

inline thread_local uint3 t_thread_idx{0, 0, 0};
inline thread_local uint3 t_block_idx{0, 0, 0};
inline thread_local dim3 t_block_dim{1, 1, 1};
inline thread_local dim3 t_grid_dim{1, 1, 1};

/// One launch's geometry, as written between <<< and >>>.
struct LaunchConfig {
  dim3 grid, block;
  std::size_t shared_bytes;
  cudaStream_t stream;
  int max_threads = 0;  // the kernel's __launch_bounds__ (0: none)
  LaunchConfig(dim3 g, dim3 b, std::size_t smem = 0, cudaStream_t s = nullptr)
      : grid(g), block(b), shared_bytes(smem), stream(s) {}
  /// Set by rewrite_launches.py for a kernel declared with __launch_bounds__(n) in the file.
  LaunchConfig& bounded(int n) {
    max_threads = n;
    return *this;
  }
};

/// Runs body once per thread of the grid (emu_scheduler.cpp). Failures (bad configuration,
/// a divergent barrier, an exception in a thread) are reported through cudaGetLastError.
void run_kernel(const LaunchConfig& cfg, const char* name, const std::function<void()>& body);
/// Records a launch failure: kernel argument `index` is a host pointer where the kernel needs
/// device memory (it would fault on a GPU).
void reject_host_pointer_argument(const char* name, int index, const void* p);
/// Records a launch failure: kernel argument `index` is memory of another device.
void reject_foreign_device_argument(const char* name, int index, const void* p);

void sync_block(const char* file, int line);
/// Fills a __shared__ variable with 0xFF bytes the first time a thread of the running block
/// reaches its declaration (rewrite_launches.py inserts the call), so that reading shared
/// memory no thread of this block wrote gives NaN/-1, not a previous block's value or 0.
void poison_shared(void* p, std::size_t bytes);
/// TESSERA_EMU_MAX_GRID=N: kernels/cuda_context.cuh's grid_for returns at most N blocks, so
/// that every grid-stride loop and per-block row loop runs more than one iteration
/// (0: no cap). Read once.
long long max_grid();
/// Fills [p, p + bytes) of device memory with 0xFF bytes, as a fresh cudaMalloc is: the caching
/// allocator calls it for every block it hands out again. Not counted as a device operation
/// (emu.hpp: device_operations, host_drains): a GPU does no such work.
void poison_device_memory(void* p, std::size_t bytes);
/// Exchanges `bytes` of `in` across the calling warp: *out receives lane src_lane's value
/// (or the caller's own when src_lane < 0).
void warp_exchange(const void* in, void* out, std::size_t bytes, int src_lane, unsigned mask);
int lane_id();

template <typename Tuple, std::size_t... I>
bool check_pointer_args(const char* name, const Tuple& t, std::index_sequence<I...>) {
  bool ok = true;
  auto one = [&](int index, const auto& v) {
    using V = std::decay_t<decltype(v)>;
    if constexpr (std::is_pointer_v<V>) {
      if (ok && v != nullptr && !kernel_may_access(v)) {
        reject_host_pointer_argument(name, index, v);
        ok = false;
      } else if (ok && v != nullptr && !wrong_device(v).empty()) {
        reject_foreign_device_argument(name, index, v);
        ok = false;
      }
    }
  };
  (one(int(I), std::get<I>(t)), ...);
  return ok;
}

/// kernel<<<cfg>>>(args...) as rewritten by rewrite_launches.py: `call` invokes the kernel.
/// The arguments are captured once, as a launch does, and every thread gets its own copy.
template <typename Call, typename... A>
void launch(const LaunchConfig& cfg, const char* name, Call call, A&&... args) {
  const std::tuple<std::decay_t<A>...> params(std::forward<A>(args)...);
  if (!check_pointer_args(name, params, std::index_sequence_for<A...>{})) return;
  run_kernel(cfg, name, [&] { std::apply(call, params); });
}

template <typename T>
T shuffle(unsigned mask, T v, int src) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 16, "shuffle of an unsupported type");
  T out;
  warp_exchange(&v, &out, sizeof(T), src, mask);
  return out;
}

}  // namespace tessera_emu

#define threadIdx (::tessera_emu::t_thread_idx)
#define blockIdx (::tessera_emu::t_block_idx)
#define blockDim (::tessera_emu::t_block_dim)
#define gridDim (::tessera_emu::t_grid_dim)

// The call site goes with the barrier: threads of a block waiting at different __syncthreads
// calls are a failure (CUDA requires every thread of the block to reach the same barrier).
#define __syncthreads() ::tessera_emu::sync_block(__FILE__, __LINE__)

// Warp shuffles (CUDA C++ Programming Guide, "Warp Shuffle Functions"): a source lane outside
// the caller's width-segment yields the caller's own value.
template <typename T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
  const int lane = ::tessera_emu::lane_id();
  return ::tessera_emu::shuffle(mask, v, (lane & ~(width - 1)) + (src_lane & (width - 1)));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = ::tessera_emu::lane_id();
  const int seg = lane % width;
  return ::tessera_emu::shuffle(mask, v, seg + int(delta) < width ? lane + int(delta) : -1);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = ::tessera_emu::lane_id();
  const int seg = lane % width;
  return ::tessera_emu::shuffle(mask, v, seg >= int(delta) ? lane - int(delta) : -1);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  const int lane = ::tessera_emu::lane_id();
  const int src = lane ^ lane_mask;
  // an earlier width-group may be read; a later one yields the caller's own value
  return ::tessera_emu::shuffle(mask, v, (src & ~(width - 1)) <= (lane & ~(width - 1)) ? src : -1);
}

// Atomics: blocks and threads never run concurrently in the emulator, so plain updates are
// atomic. They must still be given device memory.
template <typename T>
T atomicAdd(T* address, T v) {
  const T old = *address;
  *address = old + v;
  return old;
}
template <typename T>
T atomicMax(T* address, T v) {
  const T old = *address;
  if (v > old) *address = v;
  return old;
}
template <typename T>
T atomicMin(T* address, T v) {
  const T old = *address;
  if (v < old) *address = v;
  return old;
}
template <typename T>
T atomicExch(T* address, T v) {
  const T old = *address;
  *address = v;
  return old;
}
template <typename T>
T atomicCAS(T* address, T compare, T v) {
  const T old = *address;
  if (old == compare) *address = v;
  return old;
}

template <typename T>
T __ldg(const T* p) { return *p; }
inline void __threadfence() {}
inline void __threadfence_system() {}

// Correctly rounded arithmetic that the device compiler may not contract into FMA: on the
// host (x86-64 without -mfma) nothing is contracted, so these are the plain operations.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; std::memcpy(&x, &i, 4); return x; }

// The integer and floating-point min/max overloads CUDA's math headers declare (floating
// point as fminf/fmaxf: a NaN operand yields the other operand).
#define TESSERA_EMU_MINMAX(T)                              \
  inline T min(T a, T b) { return b < a ? b : a; }       \
  inline T max(T a, T b) { return a < b ? b : a; }
TESSERA_EMU_MINMAX(int)
TESSERA_EMU_MINMAX(unsigned)
TESSERA_EMU_MINMAX(long)
TESSERA_EMU_MINMAX(unsigned long)
TESSERA_EMU_MINMAX(long long)
TESSERA_EMU_MINMAX(unsigned long long)
#undef TESSERA_EMU_MINMAX
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
