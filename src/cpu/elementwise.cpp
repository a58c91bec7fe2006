// CPU elementwise kernels: strided copy/cast, fill, unary (Eigen's vectorised array math on
// contiguous data), binary with broadcasting, where, and Philox random numbers.
#include <Eigen/Core>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cpu/convert.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/vector_exp.hpp"
#include "tessera/random.hpp"

namespace tessera::cpu {

namespace {

template <typename T>
inline T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

/// Value conversion between dtypes. Floating point to uint8 goes through int64 (PyTorch's
/// rule, c10/util/TypeCast.h): a negative value wraps (-34.7 -> 222) on the CPU and on CUDA
/// alike, where a direct conversion is undefined and x86 wraps but a GPU saturates to 0.
/// float16/bfloat16 convert through float (c10's rule too: a double rounds to float first).
template <typename To, typename From>
inline To cast_value(From v) {
  if constexpr (std::is_same_v<To, bool>) return v != From(0);
  else if constexpr (std::is_same_v<To, uint8_t> && is_floating_type_v<From>)
    return static_cast<uint8_t>(static_cast<int64_t>(v));
  else if constexpr (is_reduced_type_v<To> && is_reduced_type_v<From>) return To(float(v));
  else return static_cast<To>(v);
}

}  // namespace

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    const char* s = static_cast<const char*>(src.raw_data());
    char* d = static_cast<char*>(dst.raw_data());
    int64_t n = int64_t(dst.nbytes());
    parallel_for(n, 1 << 20, [&](int64_t b, int64_t e) { std::memcpy(d + b, s + b, size_t(e - b)); });
    return;
  }
  StridedLoop loop({&dst, &src});
  dispatch_all(dst.dtype(), "copy", [&](auto to_tag) {
    using To = typename decltype(to_tag)::type;
    dispatch_all(src.dtype(), "copy", [&](auto from_tag) {
      using From = typename decltype(from_tag)::type;
      loop.run([](char** p, const int64_t* st, int64_t n) {
        To* d = reinterpret_cast<To*>(p[0]);
        const char* s = p[1];
        if (st[0] == sizeof(To) && st[1] == sizeof(From)) {
          const From* sf = reinterpret_cast<const From*>(s);
          if constexpr (std::is_same_v<To, Half> && std::is_same_v<From, float>) float_to_half(sf, d, n);
          else if constexpr (std::is_same_v<To, float> && std::is_same_v<From, Half>) half_to_float(sf, d, n);
          else
            for (int64_t i = 0; i < n; ++i) d[i] = cast_value<To>(sf[i]);
        } else {
          for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<To*>(p[0] + i * st[0]) = cast_value<To>(*reinterpret_cast<const From*>(s + i * st[1]));
        }
      });
    });
  });
}

void CpuBackend::fill(const Tensor& dst, double value) {
  StridedLoop loop({&dst});
  dispatch_all(dst.dtype(), "fill", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = cast_value<T>(value);
    loop.run([v](char** p, const int64_t* st, int64_t n) {
      if (st[0] == sizeof(T)) {
        T* d = reinterpret_cast<T*>(p[0]);
        for (int64_t i = 0; i < n; ++i) d[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * st[0]) = v;
      }
    });
  });
}

// ---- unary ---------------------------------------------------------------------------------

namespace {

template <typename T>
T gelu_scalar(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2)));
}
template <typename T>
T gelu_grad_scalar(T x) {
  const T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
  const T pdf = std::exp(T(-0.5) * x * x) * T(0.3989422804014327);  // 1/sqrt(2*pi)
  return cdf + x * pdf;
}

template <typename T>
void unary_float_contig(UnaryOp op, const T* xp, T* yp, int64_t n, double a, double b) {
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  Eigen::Map<const Arr> x(xp, n);
  Eigen::Map<Arr> y(yp, n);
  switch (op) {
    case UnaryOp::Neg: y = -x; return;
    case UnaryOp::Abs: y = x.abs(); return;
    case UnaryOp::Exp: exp_array(xp, yp, n); return;
    case UnaryOp::Log: y = x.log(); return;
    case UnaryOp::Log1p: y = x.log1p(); return;
    case UnaryOp::Sqrt: y = x.sqrt(); return;
    case UnaryOp::Rsqrt: y = x.rsqrt(); return;
    case UnaryOp::Sin: y = x.sin(); return;
    case UnaryOp::Cos: y = x.cos(); return;
    case UnaryOp::Tanh: y = x.tanh(); return;
    case UnaryOp::Sigmoid: y = x.logistic(); return;
    case UnaryOp::Square: y = x.square(); return;
    case UnaryOp::Reciprocal: y = x.inverse(); return;
    case UnaryOp::PowScalar:
      if (a == 2.0) y = x.square();
      else if (a == 1.0) y = x;
      else y = x.pow(T(a));
      return;
    case UnaryOp::ReluGrad:
      for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] > T(0) ? T(1) : T(0);
      return;
    case UnaryOp::Relu:  // NaN stays NaN (PyTorch)
      for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] < T(0) ? T(0) : xp[i];
      return;
    case UnaryOp::Clamp: {
      const T lo = T(a), hi = T(b);
      for (int64_t i = 0; i < n; ++i) {
        T v = xp[i];
        yp[i] = std::isnan(v) ? v : (v < lo ? lo : (v > hi ? hi : v));
      }
      return;
    }
    case UnaryOp::Sign:
      for (int64_t i = 0; i < n; ++i) yp[i] = T((xp[i] > T(0)) - (xp[i] < T(0)));
      return;
    case UnaryOp::Gelu:
      for (int64_t i = 0; i < n; ++i) yp[i] = gelu_scalar(xp[i]);
      return;
    case UnaryOp::GeluGrad:
      for (int64_t i = 0; i < n; ++i) yp[i] = gelu_grad_scalar(xp[i]);
      return;
  }
}

template <typename T>
void unary_int_contig(UnaryOp op, const T* xp, T* yp, int64_t n, double a, double b) {
  switch (op) {
    case UnaryOp::Neg: for (int64_t i = 0; i < n; ++i) yp[i] = T(-xp[i]); return;
    case UnaryOp::Abs:
      for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] < T(0) ? T(-xp[i]) : xp[i];
      return;
    case UnaryOp::Relu:
    case UnaryOp::ReluGrad:
      for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] > T(0) ? (op == UnaryOp::Relu ? xp[i] : T(1)) : T(0);
      return;
    case UnaryOp::Sign: for (int64_t i = 0; i < n; ++i) yp[i] = T((xp[i] > T(0)) - (xp[i] < T(0))); return;
    case UnaryOp::Square: for (int64_t i = 0; i < n; ++i) yp[i] = T(xp[i] * xp[i]); return;
    case UnaryOp::Clamp:
      for (int64_t i = 0; i < n; ++i) {
        double v = double(xp[i]);
        yp[i] = T(v < a ? a : (v > b ? b : v));
      }
      return;
    default:
      throw UnsupportedError(std::string(unary_op_name(op)) + ": not supported for integer tensors on the CPU");
  }
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& x_in, const Tensor& out, double a, double b) {
  if (is_reduced_floating_point(out.dtype())) {
    detail::Float32Scope f;
    return unary(op, f.in(x_in), f.out(out), a, b);
  }
  Tensor x = x_in.is_contiguous() ? x_in : x_in.contiguous();
  Tensor y = out.is_contiguous() ? out : empty(out.shape(), TensorOptions(out.dtype(), out.device()));
  const int64_t n = x.numel();
  // Transcendentals cost ~10-40 cycles an element: split finer than plain arithmetic.
  const int64_t grain = kParallelGrain / 4;
  dispatch_standard(x.dtype(), unary_op_name(op), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* yp = static_cast<T*>(y.raw_data());
    parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
      if constexpr (std::is_floating_point_v<T>) unary_float_contig<T>(op, xp + lo, yp + lo, hi - lo, a, b);
      else if constexpr (std::is_same_v<T, bool>) {
        for (int64_t i = lo; i < hi; ++i) yp[i] = xp[i];  // relu/abs of bool: identity
      } else unary_int_contig<T>(op, xp + lo, yp + lo, hi - lo, a, b);
    });
  });
  if (!y.is_same(out)) copy(y, out);
}

// ---- binary --------------------------------------------------------------------------------

namespace {

template <BinaryOp OP, typename T>
struct BinaryFn;

#define TESSERA_BINARY_FN(OP, OUT, EXPR)                          \
  template <typename T>                                          \
  struct BinaryFn<BinaryOp::OP, T> {                             \
    using out_t = OUT;                                           \
    static inline out_t apply(T x, T y) { return EXPR; }        \
  };
// Integer add/sub/mul wrap around (two's complement, as PyTorch) without signed overflow.
template <typename T, bool = std::is_integral_v<T> && !std::is_same_v<T, bool>>
struct Wrap { using type = T; };
template <typename T>
struct Wrap<T, true> { using type = std::make_unsigned_t<T>; };
template <typename T>
using wrap_t = typename Wrap<T>::type;
TESSERA_BINARY_FN(Add, T, T(wrap_t<T>(x) + wrap_t<T>(y)))
TESSERA_BINARY_FN(Sub, T, T(wrap_t<T>(x) - wrap_t<T>(y)))
TESSERA_BINARY_FN(Mul, T, T(wrap_t<T>(x) * wrap_t<T>(y)))
TESSERA_BINARY_FN(Eq, bool, x == y)
TESSERA_BINARY_FN(Ne, bool, x != y)
TESSERA_BINARY_FN(Lt, bool, x < y)
TESSERA_BINARY_FN(Le, bool, x <= y)
TESSERA_BINARY_FN(Gt, bool, x > y)
TESSERA_BINARY_FN(Ge, bool, x >= y)
TESSERA_BINARY_FN(LogicalAnd, bool, (x != T(0)) && (y != T(0)))
TESSERA_BINARY_FN(LogicalOr, bool, (x != T(0)) || (y != T(0)))
#undef TESSERA_BINARY_FN

template <typename T>
struct BinaryFn<BinaryOp::Div, T> {
  using out_t = T;
  static inline T apply(T x, T y) {
    if constexpr (std::is_floating_point_v<T>) return x / y;
    else return y == T(0) ? T(0) : T(x / y);  // never reached: ops.hpp divides in float
  }
};
template <typename T>
struct BinaryFn<BinaryOp::Pow, T> {
  using out_t = T;
  static inline T apply(T x, T y) { return T(std::pow(double(x), double(y))); }
};
template <typename T>
struct BinaryFn<BinaryOp::Maximum, T> {
  using out_t = T;
  static inline T apply(T x, T y) {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
    }
    return x < y ? y : x;
  }
};
template <typename T>
struct BinaryFn<BinaryOp::Minimum, T> {
  using out_t = T;
  static inline T apply(T x, T y) {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
    }
    return y < x ? y : x;
  }
};
template <BinaryOp OP, typename T>
void binary_loop(const StridedLoop& loop) {
  using F = BinaryFn<OP, T>;
  using O = typename F::out_t;
  loop.run([](char** p, const int64_t* st, int64_t n) {
    O* o = reinterpret_cast<O*>(p[0]);
    const T* x = reinterpret_cast<const T*>(p[1]);
    const T* y = reinterpret_cast<const T*>(p[2]);
    if (st[0] == sizeof(O) && st[1] == sizeof(T) && st[2] == sizeof(T)) {
      for (int64_t i = 0; i < n; ++i) o[i] = F::apply(x[i], y[i]);
    } else if (st[0] == sizeof(O) && st[1] == sizeof(T) && st[2] == 0) {
      const T yv = *y;
      for (int64_t i = 0; i < n; ++i) o[i] = F::apply(x[i], yv);
    } else if (st[0] == sizeof(O) && st[1] == 0 && st[2] == sizeof(T)) {
      const T xv = *x;
      for (int64_t i = 0; i < n; ++i) o[i] = F::apply(xv, y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<O*>(p[0] + i * st[0]) =
            F::apply(*reinterpret_cast<const T*>(p[1] + i * st[1]), *reinterpret_cast<const T*>(p[2] + i * st[2]));
    }
  });
}

}  // namespace

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (is_reduced_floating_point(a.dtype())) {
    detail::Float32Scope f;
    return binary(op, f.in(a), f.in(b), f.out(out));
  }
  StridedLoop loop({&out, &a, &b});
  dispatch_standard(a.dtype(), binary_op_name(op), [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (op) {
#define TESSERA_CASE(OP) \
  case BinaryOp::OP: binary_loop<BinaryOp::OP, T>(loop); return;
      TESSERA_CASE(Add) TESSERA_CASE(Sub) TESSERA_CASE(Mul) TESSERA_CASE(Div) TESSERA_CASE(Pow)
      TESSERA_CASE(Maximum) TESSERA_CASE(Minimum) TESSERA_CASE(Eq) TESSERA_CASE(Ne) TESSERA_CASE(Lt)
      TESSERA_CASE(Le) TESSERA_CASE(Gt) TESSERA_CASE(Ge) TESSERA_CASE(LogicalAnd) TESSERA_CASE(LogicalOr)
#undef TESSERA_CASE
    }
  });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  StridedLoop loop({&out, &cond, &a, &b});
  dispatch_all(out.dtype(), "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    loop.run([](char** p, const int64_t* st, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        bool c = *reinterpret_cast<const bool*>(p[1] + i * st[1]);
        *reinterpret_cast<T*>(p[0] + i * st[0]) =
            c ? *reinterpret_cast<const T*>(p[2] + i * st[2]) : *reinterpret_cast<const T*>(p[3] + i * st[3]);
      }
    });
  });
}

// ---- random --------------------------------------------------------------------------------

void CpuBackend::random(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t offset, double a, double b) {
  dispatch_all(out.dtype(), "random", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = static_cast<T*>(out.raw_data());
    parallel_for(out.numel(), kParallelGrain / 8, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        Philox4x32 r = philox_block(seed, offset, uint64_t(i));
        switch (kind) {
          case RandomKind::Uniform:
            // Rounding can reach b itself: keep the interval half-open.
            if constexpr (is_reduced_type_v<T>) {
              // Round the float sample once; a value that rounds up to b steps down to the
              // largest value of T below b.
              const float v = float(a) + float(b - a) * uint_to_unit_float(r.v[0]);
              T t = T(v);
              p[i] = (double(float(t)) >= b && b > a) ? largest_below<T>(b) : t;
            } else if constexpr (std::is_same_v<T, float>) {
              float v = float(a) + float(b - a) * uint_to_unit_float(r.v[0]);
              p[i] = (v >= float(b) && b > a) ? std::nextafter(float(b), float(a)) : v;
            } else {
              double v = a + (b - a) * uint2_to_unit_double(r.v[0], r.v[1]);
              p[i] = T((v >= b && b > a) ? std::nextafter(b, a) : v);
            }
            break;
          case RandomKind::Normal: {
            double u1 = uint2_to_unit_double(r.v[0], r.v[1]), u2 = uint2_to_unit_double(r.v[2], r.v[3]);
            double z = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * M_PI * u2);
            p[i] = T(a + b * z);
            break;
          }
          case RandomKind::RandInt: {
            double u = uint2_to_unit_double(r.v[0], r.v[1]);
            double v = std::floor(a + u * (b - a));
            if (v > b - 1) v = b - 1;
            p[i] = T(v);
            break;
          }
        }
      }
    });
  });
}

}  // namespace tessera::cpu
