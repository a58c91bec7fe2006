// CPU cases: elementwise, reductions, softmax and matmul over sizes from launch-bound to
// bandwidth- or compute-bound. Counters: bytes/s or FLOP/s and the fraction of the ceiling
// measured in the same run (cpu_peak.hpp).
#include <benchmark/benchmark.h>

#include <tessera/tessera.hpp>

#include <chrono>

#include "cpu_peak.hpp"

using namespace tessera;

namespace {

void BM_CpuFmaPeak(benchmark::State& state) {
  double peak = 0;
  for (auto _ : state) peak = bench::measure_fma_peak(int(state.range(0)));
  state.counters["GFLOPS"] = peak / 1e9;
}
BENCHMARK(BM_CpuFmaPeak)->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_CpuCopyBandwidth(benchmark::State& state) {
  double bw = 0;
  for (auto _ : state) bw = bench::measure_copy_bandwidth();
  state.counters["GBps"] = bw / 1e9;
}
BENCHMARK(BM_CpuCopyBandwidth)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_CpuAdd(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = rand({n}), b = rand({n});
  const double copy_bw = bench::cpu_copy_bandwidth();  // measured before the timed loop
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b).raw_data());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double bytes = 3.0 * 4.0 * double(n);
  state.SetBytesProcessed(int64_t(bytes) * state.iterations());
  state.counters["copy_bw_fraction"] = bytes * double(state.iterations()) / seconds / copy_bw;
}
BENCHMARK(BM_CpuAdd)->RangeMultiplier(16)->Range(1 << 10, 1 << 26)->UseRealTime();

void BM_CpuRelu(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = randn({n});
  for (auto _ : state) benchmark::DoNotOptimize(relu(a).raw_data());
  state.SetBytesProcessed(int64_t(8.0 * double(n)) * state.iterations());
}
BENCHMARK(BM_CpuRelu)->RangeMultiplier(16)->Range(1 << 10, 1 << 26)->UseRealTime();

void BM_CpuSum(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = rand({n});
  for (auto _ : state) benchmark::DoNotOptimize(sum(a).raw_data());
  state.SetBytesProcessed(int64_t(4.0 * double(n)) * state.iterations());
}
BENCHMARK(BM_CpuSum)->RangeMultiplier(16)->Range(1 << 10, 1 << 26)->UseRealTime();

void BM_CpuSumRows(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = rand({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(sum(a, {1}).raw_data());
  state.SetBytesProcessed(int64_t(4.0 * double(n) * double(n)) * state.iterations());
}
BENCHMARK(BM_CpuSumRows)->RangeMultiplier(4)->Range(64, 4096)->UseRealTime();

void BM_CpuSoftmax(benchmark::State& state) {
  const int64_t rows = 256, n = state.range(0);
  Tensor a = randn({rows, n});
  for (auto _ : state) benchmark::DoNotOptimize(softmax(a, 1).raw_data());
  state.SetBytesProcessed(int64_t(8.0 * double(rows * n)) * state.iterations());
}
BENCHMARK(BM_CpuSoftmax)->RangeMultiplier(4)->Range(64, 16384)->UseRealTime();

void BM_CpuMatmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = randn({n, n}), b = randn({n, n});
  const double peak = bench::cpu_fma_peak();  // measured before the timed loop
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).raw_data());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = 2.0 * double(n) * double(n) * double(n) * double(state.iterations()) / seconds;
  state.counters["GFLOPS"] = rate / 1e9;
  state.counters["peak_GFLOPS"] = peak / 1e9;
  state.counters["peak_fraction"] = rate / peak;
}
BENCHMARK(BM_CpuMatmul)->RangeMultiplier(2)->Range(64, 2048)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_CpuMatmulTransposed(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = randn({n, n}), b = randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a.t(), b.t()).raw_data());
  const double flops = 2.0 * double(n) * double(n) * double(n);
  state.counters["FLOPS"] = benchmark::Counter(flops * double(state.iterations()), benchmark::Counter::kIsRate,
                                               benchmark::Counter::OneK::kIs1000);
}
BENCHMARK(BM_CpuMatmulTransposed)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
