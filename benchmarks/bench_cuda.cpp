// CUDA benchmarks, registered only when CUDA is usable (a CPU-only run lists none of them).
// Each iteration queues `kReps` ops and then synchronises, so launch latency is amortised and
// the time is the GPU's. Bandwidth cases count bytes read + written; compare
// BM_cuda_add and BM_cuda_softmax with BM_cuda_copy_d2d from the same run
// (scripts/gpu-check.sh prints the ratios).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "tessera/cuda.hpp"
#include "tessera/ops.hpp"

using namespace tessera;

namespace {

constexpr int kReps = 5;
constexpr int64_t kElems = int64_t(64) << 20;  // 64 Mi float32 = 256 MiB per tensor

Tensor gpu_randn(const Shape& s) { return randn(s, TensorOptions(kFloat32, Device::cuda())); }

void BM_cuda_copy_d2d(benchmark::State& state) {
  Tensor src = gpu_randn({kElems}), dst = empty({kElems}, TensorOptions(kFloat32, Device::cuda()));
  cuda::synchronize();
  for (auto _ : state) {
    for (int r = 0; r < kReps; ++r) dst.copy_(src);
    cuda::synchronize();
  }
  state.SetBytesProcessed(state.iterations() * kReps * 2 * kElems * 4);
}

void BM_cuda_add(benchmark::State& state) {
  Tensor a = gpu_randn({kElems}), b = gpu_randn({kElems});
  cuda::synchronize();
  for (auto _ : state) {
    for (int r = 0; r < kReps; ++r) {
      Tensor c = add(a, b);
      benchmark::DoNotOptimize(c);
    }
    cuda::synchronize();
  }
  state.SetBytesProcessed(state.iterations() * kReps * 3 * kElems * 4);
}

void BM_cuda_softmax(benchmark::State& state) {
  const int64_t n = state.range(0), rows = kElems / n;
  const bool log = state.range(1) != 0;
  Tensor x = gpu_randn({rows, n});
  cuda::synchronize();
  for (auto _ : state) {
    for (int r = 0; r < kReps; ++r) {
      Tensor y = log ? log_softmax(x, 1) : softmax(x, 1);
      benchmark::DoNotOptimize(y);
    }
    cuda::synchronize();
  }
  state.SetBytesProcessed(state.iterations() * kReps * 2 * kElems * 4);
  state.SetLabel(log ? "log_softmax" : "softmax");
}

void BM_cuda_sgemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto impl = state.range(1) ? cuda::GemmImpl::Tiled : cuda::GemmImpl::Cublas;
  cuda::set_gemm_impl(impl);
  Tensor a = gpu_randn({n, n}), b = gpu_randn({n, n});
  { Tensor warm = matmul(a, b); }
  cuda::synchronize();
  for (auto _ : state) {
    for (int r = 0; r < kReps; ++r) {
      Tensor c = matmul(a, b);
      benchmark::DoNotOptimize(c);
    }
    cuda::synchronize();
  }
  cuda::set_gemm_impl(cuda::GemmImpl::Cublas);
  state.counters["TFLOPS"] = benchmark::Counter(double(state.iterations()) * kReps * 2.0 * n * n * n / 1e12,
                                                benchmark::Counter::kIsRate);
  state.SetLabel(impl == cuda::GemmImpl::Tiled ? "tiled" : "cublas");
}

const bool g_registered = [] {
  if (!cuda::is_available()) return false;
  benchmark::RegisterBenchmark("BM_cuda_copy_d2d/256MiB", BM_cuda_copy_d2d)->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_cuda_add/256MiB", BM_cuda_add)->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_cuda_softmax", BM_cuda_softmax)
      ->Args({4096, 0})->Args({4096, 1})->Args({16384, 0})->Args({16384, 1})
      ->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_cuda_sgemm", BM_cuda_sgemm)
      ->Args({4096, 0})->Args({4096, 1})->UseRealTime()->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
