// Tests of the CUDA emulator itself (tests/cuda_emu): built only with TESSERA_CUDA=EMULATE
// (CTest "cuda-emu:selftest"). They check that the device built-ins mean what CUDA defines,
// and that the mistakes the emulator exists to catch are caught: a missing __syncthreads, a
// barrier in divergent code, a shuffle after a lane exited, a host pointer given to a kernel,
// a host dereference of device memory, a bad launch configuration, a wrong memcpy kind.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <cuda_runtime.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "emu.hpp"

namespace {

template <typename T>
T* device_alloc(std::size_t n) {
  void* p = nullptr;
  REQUIRE(cudaMalloc(&p, n * sizeof(T)) == cudaSuccess);
  return static_cast<T*>(p);
}
template <typename T>
std::vector<T> to_host(const T* d, std::size_t n) {
  std::vector<T> h(n);
  REQUIRE(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
  return h;
}

__global__ void shuffles(int* out) {
  const int lane = threadIdx.x;
  const int v = 100 + lane;
  out[0 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 3);
  out[1 * 32 + lane] = __shfl_up_sync(0xffffffffu, v, 5);
  out[2 * 32 + lane] = __shfl_xor_sync(0xffffffffu, v, 6);
  out[3 * 32 + lane] = __shfl_sync(0xffffffffu, v, 7);
  out[4 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 2, 8);  // segments of 8 lanes
}

/// sum of in[0..n) in one block: per-warp shuffles, then shared memory between warps.
__global__ void block_sum(const int* in, int n, int* out) {
  __shared__ int partial[32];
  int s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += in[i];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    int t = 0;
    for (int w = 0; w < int(blockDim.x + 31) / 32; ++w) t += partial[w];
    *out = t;
  }
}

/// Each thread publishes a value and reads its (cyclic) neighbour's: correct only with the
/// barrier. Without it, in any order at least one thread reads before its neighbour writes
/// (the dependencies form a cycle), and gets the poison of unwritten shared memory.
__global__ void neighbour(int* out, int salt, bool with_barrier) {
  __shared__ int sh[256];
  sh[threadIdx.x] = int(threadIdx.x) * 3 + salt;
  if (with_barrier) __syncthreads();
  out[threadIdx.x] = sh[(threadIdx.x + 1) % blockDim.x];
}

__global__ void divergent_barrier(int* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void shuffle_after_exit(int* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, int(threadIdx.x), 1);
}

__global__ void fill(int* out, int n, int v) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = v;
}

__global__ void grid_index(int* out) {
  const int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  out[b * int(blockDim.x * blockDim.y * blockDim.z) + t] = b * 1000 + t;
}

/// Runs f in a child process; returns the child's stderr and whether it died of SIGSEGV.
template <typename F>
std::pair<bool, std::string> in_child(F f) {
  int fd[2];
  REQUIRE(pipe(fd) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fd[1], 2);
    close(fd[0]);
    f();
    _exit(0);
  }
  close(fd[1]);
  std::string err;
  char buf[512];
  ssize_t k;
  while ((k = read(fd[0], buf, sizeof buf)) > 0) err.append(buf, std::size_t(k));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, err};
}

}  // namespace

TEST_CASE("emulator: warp shuffles follow the CUDA definitions", "[emu]") {
  int* d = device_alloc<int>(5 * 32);
  shuffles<<<1, 32>>>(d);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  const auto h = to_host(d, 5 * 32);
  for (int l = 0; l < 32; ++l) {
    INFO("lane " << l);
    CHECK(h[0 * 32 + l] == 100 + (l + 3 < 32 ? l + 3 : l));
    CHECK(h[1 * 32 + l] == 100 + (l >= 5 ? l - 5 : l));
    CHECK(h[2 * 32 + l] == 100 + (l ^ 6));
    CHECK(h[3 * 32 + l] == 107);
    CHECK(h[4 * 32 + l] == 100 + (l % 8 + 2 < 8 ? l + 2 : l));
  }
  cudaFree(d);
}

TEST_CASE("emulator: a block reduction with barriers is exact in every thread order", "[emu]") {
  const int n = 1000;
  std::vector<int> h(n);
  int want = 0;
  for (int i = 0; i < n; ++i) want += (h[std::size_t(i)] = (i * 37) % 101 - 50);
  int* in = device_alloc<int>(n);
  int* out = device_alloc<int>(1);
  REQUIRE(cudaMemcpy(in, h.data(), n * sizeof(int), cudaMemcpyHostToDevice) == cudaSuccess);
  for (int threads : {32, 96, 256, 1024}) {
    block_sum<<<1, threads>>>(in, n, out);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    CHECK(to_host(out, 1)[0] == want);
  }
  cudaFree(in);
  cudaFree(out);
}

TEST_CASE("emulator: a missing __syncthreads changes the result", "[emu]") {
  int* d = device_alloc<int>(256);
  for (int salt : {0, 1}) {
    neighbour<<<1, 256>>>(d, salt, true);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    const auto good = to_host(d, 256);
    for (int t = 0; t < 256; ++t) REQUIRE(good[std::size_t(t)] == ((t + 1) % 256) * 3 + salt);
  }
  neighbour<<<1, 256>>>(d, 2, false);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  const auto racy = to_host(d, 256);
  int stale = 0;
  for (int t = 0; t < 256; ++t) {
    const int v = racy[std::size_t(t)], fresh = ((t + 1) % 256) * 3 + 2;
    REQUIRE((v == fresh || v == -1));  // its neighbour's value, or the 0xFF poison of unwritten shared memory
    stale += v != fresh;
  }
  CHECK(stale >= 1);
  cudaFree(d);
}

TEST_CASE("emulator: a barrier in divergent code is a launch failure", "[emu]") {
  int* d = device_alloc<int>(32);
  divergent_barrier<<<1, 32>>>(d);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  CHECK(cudaGetLastError() == cudaSuccess);  // reported once (a GPU would keep this error: sticky)
  cudaFree(d);
}

TEST_CASE("emulator: a full-mask shuffle after a lane exited is a launch failure", "[emu]") {
  int* d = device_alloc<int>(32);
  shuffle_after_exit<<<1, 32>>>(d);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  cudaFree(d);
}

TEST_CASE("emulator: launch configurations and grid indices", "[emu]") {
  int* d = device_alloc<int>(2 * 3 * 2 * 4 * 2 * 3);
  grid_index<<<dim3(2, 3, 2), dim3(4, 2, 3)>>>(d);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  const auto h = to_host(d, 2 * 3 * 2 * 4 * 2 * 3);
  for (int b = 0; b < 12; ++b)
    for (int t = 0; t < 24; ++t) CHECK(h[std::size_t(b * 24 + t)] == b * 1000 + t);
  fill<<<1, 2048>>>(d, 10, 1);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  fill<<<0, 32>>>(d, 10, 1);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  fill<<<1, 32, 64 * 1024>>>(d, 10, 1);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  cudaFree(d);
}

TEST_CASE("emulator: device memory is poisoned, bounded and separate from host memory", "[emu]") {
  float* d = device_alloc<float>(100);
  const auto fresh = to_host(d, 100);
  for (float v : fresh) CHECK(std::isnan(v));
  std::vector<float> h(100, 1.5f);
  CHECK(cudaMemcpy(d, h.data(), 100 * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
  CHECK(cudaMemcpy(d, h.data(), 101 * sizeof(float), cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  CHECK(cudaMemcpy(d, h.data(), 100 * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  (void)cudaGetLastError();
  std::vector<int> host_ints(10);
  fill<<<1, 32>>>(host_ints.data(), 10, 7);  // a host pointer: faults on a GPU
  CHECK(cudaGetLastError() == cudaErrorIllegalAddress);
  CHECK(host_ints[0] == 0);
  void* p = nullptr;
  CHECK(cudaMalloc(&p, std::size_t(1) << 50) == cudaErrorMemoryAllocation);
  (void)cudaGetLastError();
  CHECK(cudaFree(h.data()) == cudaErrorInvalidDevicePointer);
  (void)cudaGetLastError();
  cudaFree(d);
}

TEST_CASE("emulator: host code dereferencing device memory faults, and says so", "[emu]") {
  auto [segv, err] = in_child([] {
    float* d = nullptr;
    cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(float));
    volatile float x = d[3];  // host read of device memory
    (void)x;
  });
  CHECK(segv);
  CHECK_THAT(err, Catch::Contains("in host code: device memory was dereferenced on the host"));
  auto [segv2, err2] = in_child([] {
    int* d = nullptr;
    cudaMalloc(reinterpret_cast<void**>(&d), 1000 * sizeof(int));
    fill<<<4, 256>>>(d, 1000 + 2048, 1);  // writes far past the allocation
  });
  CHECK(segv2);
  CHECK_THAT(err2, Catch::Contains("during emulated device work"));
}

namespace {
/// Records the order in which blocks ran (a counter in device memory).
__global__ void block_order(int* counter, int* order) {
  if (threadIdx.x == 0) order[blockIdx.x] = atomicAdd(counter, 1);
}
}  // namespace

TEST_CASE("emulator: blocks run in a shuffled order, each exactly once", "[emu]") {
  const int n = 200;
  int* counter = device_alloc<int>(1);
  int* order = device_alloc<int>(n);
  REQUIRE(cudaMemset(counter, 0, sizeof(int)) == cudaSuccess);
  block_order<<<n, 32>>>(counter, order);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  auto h = to_host(order, n);
  int in_place = 0;
  for (int i = 0; i < n; ++i) in_place += h[std::size_t(i)] == i;
  std::vector<int> sorted = h;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < n; ++i) REQUIRE(sorted[std::size_t(i)] == i);  // a permutation
  CHECK(in_place < n / 2);  // not the sequential order
  cudaFree(counter);
  cudaFree(order);
}

namespace {
__global__ void read_uninitialised_shared(int* out) {
  __shared__ int sh[64];
  if (threadIdx.x == 0) sh[0] = 5;
  __syncthreads();
  out[threadIdx.x] = sh[threadIdx.x];
}
}  // namespace

TEST_CASE("emulator: shared memory no thread wrote reads as 0xFF bytes in every block", "[emu]") {
  int* d = device_alloc<int>(64);
  for (int rep = 0; rep < 2; ++rep) {  // the second launch must not see the first one's values
    read_uninitialised_shared<<<1, 64>>>(d);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    const auto h = to_host(d, 64);
    CHECK(h[0] == 5);
    for (int t = 1; t < 64; ++t) CHECK(h[std::size_t(t)] == -1);
  }
  cudaFree(d);
}

TEST_CASE("emulator: async copies to pinned memory land only when the host waits", "[emu]") {
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  int* d = device_alloc<int>(16);
  int* pinned = nullptr;
  REQUIRE(cudaMallocHost(reinterpret_cast<void**>(&pinned), 16 * sizeof(int)) == cudaSuccess);
  for (int i = 0; i < 16; ++i) pinned[i] = 100 + i;
  REQUIRE(cudaMemcpyAsync(d, pinned, 16 * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
  pinned[3] = -7;  // refilled before the copy ran: a GPU may copy -7
  REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);
  CHECK(to_host(d, 16)[3] == -7);
  fill<<<1, 32, 0, s>>>(d, 16, 42);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(pinned, d, 16 * sizeof(int), cudaMemcpyDeviceToHost, s) == cudaSuccess);
  CHECK(pinned[0] == 100);  // not there yet
  REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);
  CHECK(pinned[0] == 42);
  std::vector<int> pageable(16, 0);
  REQUIRE(cudaMemcpyAsync(pageable.data(), d, 16 * sizeof(int), cudaMemcpyDeviceToHost, s) == cudaSuccess);
  CHECK(pageable[5] == 42);  // pageable memory: the copy is synchronous, as in CUDA
  cudaFreeHost(pinned);
  cudaFree(d);
  cudaStreamDestroy(s);
}

namespace {
__global__ void barriers_at_two_sites(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}
__global__ void __launch_bounds__(64) bounded_kernel(int* out) { out[threadIdx.x] = int(threadIdx.x); }
// With a minimum-blocks argument the bound is still the first argument.
__global__ void __launch_bounds__(64, 2) bounded_min_blocks_kernel(int* out) { out[threadIdx.x] = int(threadIdx.x); }
}  // namespace

TEST_CASE("emulator: threads at different __syncthreads calls, and launches past __launch_bounds__, fail", "[emu]") {
  int* d = device_alloc<int>(128);
  barriers_at_two_sites<<<1, 32>>>(d);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  bounded_kernel<<<1, 64>>>(d);
  CHECK(cudaGetLastError() == cudaSuccess);
  bounded_kernel<<<1, 128>>>(d);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  bounded_min_blocks_kernel<<<1, 64>>>(d);
  CHECK(cudaGetLastError() == cudaSuccess);
  bounded_min_blocks_kernel<<<1, 128>>>(d);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  cudaFree(d);
}

TEST_CASE("emulator: waiting on an event recorded before a copy does not complete the copy", "[emu]") {
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  cudaEvent_t before = nullptr, after = nullptr;
  REQUIRE(cudaEventCreateWithFlags(&before, cudaEventDisableTiming) == cudaSuccess);
  REQUIRE(cudaEventCreateWithFlags(&after, cudaEventDisableTiming) == cudaSuccess);
  int* d = device_alloc<int>(8);
  fill<<<1, 32, 0, s>>>(d, 8, 9);
  int* pinned = nullptr;
  REQUIRE(cudaMallocHost(reinterpret_cast<void**>(&pinned), 8 * sizeof(int)) == cudaSuccess);
  for (int i = 0; i < 8; ++i) pinned[i] = -3;
  REQUIRE(cudaEventRecord(before, s) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(pinned, d, 8 * sizeof(int), cudaMemcpyDeviceToHost, s) == cudaSuccess);
  fill<<<1, 32, 0, s>>>(d, 8, 4);  // later device work does not change what the copy delivers
  REQUIRE(cudaEventSynchronize(before) == cudaSuccess);
  CHECK(pinned[0] == -3);  // the wrong event: the copy may not have happened
  REQUIRE(cudaEventRecord(after, s) == cudaSuccess);
  REQUIRE(cudaEventSynchronize(after) == cudaSuccess);
  CHECK(pinned[0] == 9);
  cudaFreeHost(pinned);
  cudaFree(d);
  cudaEventDestroy(before);
  cudaEventDestroy(after);
  cudaStreamDestroy(s);
}

TEST_CASE("emulator: host drains count waits that leave no device work queued", "[emu]") {
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  cudaEvent_t early = nullptr, late = nullptr;
  REQUIRE(cudaEventCreateWithFlags(&early, cudaEventDisableTiming) == cudaSuccess);
  REQUIRE(cudaEventCreateWithFlags(&late, cudaEventDisableTiming) == cudaSuccess);
  int* d = device_alloc<int>(8);
  REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);
  const auto base = tessera_emu::host_drains();
  REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);  // nothing queued since: no drain
  CHECK(tessera_emu::host_drains() == base);
  fill<<<1, 32, 0, s>>>(d, 8, 1);
  REQUIRE(cudaEventRecord(early, s) == cudaSuccess);
  for (int i = 0; i < 8; ++i) fill<<<1, 32, 0, s>>>(d, 8, 2);
  REQUIRE(cudaEventSynchronize(early) == cudaSuccess);  // 8 kernels still queued after it
  CHECK(tessera_emu::host_drains() == base);
  REQUIRE(cudaEventRecord(late, s) == cudaSuccess);
  fill<<<1, 32, 0, s>>>(d, 8, 2);
  REQUIRE(cudaEventSynchronize(late) == cudaSuccess);  // one kernel queued after it: a drain
  CHECK(tessera_emu::host_drains() == base + 1);
  fill<<<1, 32, 0, s>>>(d, 8, 3);
  REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);
  CHECK(tessera_emu::host_drains() == base + 2);
  fill<<<1, 32, 0, s>>>(d, 8, 4);
  CHECK(to_host(d, 8)[0] == 4);  // a synchronous cudaMemcpy drains too
  CHECK(tessera_emu::host_drains() == base + 3);
  cudaFree(d);
  cudaEventDestroy(early);
  cudaEventDestroy(late);
  cudaStreamDestroy(s);
}
