// Internal to the CPU backend: OpenMP parallel-for over a range with a grain size.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace tessera::cpu {

/// fn(begin, end) over chunks of [0, n); parallel when n * cost_per_item > grain.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  int threads = omp_get_max_threads();
  if (threads <= 1 || n < grain || omp_in_parallel()) {
    fn(int64_t(0), n);
    return;
  }
  int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
#pragma omp parallel num_threads(int(chunks))
  {
    int64_t t = omp_get_thread_num();
    int64_t nt = omp_get_num_threads();
    int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace tessera::cpu
