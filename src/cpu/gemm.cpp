// CPU batched GEMM on Eigen (its blocked, vectorised kernel, threaded with OpenMP).
// Transposed and strided operands map directly as row- or column-major matrices.
#include <Eigen/Core>
#include <omp.h>

#include "cpu/cpu_backend.hpp"
#include "cpu/dispatch.hpp"
#include "tessera/parallel.hpp"

namespace tessera {

void set_num_threads(int n) {
  TESSERA_CHECK(n >= 1, ValueError, "set_num_threads: expected n >= 1, got ", n);
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

namespace cpu {

namespace {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using Stride = Eigen::OuterStride<>;

// Calls fn(eigen_map) with the [rows, cols] matrix at p with element strides (rs, cs),
// mapped row-major or column-major as the strides allow, or a packed copy.
template <typename T, typename Fn>
void with_matrix(const T* p, int64_t rows, int64_t cols, int64_t rs, int64_t cs, Fn&& fn) {
  if ((cs == 1 || cols == 1) && (rs >= cols || rows == 1)) {
    Eigen::Map<const RowMat<T>, 0, Stride> m(p, rows, cols, Stride(rows == 1 ? cols : rs));
    fn(m);
  } else if ((rs == 1 || rows == 1) && (cs >= rows || cols == 1)) {
    Eigen::Map<const ColMat<T>, 0, Stride> m(p, rows, cols, Stride(cols == 1 ? rows : cs));
    fn(m);
  } else {
    RowMat<T> packed(rows, cols);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) packed(i, j) = p[i * rs + j * cs];
    fn(packed);
  }
}

}  // namespace

void CpuBackend::bmm(const Tensor& a, const Tensor& b, const Tensor& out) {
  if (is_reduced_floating_point(a.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return bmm(f.in(a), f.in(b), f.out(out));
  }
  const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ap = static_cast<const T*>(a.raw_data());
    const T* bp = static_cast<const T*>(b.raw_data());
    T* op = static_cast<T*>(out.raw_data());
    auto one = [&](int64_t i) {
      Eigen::Map<RowMat<T>> c(op + i * M * N, M, N);
      with_matrix(ap + i * a.stride(0), M, K, a.stride(1), a.stride(2), [&](const auto& A) {
        with_matrix(bp + i * b.stride(0), K, N, b.stride(1), b.stride(2), [&](const auto& Bm) { c.noalias() = A * Bm; });
      });
    };
    // Many small products: one per thread. Few large ones: Eigen threads each GEMM.
    const double flops = 2.0 * double(M) * double(N) * double(K);
    if (B > 1 && flops < 4e6) {
      parallel_for(B, std::max<int64_t>(1, int64_t(1e6 / std::max(flops, 1.0))), [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) one(i);
      });
    } else {
      for (int64_t i = 0; i < B; ++i) one(i);
    }
  });
}

}  // namespace cpu
}  // namespace tessera
