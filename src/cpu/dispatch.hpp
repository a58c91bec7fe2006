// Internal to the CPU backend: dtype dispatch and strided N-d iteration.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "cpu/parallel.hpp"
#include "tessera/detail/float32_scope.hpp"
#include "tessera/error.hpp"
#include "tessera/tensor.hpp"

namespace tessera::cpu {

using tessera::TypeTag;

/// Calls fn(TypeTag<T>{}) with T the C++ type of dtype (every dtype, float16/bfloat16 too).
template <typename Fn>
decltype(auto) dispatch_all(DType dtype, const char* op, Fn&& fn) {
  return dispatch<kAllTypes>(dtype, op, std::forward<Fn>(fn));
}
/// Every dtype but float16/bfloat16 (ops that route those through detail::Float32Scope).
template <typename Fn>
decltype(auto) dispatch_standard(DType dtype, const char* op, Fn&& fn) {
  return dispatch<kAllTypes & ~kReducedFloatingTypes>(dtype, op, std::forward<Fn>(fn));
}
/// float32 and float64.
template <typename Fn>
decltype(auto) dispatch_float(DType dtype, const char* op, Fn&& fn) {
  return dispatch<kStandardFloatingTypes>(dtype, op, std::forward<Fn>(fn));
}

/// Below this many elements an op runs on one thread (thread start-up costs more).
constexpr int64_t kParallelGrain = 32768;

/// Iteration over `ntensors` tensors of one shape with their own strides (in elements).
/// Dims are coalesced where every tensor is contiguous across them; the innermost dim is
/// the inner loop. fn(ptrs[], inner_strides[], inner_size) is called per inner row, where
/// ptrs are element pointers (char*) at the row start.
struct StridedLoop {
  int ntensors = 0;
  std::vector<int64_t> sizes;                 // coalesced shape, innermost last
  std::vector<std::vector<int64_t>> strides;  // bytes, per tensor per dim
  std::vector<char*> base;

  StridedLoop(const std::vector<const Tensor*>& ts) {
    ntensors = int(ts.size());
    const Shape& shape = ts[0]->shape();
    int64_t nd = int64_t(shape.size());
    // drop size-1 dims, coalesce
    std::vector<int64_t> sz;
    std::vector<std::vector<int64_t>> st(ntensors);
    for (int64_t d = 0; d < nd; ++d) {
      if (shape[d] == 1) continue;
      bool merge = !sz.empty();
      if (merge) {
        for (int k = 0; k < ntensors; ++k) {
          int64_t es = int64_t(ts[k]->itemsize());
          if (st[k].back() != ts[k]->strides()[d] * es * shape[d]) { merge = false; break; }
        }
      }
      if (merge) {
        sz.back() *= shape[d];
        for (int k = 0; k < ntensors; ++k) st[k].back() = ts[k]->strides()[d] * int64_t(ts[k]->itemsize());
      } else {
        sz.push_back(shape[d]);
        for (int k = 0; k < ntensors; ++k) st[k].push_back(ts[k]->strides()[d] * int64_t(ts[k]->itemsize()));
      }
    }
    if (sz.empty()) {
      sz.push_back(1);
      for (int k = 0; k < ntensors; ++k) st[k].push_back(0);
    }
    sizes = std::move(sz);
    strides = std::move(st);
    for (auto* t : ts) base.push_back(static_cast<char*>(t->raw_data()));
  }

  int64_t inner() const { return sizes.back(); }
  int64_t outer() const {
    int64_t n = 1;
    for (size_t d = 0; d + 1 < sizes.size(); ++d) n *= sizes[d];
    return n;
  }

  /// Runs fn over outer rows [begin, end).
  template <typename Fn>
  void run_rows(int64_t begin, int64_t end, Fn&& fn) const {
    const int nd = int(sizes.size());
    std::vector<char*> ptrs(ntensors);
    std::vector<int64_t> inner_strides(ntensors);
    for (int k = 0; k < ntensors; ++k) inner_strides[k] = strides[k][nd - 1];
    for (int64_t row = begin; row < end; ++row) {
      int64_t r = row;
      for (int k = 0; k < ntensors; ++k) ptrs[k] = base[k];
      for (int d = nd - 2; d >= 0; --d) {
        int64_t idx = r % sizes[d];
        r /= sizes[d];
        for (int k = 0; k < ntensors; ++k) ptrs[k] += idx * strides[k][d];
      }
      fn(ptrs.data(), inner_strides.data(), sizes[nd - 1]);
    }
  }

  /// Runs fn over all rows, splitting across OpenMP threads when the work is large.
  template <typename Fn>
  void run(Fn&& fn) const;
};

template <typename Fn>
void StridedLoop::run(Fn&& fn) const {
  const int64_t rows = outer(), in = inner();
  if (rows * in == 0) return;
  if (rows == 1) {
    // One long row: split it across threads.
    parallel_for(in, kParallelGrain, [&](int64_t b, int64_t e) {
      std::vector<char*> ptrs(ntensors);
      std::vector<int64_t> inner_strides(ntensors);
      for (int k = 0; k < ntensors; ++k) {
        inner_strides[k] = strides[k].back();
        ptrs[k] = base[k] + b * inner_strides[k];
      }
      fn(ptrs.data(), inner_strides.data(), e - b);
    });
    return;
  }
  const int64_t grain_rows = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(in, 1));
  parallel_for(rows, grain_rows, [&](int64_t b, int64_t e) { run_rows(b, e, fn); });
}

}  // namespace tessera::cpu
