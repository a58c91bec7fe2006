// The CPU ceilings that benchmark counters are compared against, measured in the same run:
// FMA peak (independent fused multiply-adds on the widest vectors this build targets) and
// memory-copy bandwidth.
#pragma once
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace tessera::bench {

/// Peak single-precision FLOP/s over `threads` threads (2 flops per FMA lane).
inline double measure_fma_peak(int threads) {
#if defined(__AVX512F__)
  constexpr int kLanes = 16;
#elif defined(__AVX__)
  constexpr int kLanes = 8;
#else
  constexpr int kLanes = 4;
#endif
  typedef float vec __attribute__((vector_size(kLanes * 4)));
  constexpr int kAcc = 12;  // enough independent chains to hide FMA latency on 2 ports
  const long iters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      vec acc[kAcc];
      vec m, c;
      for (int l = 0; l < kLanes; ++l) {
        m[l] = 0.999999f;
        c[l] = 1e-7f;
      }
      for (int k = 0; k < kAcc; ++k)
        for (int l = 0; l < kLanes; ++l) acc[k][l] = float(k + l);
      for (long i = 0; i < iters; ++i) {
        for (int k = 0; k < kAcc; ++k) acc[k] = acc[k] * m + c;
        __asm__ volatile("" : "+x"(m));
      }
      for (int k = 0; k < kAcc; ++k)
        for (int l = 0; l < kLanes; ++l) sink += acc[k][l];
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (sink == 12345.f) best += 1;  // keep the result alive
    best = std::max(best, 2.0 * kLanes * kAcc * double(iters) * threads / s);
  }
  return best;
}

/// memcpy bandwidth in bytes/s (read + write counted) on a buffer larger than the caches, on
/// all OpenMP threads.
inline double measure_copy_bandwidth() {
  const size_t n = size_t(256) << 20;
  std::vector<char> a(n, 1), b(n, 2);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel
    {
      // Every thread copies its share, as the library's ops do.
      const size_t t = size_t(omp_get_thread_num()), nt = size_t(omp_get_num_threads());
      const size_t lo = n * t / nt, hi = n * (t + 1) / nt;
      std::memcpy(b.data() + lo, a.data() + lo, hi - lo);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * double(n) / s);
    a[size_t(rep)] = b[size_t(rep) + 1];
  }
  return best;
}

/// Measured once per process, on first use.
inline double cpu_fma_peak() {
  static double p = measure_fma_peak(omp_get_max_threads());
  return p;
}
inline double cpu_copy_bandwidth() {
  static double b = measure_copy_bandwidth();
  return b;
}

}  // namespace tessera::bench
