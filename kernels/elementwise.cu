#include "elementwise.cuh"

#include <limits>
#include <type_traits>

#include "cuda_context.cuh"
#include "device_math.cuh"
#include "tessera/random.hpp"

namespace tessera::cuda::detail {

namespace {

// ---- generic kernels ----------------------------------------------------------------------
template <typename Tout, typename Tin>
constexpr int vec_width() {
  constexpr std::size_t big = sizeof(Tout) > sizeof(Tin) ? sizeof(Tout) : sizeof(Tin);
  return int(16 / big);
}

__device__ __forceinline__ int64_t global_tid() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return int64_t(gridDim.x) * blockDim.x; }

/// y[i] = f(x[i]) over contiguous arrays, VEC elements per 16-byte access.
template <typename Tout, typename Tin, int VEC, typename F>
__global__ void map1_contig(const Tin* __restrict__ x, Tout* __restrict__ y, int64_t n, F f) {
  const int64_t nvec = n / VEC;
  for (int64_t i = global_tid(); i < nvec; i += grid_stride()) {
    VecT<Tin, VEC> v = reinterpret_cast<const VecT<Tin, VEC>*>(x)[i];
    VecT<Tout, VEC> o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) o.v[k] = f(v.v[k]);
    reinterpret_cast<VecT<Tout, VEC>*>(y)[i] = o;
  }
  for (int64_t i = nvec * VEC + global_tid(); i < n; i += grid_stride()) y[i] = f(x[i]);
}

/// y[i] (contiguous) = f(x[offset(i)]).
template <typename Tout, typename Tin, typename F>
__global__ void map1_strided(const Tin* __restrict__ x, Tout* __restrict__ y, int64_t n, OffsetCalc<1> oc, F f) {
  for (int64_t i = global_tid(); i < n; i += grid_stride()) {
    int64_t off[1];
    oc.get(i, off);
    y[i] = f(x[off[0]]);
  }
}

/// y[offset0(i)] = f(x[offset1(i)]), both strided.
template <typename Tout, typename Tin, typename F>
__global__ void map1_strided2(const Tin* __restrict__ x, Tout* __restrict__ y, int64_t n, OffsetCalc<2> oc, F f) {
  for (int64_t i = global_tid(); i < n; i += grid_stride()) {
    int64_t off[2];
    oc.get(i, off);
    y[off[0]] = f(x[off[1]]);
  }
}

/// y[i] = f(a[i], b[i]) with either input optionally a broadcast scalar (element 0).
template <typename Tout, typename Tin, int VEC, bool A_SCALAR, bool B_SCALAR, typename F>
__global__ void map2_contig(const Tin* __restrict__ a, const Tin* __restrict__ b, Tout* __restrict__ y, int64_t n, F f) {
  const int64_t nvec = n / VEC;
  Tin as = A_SCALAR ? a[0] : Tin(0);
  Tin bs = B_SCALAR ? b[0] : Tin(0);
  for (int64_t i = global_tid(); i < nvec; i += grid_stride()) {
    VecT<Tin, VEC> va, vb;
    if constexpr (!A_SCALAR) va = reinterpret_cast<const VecT<Tin, VEC>*>(a)[i];
    if constexpr (!B_SCALAR) vb = reinterpret_cast<const VecT<Tin, VEC>*>(b)[i];
    VecT<Tout, VEC> o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) o.v[k] = f(A_SCALAR ? as : va.v[k], B_SCALAR ? bs : vb.v[k]);
    reinterpret_cast<VecT<Tout, VEC>*>(y)[i] = o;
  }
  for (int64_t i = nvec * VEC + global_tid(); i < n; i += grid_stride())
    y[i] = f(A_SCALAR ? as : a[i], B_SCALAR ? bs : b[i]);
}

template <typename Tout, typename Tin, typename F>
__global__ void map2_strided(const Tin* __restrict__ a, const Tin* __restrict__ b, Tout* __restrict__ y, int64_t n,
                             OffsetCalc<2> oc, F f) {
  for (int64_t i = global_tid(); i < n; i += grid_stride()) {
    int64_t off[2];
    oc.get(i, off);
    y[i] = f(a[off[0]], b[off[1]]);
  }
}

template <typename T>
__global__ void where_strided(const bool* __restrict__ c, const T* __restrict__ a, const T* __restrict__ b,
                              T* __restrict__ y, int64_t n, OffsetCalc<3> oc) {
  for (int64_t i = global_tid(); i < n; i += grid_stride()) {
    int64_t off[3];
    oc.get(i, off);
    y[i] = c[off[0]] ? a[off[1]] : b[off[2]];
  }
}

template <typename T>
__global__ void fill_strided(T* __restrict__ y, int64_t n, OffsetCalc<1> oc, T v) {
  for (int64_t i = global_tid(); i < n; i += grid_stride()) {
    int64_t off[1];
    oc.get(i, off);
    y[off[0]] = v;
  }
}

template <typename T, int VEC>
__global__ void fill_contig(T* __restrict__ y, int64_t n, T v) {
  const int64_t nvec = n / VEC;
  VecT<T, VEC> o;
#pragma unroll
  for (int k = 0; k < VEC; ++k) o.v[k] = v;
  for (int64_t i = global_tid(); i < nvec; i += grid_stride()) reinterpret_cast<VecT<T, VEC>*>(y)[i] = o;
  for (int64_t i = nvec * VEC + global_tid(); i < n; i += grid_stride()) y[i] = v;
}

// ---- launch helpers ------------------------------------------------------------------------
template <typename Tout, typename Tin, typename F>
void launch_map1(const Tensor& x, const Tensor& y, F f, const char* op) {
  const int64_t n = y.numel();
  if (n == 0) return;
  cudaStream_t s = context_of(y).stream;
  const Tin* xp = static_cast<const Tin*>(x.raw_data());
  Tout* yp = static_cast<Tout*>(y.raw_data());
  const bool y_contig = y.is_contiguous();
  if (x.is_contiguous() && y_contig) {
    constexpr int V = vec_width<Tout, Tin>();
    if (V > 1 && aligned(xp, sizeof(Tin) * V) && aligned(yp, sizeof(Tout) * V)) {
      map1_contig<Tout, Tin, V><<<grid_for(n / V + 1, kThreads), kThreads, 0, s>>>(xp, yp, n, f);
    } else {
      map1_contig<Tout, Tin, 1><<<grid_for(n, kThreads), kThreads, 0, s>>>(xp, yp, n, f);
    }
  } else if (y_contig) {
    auto oc = make_offset_calc<1>(y.shape(), {&x.strides()}, op);
    map1_strided<Tout, Tin><<<grid_for(n, kThreads), kThreads, 0, s>>>(xp, yp, n, oc, f);
  } else {
    auto oc = make_offset_calc<2>(y.shape(), {&y.strides(), &x.strides()}, op);
    map1_strided2<Tout, Tin><<<grid_for(n, kThreads), kThreads, 0, s>>>(xp, yp, n, oc, f);
  }
  TESSERA_KERNEL_CHECK();
}

bool all_zero(const Strides& s) {
  for (int64_t v : s)
    if (v != 0) return false;
  return true;
}

template <typename Tout, typename Tin, typename F>
void launch_map2(const Tensor& a, const Tensor& b, const Tensor& y, F f, const char* op) {
  const int64_t n = y.numel();
  if (n == 0) return;
  cudaStream_t s = context_of(y).stream;
  const Tin* ap = static_cast<const Tin*>(a.raw_data());
  const Tin* bp = static_cast<const Tin*>(b.raw_data());
  Tout* yp = static_cast<Tout*>(y.raw_data());
  TESSERA_CHECK(y.is_contiguous(), ValueError, "cuda ", op, ": output must be contiguous");
  constexpr int V = vec_width<Tout, Tin>();
  const bool yal = aligned(yp, sizeof(Tout) * V);
  const bool ac = a.is_contiguous(), bc = b.is_contiguous();
  const bool as = !ac && all_zero(a.strides()), bs = !bc && all_zero(b.strides());
  const unsigned gv = grid_for(n / V + 1, kThreads);
  if (ac && bc && yal && aligned(ap, sizeof(Tin) * V) && aligned(bp, sizeof(Tin) * V)) {
    map2_contig<Tout, Tin, V, false, false><<<gv, kThreads, 0, s>>>(ap, bp, yp, n, f);
  } else if (ac && bs && yal && aligned(ap, sizeof(Tin) * V)) {
    map2_contig<Tout, Tin, V, false, true><<<gv, kThreads, 0, s>>>(ap, bp, yp, n, f);
  } else if (as && bc && yal && aligned(bp, sizeof(Tin) * V)) {
    map2_contig<Tout, Tin, V, true, false><<<gv, kThreads, 0, s>>>(ap, bp, yp, n, f);
  } else {
    auto oc = make_offset_calc<2>(y.shape(), {&a.strides(), &b.strides()}, op);
    map2_strided<Tout, Tin><<<grid_for(n, kThreads), kThreads, 0, s>>>(ap, bp, yp, n, oc, f);
  }
  TESSERA_KERNEL_CHECK();
}

// ---- functors ------------------------------------------------------------------------------
template <typename Tout, typename Tin>
struct CastF {
  __device__ __forceinline__ Tout operator()(Tin v) const { return convert<Tout>(v); }
};

bool unary_supports_integers(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: case UnaryOp::Abs: case UnaryOp::Sign: case UnaryOp::Square: case UnaryOp::Relu:
    case UnaryOp::ReluGrad: case UnaryOp::Clamp:
      return true;
    default:
      return false;
  }
}

template <typename T>
struct UnaryF {
  UnaryOp op;
  T a, b;
  __device__ __forceinline__ T operator()(T x) const {
    if constexpr (std::is_floating_point_v<T>) {
      switch (op) {
        case UnaryOp::Neg: return -x;
        case UnaryOp::Abs: return m_fabs(x);
        case UnaryOp::Exp: return m_exp(x);
        case UnaryOp::Log: return m_log(x);
        case UnaryOp::Log1p: return m_log1p(x);
        case UnaryOp::Sqrt: return m_sqrt(x);
        case UnaryOp::Rsqrt: return T(1) / m_sqrt(x);
        case UnaryOp::Sin: return m_sin(x);
        case UnaryOp::Cos: return m_cos(x);
        case UnaryOp::Tanh: return m_tanh(x);
        case UnaryOp::Sigmoid: {
          if (x >= T(0)) return T(1) / (T(1) + m_exp(-x));
          T e = m_exp(x);
          return e / (T(1) + e);
        }
        case UnaryOp::Relu: return is_nan(x) ? x : (x > T(0) ? x : T(0));
        case UnaryOp::Gelu: return T(0.5) * x * (T(1) + m_erf(x * T(0.70710678118654752440)));
        case UnaryOp::Clamp: return x < a ? a : (x > b ? b : x);
        case UnaryOp::ReluGrad: return x > T(0) ? T(1) : T(0);
        case UnaryOp::GeluGrad: {
          T cdf = T(0.5) * (T(1) + m_erf(x * T(0.70710678118654752440)));
          T pdf = m_exp(T(-0.5) * x * x) * T(0.39894228040143267794);
          return cdf + x * pdf;
        }
        case UnaryOp::Sign: return is_nan(x) ? x : T((x > T(0)) - (x < T(0)));
        case UnaryOp::Square: return x * x;
        case UnaryOp::Reciprocal: return T(1) / x;
        case UnaryOp::PowScalar: return m_pow(x, a);
      }
      return x;
    } else {
      switch (op) {
        case UnaryOp::Neg: return T(-x);
        case UnaryOp::Abs:
          if constexpr (std::is_unsigned_v<T>) return x;
          else return x < T(0) ? T(-x) : x;
        case UnaryOp::Sign:
          if constexpr (std::is_unsigned_v<T>) return T(x > T(0));
          else return T((x > T(0)) - (x < T(0)));
        case UnaryOp::Square: return T(x * x);
        case UnaryOp::Relu: return x > T(0) ? x : T(0);
        case UnaryOp::ReluGrad: return x > T(0) ? T(1) : T(0);
        case UnaryOp::Clamp: return x < a ? a : (x > b ? b : x);
        default: return x;
      }
    }
  }
};

template <typename T>
T clamp_bound(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return T(v);
  } else {
    if (std::isnan(v)) return T(0);
    if (v <= double(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return T(v);
  }
}

template <typename T>
__device__ __forceinline__ T max_nan(T a, T b) {
  if (is_nan(a)) return a;
  if (is_nan(b)) return b;
  return a > b ? a : b;
}
template <typename T>
__device__ __forceinline__ T min_nan(T a, T b) {
  if (is_nan(a)) return a;
  if (is_nan(b)) return b;
  return a < b ? a : b;
}

template <typename T>
struct ArithF {
  BinaryOp op;
  __device__ __forceinline__ T operator()(T a, T b) const {
    switch (op) {
      case BinaryOp::Add: return convert<T>(a + b);
      case BinaryOp::Sub: return convert<T>(a - b);
      case BinaryOp::Mul: return convert<T>(a * b);
      case BinaryOp::Div:
        if constexpr (std::is_floating_point_v<T>) return a / b;
        else return b == T(0) ? T(0) : convert<T>(a / b);
      case BinaryOp::Pow:
        if constexpr (std::is_floating_point_v<T>) return m_pow(a, b);
        else return convert<T>(::pow(double(a), double(b)));
      case BinaryOp::Maximum: return max_nan(a, b);
      case BinaryOp::Minimum: return min_nan(a, b);
      default: return T(0);
    }
  }
};

template <typename T>
struct CompareF {
  BinaryOp op;
  __device__ __forceinline__ bool operator()(T a, T b) const {
    switch (op) {
      case BinaryOp::Eq: return a == b;
      case BinaryOp::Ne: return a != b;
      case BinaryOp::Lt: return a < b;
      case BinaryOp::Le: return a <= b;
      case BinaryOp::Gt: return a > b;
      case BinaryOp::Ge: return a >= b;
      case BinaryOp::LogicalAnd: return (a != T(0)) && (b != T(0));
      case BinaryOp::LogicalOr: return (a != T(0)) || (b != T(0));
      default: return false;
    }
  }
};

// ---- random -----------------------------------------------------------------------------------
template <typename T>
__global__ void random_kernel(T* __restrict__ y, int64_t n, RandomKind kind, uint64_t seed, uint64_t offset,
                              double a, double b) {
  for (int64_t i = global_tid(); i < n; i += grid_stride()) {
    const Philox4x32 r = philox_block(seed, offset, uint64_t(i));
    // The same arithmetic as CpuBackend::random (src/cpu/elementwise.cpp), with explicit
    // round-to-nearest operations so nvcc cannot contract them into FMAs: uniform and randint
    // are bit-identical to the CPU; normal may differ in the last bits of log/cos.
    if (kind == RandomKind::Uniform) {
      if constexpr (is_reduced_type_v<T>) {
        // As the CPU: round the float sample once; one that rounds up to b steps below it.
        const float v = __fadd_rn(float(a), __fmul_rn(float(b - a), uint_to_unit_float(r.v[0])));
        const T t = T(v);
        y[i] = (double(float(t)) >= b && b > a) ? largest_below<T>(b) : t;
      } else if constexpr (std::is_same_v<T, float>) {
        float v = __fadd_rn(float(a), __fmul_rn(float(b - a), uint_to_unit_float(r.v[0])));
        // Rounding can reach b itself: keep the interval half-open, as the CPU does.
        y[i] = (v >= float(b) && b > a) ? nextafterf(float(b), float(a)) : v;
      } else {
        double v = __dadd_rn(a, __dmul_rn(b - a, uint2_to_unit_double(r.v[0], r.v[1])));
        y[i] = convert<T>((v >= b && b > a) ? nextafter(b, a) : v);
      }
      continue;
    }
    double v;
    if (kind == RandomKind::Normal) {
      const double u1 = uint2_to_unit_double(r.v[0], r.v[1]);
      const double u2 = uint2_to_unit_double(r.v[2], r.v[3]);
      const double z = __dmul_rn(::sqrt(-2.0 * ::log(1.0 - u1)), ::cos(__dmul_rn(2.0 * M_PI, u2)));
      v = __dadd_rn(a, __dmul_rn(b, z));
    } else {
      const double u = uint2_to_unit_double(r.v[0], r.v[1]);
      v = ::floor(__dadd_rn(a, __dmul_rn(u, b - a)));
      if (v > b - 1) v = b - 1;
    }
    y[i] = convert<T>(v);
  }
}

}  // namespace

// ---- entry points ------------------------------------------------------------------------------
void elementwise_copy(const Tensor& src, const Tensor& dst) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(dst.device().index);
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(), cudaMemcpyDeviceToDevice,
                                       context_of(dst).stream));
    return;
  }
  dispatch_all(dst.dtype(), [&](auto to) {
    using To = typename decltype(to)::type;
    dispatch_all(src.dtype(), [&](auto from) {
      using From = typename decltype(from)::type;
      launch_map1<To, From>(src, dst, CastF<To, From>{}, "copy");
    });
  });
}

void elementwise_fill(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(dst.device().index);
  cudaStream_t s = context_of(dst).stream;
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = convert<T>(value);
    T* yp = static_cast<T*>(dst.raw_data());
    if (dst.is_contiguous()) {
      constexpr int V = int(16 / sizeof(T));
      if (aligned(yp, 16)) fill_contig<T, V><<<grid_for(n / V + 1, kThreads), kThreads, 0, s>>>(yp, n, v);
      else fill_contig<T, 1><<<grid_for(n, kThreads), kThreads, 0, s>>>(yp, n, v);
    } else {
      auto oc = make_offset_calc<1>(dst.shape(), {&dst.strides()}, "fill");
      fill_strided<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(yp, n, oc, v);
    }
    TESSERA_KERNEL_CHECK();
  });
}

void elementwise_unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  TESSERA_CHECK(x.dtype() == out.dtype(), DTypeError, "cuda ", unary_op_name(op), ": input ", x.dtype(),
                " and output ", out.dtype(), " differ");
  TESSERA_CHECK(x.dtype() != DType::Bool, UnsupportedError, "cuda ", unary_op_name(op), ": bool input");
  TESSERA_CHECK(is_floating_point(x.dtype()) || unary_supports_integers(op), UnsupportedError, "cuda ",
                unary_op_name(op), ": expected float32 or float64, got ", x.dtype());
  dispatch_standard(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      UnaryF<T> f{op, clamp_bound<T>(a), clamp_bound<T>(b)};
      if (op == UnaryOp::PowScalar) f.a = T(a);
      launch_map1<T, T>(x, out, f, unary_op_name(op));
    }
  });
}

void elementwise_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  TESSERA_CHECK(a.dtype() == b.dtype(), DTypeError, "cuda ", binary_op_name(op), ": operands have dtypes ",
                a.dtype(), " and ", b.dtype());
  dispatch_standard(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (is_comparison(op)) {
      TESSERA_CHECK(out.dtype() == DType::Bool, DTypeError, "cuda ", binary_op_name(op), ": output must be bool");
      launch_map2<bool, T>(a, b, out, CompareF<T>{op}, binary_op_name(op));
    } else {
      TESSERA_CHECK(out.dtype() == a.dtype(), DTypeError, "cuda ", binary_op_name(op), ": output ", out.dtype(),
                    " differs from inputs ", a.dtype());
      launch_map2<T, T>(a, b, out, ArithF<T>{op}, binary_op_name(op));
    }
  });
}

void elementwise_where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  TESSERA_CHECK(cond.dtype() == DType::Bool, DTypeError, "cuda where: condition must be bool, got ", cond.dtype());
  TESSERA_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), DTypeError, "cuda where: dtypes ", a.dtype(),
                ", ", b.dtype(), " and output ", out.dtype(), " must match");
  TESSERA_CHECK(out.is_contiguous(), ValueError, "cuda where: output must be contiguous");
  cudaStream_t s = context_of(out).stream;
  auto oc = make_offset_calc<3>(out.shape(), {&cond.strides(), &a.strides(), &b.strides()}, "where");
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    where_strided<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(
        static_cast<const bool*>(cond.raw_data()), static_cast<const T*>(a.raw_data()),
        static_cast<const T*>(b.raw_data()), static_cast<T*>(out.raw_data()), n, oc);
    TESSERA_KERNEL_CHECK();
  });
}

void random_fill(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t offset, double a, double b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  TESSERA_CHECK(out.is_contiguous(), ValueError, "cuda random: output must be contiguous");
  cudaStream_t s = context_of(out).stream;
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    random_kernel<T><<<grid_for(n, kThreads), kThreads, 0, s>>>(static_cast<T*>(out.raw_data()), n, kind, seed,
                                                                offset, a, b);
    TESSERA_KERNEL_CHECK();
  });
}

}  // namespace tessera::cuda::detail
