// CPU row reductions and softmax. Float32 sums and variances accumulate in float64, so
// long inputs keep their precision (1e8 ones sum to exactly 1e8).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "cpu/cpu_backend.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/vector_exp.hpp"

namespace tessera::cpu {

namespace {

template <typename T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <typename T>
using ArrMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

template <typename T>
double sum_range(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    // Float64 accumulation in 16 independent lanes: the compiler vectorises the inner loop
    // (convert to double, add), unlike Eigen's cast<double>().sum(), which ran at a fifth of
    // the memory bandwidth. Each lane adds n/16 values in float64.
    constexpr int64_t L = 16;
    double acc[L] = {};
    int64_t i = 0;
    for (; i + L <= n; i += L)
      for (int64_t j = 0; j < L; ++j) acc[j] += double(x[i + j]);
    double s = 0;
    for (; i < n; ++i) s += double(x[i]);
    for (int64_t j = 0; j < L; ++j) s += acc[j];
    return s;
  } else if constexpr (std::is_floating_point_v<T>) {
    return ArrMap<T>(x, n).sum();  // Eigen's vectorised reduction, already in float64
  } else {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(x[i]);
    return s;
  }
}

// Sum over [0, n) of an elementwise expression, accumulated in float64: fill(i, len, buf)
// writes elements [i, i + len) of the expression into buf (vectorised by Eigen, in the
// element type), which sum_range then adds; the block stays in L1.
constexpr int64_t kSumBlock = 1024;
template <typename T, typename Fill>
double blocked_sum(int64_t n, Fill&& fill) {
  alignas(64) T buf[kSumBlock];
  double s = 0;
  for (int64_t i = 0; i < n; i += kSumBlock) {
    const int64_t len = std::min(kSumBlock, n - i);
    fill(i, len, buf);
    s += sum_range(buf, len);
  }
  return s;
}

template <typename T>
double row_sum(const T* x, int64_t n, bool split) {
  if (!split) return sum_range(x, n);
  // A few long rows: split each across threads and add the partial sums.
  const int nt = omp_get_max_threads();
  std::vector<double> part(size_t(nt), 0.0);
  parallel_for(n, kParallelGrain, [&](int64_t lo, int64_t hi) { part[size_t(omp_get_thread_num())] += sum_range(x + lo, hi - lo); });
  double s = 0;
  for (double v : part) s += v;
  return s;
}

template <typename T>
int64_t row_isum(const T* x, int64_t n) {
  int64_t s = 0;
  for (int64_t i = 0; i < n; ++i) s += int64_t(x[i]);
  return s;
}

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

// Index of the max (or min) of a row: first occurrence on ties, first NaN wins.
template <typename T>
int64_t arg_extreme(const T* x, int64_t n, bool is_max) {
  int64_t best = 0;
  T bv = x[0];
  if (is_nan(bv)) return 0;
  for (int64_t i = 1; i < n; ++i) {
    T v = x[i];
    if (is_nan(v)) return i;
    if (is_max ? v > bv : v < bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

}  // namespace

void CpuBackend::reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out, const Tensor& indices, double correction) {
  if (is_reduced_floating_point(x.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return reduce_rows(op, f.in(x), f.out(out), indices, correction);
  }
  const int64_t M = x.size(0), R = x.size(1);
  const bool split_rows = M < omp_get_max_threads() && R >= 4 * kParallelGrain;
  dispatch_standard(x.dtype(), reduce_op_name(op), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.raw_data());
    int64_t* ip = indices.defined() ? static_cast<int64_t*>(indices.raw_data()) : nullptr;
    auto rows = [&](auto&& body) {
      if (split_rows) {
        for (int64_t m = 0; m < M; ++m) body(m);
      } else {
        parallel_for(M, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(R, 1)), [&](int64_t lo, int64_t hi) {
          for (int64_t m = lo; m < hi; ++m) body(m);
        });
      }
    };
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Mean:
        dispatch_standard(out.dtype(), "sum", [&](auto otag) {
          using O = typename decltype(otag)::type;
          O* op_ = static_cast<O*>(out.raw_data());
          rows([&](int64_t m) {
            const T* r = xp + m * R;
            if constexpr (std::is_floating_point_v<T>) {
              double s = row_sum(r, R, split_rows);
              op_[m] = O(op == ReduceOp::Mean ? (R ? s / double(R) : std::numeric_limits<double>::quiet_NaN()) : s);
            } else {
              op_[m] = O(row_isum(r, R));
            }
          });
        });
        return;
      case ReduceOp::Prod:
        dispatch_standard(out.dtype(), "prod", [&](auto otag) {
          using O = typename decltype(otag)::type;
          O* op_ = static_cast<O*>(out.raw_data());
          rows([&](int64_t m) {
            const T* r = xp + m * R;
            acc_t<T> p = 1;
            for (int64_t i = 0; i < R; ++i) p *= acc_t<T>(r[i]);
            op_[m] = O(p);
          });
        });
        return;
      case ReduceOp::Max:
      case ReduceOp::Min:
      case ReduceOp::ArgMax:
      case ReduceOp::ArgMin: {
        const bool is_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
        const bool values = op == ReduceOp::Max || op == ReduceOp::Min;
        T* vp = values ? static_cast<T*>(out.raw_data()) : nullptr;
        rows([&](int64_t m) {
          int64_t i = arg_extreme(xp + m * R, R, is_max);
          if (vp) vp[m] = xp[m * R + i];
          if (ip) ip[m] = i;
        });
        return;
      }
      case ReduceOp::Var:
        if constexpr (std::is_floating_point_v<T>) {
          T* vp = static_cast<T*>(out.raw_data());
          rows([&](int64_t m) {
            const T* r = xp + m * R;
            // Two passes over data shifted by the row's first element (mean, then centred
            // squares): a constant row gives exactly 0 (Chan, Golub & LeVeque 1983).
            const double shift = R ? double(r[0]) : 0.0;
            double s1 = 0;
            for (int64_t i = 0; i < R; ++i) s1 += double(r[i]) - shift;
            const double mean = R ? s1 / double(R) : 0.0;
            double ss = 0;
            for (int64_t i = 0; i < R; ++i) {
              double d = (double(r[i]) - shift) - mean;
              ss += d * d;
            }
            const double denom = double(R) - correction;
            vp[m] = T(denom > 0 ? ss / denom : std::numeric_limits<double>::quiet_NaN());
          });
          return;
        } else {
          throw DTypeError("var: expects a float input");
        }
      case ReduceOp::All:
      case ReduceOp::Any: {
        bool* bp = static_cast<bool*>(out.raw_data());
        const bool want_all = op == ReduceOp::All;
        rows([&](int64_t m) {
          const T* r = xp + m * R;
          bool acc = want_all;
          for (int64_t i = 0; i < R; ++i) {
            bool nz = r[i] != T(0);
            if (want_all && !nz) { acc = false; break; }
            if (!want_all && nz) { acc = true; break; }
          }
          bp[m] = acc;
        });
        return;
      }
    }
  });
}

void CpuBackend::softmax_rows(const Tensor& x, const Tensor& out, bool log) {
  if (is_reduced_floating_point(x.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return softmax_rows(f.in(x), f.out(out), log);
  }
  const int64_t M = x.size(0), N = x.size(1);
  dispatch_float(x.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* yp = static_cast<T*>(out.raw_data());
    parallel_for(M, std::max<int64_t>(1, kParallelGrain / 8 / std::max<int64_t>(N, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t m = lo; m < hi; ++m) {
        Eigen::Map<const Arr> xr(xp + m * N, N);
        Eigen::Map<Arr> yr(yp + m * N, N);
        if (N == 0) continue;
        // max with NaN propagation: a NaN anywhere makes the row NaN.
        const T mx = xr.template maxCoeff<Eigen::PropagateNaN>();
        if (log) {
          yr = xr - mx;
          const T* shifted = yr.data();
          const double se = blocked_sum<T>(N, [shifted](int64_t i, int64_t len, T* buf) {
            exp_array(shifted + i, buf, len);
          });
          yr -= T(std::log(se));
        } else {
          yr = xr - mx;
          exp_array(yr.data(), yr.data(), N);
          yr /= T(sum_range(yr.data(), N));
        }
      }
    });
  });
}

void CpuBackend::softmax_rows_backward(const Tensor& y, const Tensor& grad_y, const Tensor& grad_x, bool log) {
  if (is_reduced_floating_point(y.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return softmax_rows_backward(f.in(y), f.in(grad_y), f.out(grad_x), log);
  }
  const int64_t M = y.size(0), N = y.size(1);
  dispatch_float(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
    const T* yp = static_cast<const T*>(y.raw_data());
    const T* gp = static_cast<const T*>(grad_y.raw_data());
    T* gx = static_cast<T*>(grad_x.raw_data());
    parallel_for(M, std::max<int64_t>(1, kParallelGrain / 4 / std::max<int64_t>(N, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t m = lo; m < hi; ++m) {
        Eigen::Map<const Arr> yr(yp + m * N, N), gr(gp + m * N, N);
        Eigen::Map<Arr> out(gx + m * N, N);
        if (log) {
          // d/dx log_softmax: g - softmax * sum(g)
          const T s = T(sum_range(gr.data(), N));
          exp_array(yr.data(), out.data(), N);
          out = gr - out * s;
        } else {
          // d/dx softmax: y * (g - sum(g * y))
          const T* g = gr.data();
          const T* yv = yr.data();
          const T s = T(blocked_sum<T>(N, [g, yv](int64_t i, int64_t len, T* buf) {
            Eigen::Map<Arr>(buf, len) = ArrMap<T>(g + i, len) * ArrMap<T>(yv + i, len);
          }));
          out = yr * (gr - s);
        }
      }
    });
  });
}

}  // namespace tessera::cpu
