// tessera::Half (IEEE 754 binary16) and tessera::BFloat16 (bfloat16, the top half of a
// float32): two-byte value types usable in host and device code. They store bits; arithmetic
// goes through float (each operation rounds once to the two-byte format).
//
// Conversions from float round to nearest, ties to even, in integer arithmetic, so they do
// not depend on the FPU's rounding mode or on flush-to-zero/denormals-are-zero settings:
//   - NaN stays NaN (sign kept, quiet bit set), +-inf and +-0 are kept;
//   - float16: values of magnitude >= 65520 (half-way between 65504, the largest finite
//     float16, and 2^16) become inf; 65504 stays; subnormals (down to 2^-24 = 5.96e-8) are
//     kept; magnitudes <= 2^-25 become (signed) zero;
//   - bfloat16: keeps float32's exponent range, so float32 subnormals stay subnormal (1e-39f
//     becomes 0x000b, where AVX-512 BF16's VCVTNEPS2BF16 would flush it to 0x0000; Tessera
//     never uses that instruction); values past 3.3961e38 become inf.
// In CUDA device code the conversions use cuda_fp16.h / cuda_bf16.h's round-to-nearest
// intrinsics, which give the same bits.
// Formats: IEEE 754-2008 section 3.6 (binary16); Intel, "BFLOAT16 - Hardware Numerics
// Definition" (2018), section 2.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <type_traits>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define TESSERA_HOST_DEVICE __host__ __device__
#else
#define TESSERA_HOST_DEVICE
#endif

namespace tessera {

namespace half_detail {

TESSERA_HOST_DEVICE inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
TESSERA_HOST_DEVICE inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// float32 -> binary16 bits, round to nearest even (see the header comment).
TESSERA_HOST_DEVICE inline uint16_t float_to_half_bits(float f) {
  const uint32_t x = float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));  // NaN, quiet
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520 (or inf) -> inf
  if (ax >= 0x38800000u) {  // >= 2^-14: normal binary16
    const uint32_t r = ax - ((127u - 15u) << 23);  // rebias the exponent, float layout
    uint32_t h = r >> 13;
    const uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry moves to the next binade
    return uint16_t(sign | h);
  }
  const int e = int(ax >> 23) - 127;  // unbiased exponent, < -14 here
  if (e < -25) return uint16_t(sign);  // below 2^-25: rounds to zero
  // Subnormal: value = m * 2^-24 with m = mant * 2^(e + 1).
  const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
  const int shift = -e - 1;  // 14 .. 24
  uint32_t h = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (h & 1u))) ++h;  // may become the smallest normal
  return uint16_t(sign | h);
}

/// binary16 bits -> float32 (exact).
TESSERA_HOST_DEVICE inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  if (e == 0x1fu) return bits_float(sign | 0x7f800000u | (m << 13));  // inf, NaN (payload kept)
  if (e == 0) {
    if (m == 0) return bits_float(sign);
    int ex = -14;  // subnormal: normalise
    while (!(m & 0x400u)) {
      m <<= 1;
      --ex;
    }
    return bits_float(sign | (uint32_t(ex + 127) << 23) | ((m & 0x3ffu) << 13));
  }
  return bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

/// float32 -> bfloat16 bits, round to nearest even (see the header comment).
TESSERA_HOST_DEVICE inline uint16_t float_to_bfloat16_bits(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // NaN, quiet
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

TESSERA_HOST_DEVICE inline float bfloat16_bits_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

}  // namespace half_detail

/// Tag for constructing from raw bits: Half(0x3c00, Half::from_bits) is 1.0.
struct FromBitsTag {};

/// IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Largest finite
/// 65504, smallest normal 2^-14, smallest subnormal 2^-24, epsilon 2^-10.
/// Construction from a number is explicit (so `half + 1.0f` is unambiguously float); the
/// value converts implicitly to float; Half op Half computes in float and rounds once.
struct Half {
  uint16_t x = 0;  ///< the bits

  static constexpr FromBitsTag from_bits{};
  Half() = default;
  constexpr TESSERA_HOST_DEVICE Half(uint16_t bits, FromBitsTag) : x(bits) {}
  TESSERA_HOST_DEVICE explicit Half(float v) : x(convert(v)) {}
  TESSERA_HOST_DEVICE explicit Half(double v) : Half(float(v)) {}
  TESSERA_HOST_DEVICE explicit Half(int v) : Half(float(v)) {}
  TESSERA_HOST_DEVICE explicit Half(long long v) : Half(float(v)) {}
  TESSERA_HOST_DEVICE explicit Half(long v) : Half(float(v)) {}
  TESSERA_HOST_DEVICE operator float() const {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(x));
#else
    return half_detail::half_bits_to_float(x);
#endif
  }
  TESSERA_HOST_DEVICE static uint16_t convert(float v) {
#if defined(__CUDA_ARCH__)
    return __half_as_ushort(__float2half_rn(v));
#else
    return half_detail::float_to_half_bits(v);
#endif
  }
};

/// bfloat16: 1 sign bit, 8 exponent bits (bias 127), 7 mantissa bits; float32's range with
/// 8 bits of precision (epsilon 2^-7). Same conversion rules as Half.
struct BFloat16 {
  uint16_t x = 0;  ///< the bits

  static constexpr FromBitsTag from_bits{};
  BFloat16() = default;
  constexpr TESSERA_HOST_DEVICE BFloat16(uint16_t bits, FromBitsTag) : x(bits) {}
  TESSERA_HOST_DEVICE explicit BFloat16(float v) : x(convert(v)) {}
  TESSERA_HOST_DEVICE explicit BFloat16(double v) : BFloat16(float(v)) {}
  TESSERA_HOST_DEVICE explicit BFloat16(int v) : BFloat16(float(v)) {}
  TESSERA_HOST_DEVICE explicit BFloat16(long long v) : BFloat16(float(v)) {}
  TESSERA_HOST_DEVICE explicit BFloat16(long v) : BFloat16(float(v)) {}
  TESSERA_HOST_DEVICE operator float() const { return half_detail::bfloat16_bits_to_float(x); }
  TESSERA_HOST_DEVICE static uint16_t convert(float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    return __bfloat16_as_ushort(__float2bfloat16_rn(v));
#else
    return half_detail::float_to_bfloat16_bits(v);
#endif
  }
};

// Arithmetic between two values of one reduced type: in float, rounded once. Mixed with
// float or double the result is float or double (through the implicit conversion).
#define TESSERA_REDUCED_ARITH(T)                                                                              \
  TESSERA_HOST_DEVICE inline T operator+(T a, T b) { return T(float(a) + float(b)); }                     \
  TESSERA_HOST_DEVICE inline T operator-(T a, T b) { return T(float(a) - float(b)); }                     \
  TESSERA_HOST_DEVICE inline T operator*(T a, T b) { return T(float(a) * float(b)); }                     \
  TESSERA_HOST_DEVICE inline T operator/(T a, T b) { return T(float(a) / float(b)); }                     \
  TESSERA_HOST_DEVICE inline T operator-(T a) { return T(uint16_t(a.x ^ 0x8000u), FromBitsTag{}); }       \
  TESSERA_HOST_DEVICE inline T& operator+=(T& a, float b) { return a = T(float(a) + b); }                 \
  TESSERA_HOST_DEVICE inline T& operator-=(T& a, float b) { return a = T(float(a) - b); }                 \
  TESSERA_HOST_DEVICE inline T& operator*=(T& a, float b) { return a = T(float(a) * b); }                 \
  TESSERA_HOST_DEVICE inline T& operator/=(T& a, float b) { return a = T(float(a) / b); }                 \
  TESSERA_HOST_DEVICE inline bool isnan(T a) { return (a.x & 0x7fffu) > (std::is_same<T, Half>::value ? 0x7c00u : 0x7f80u); } \
  TESSERA_HOST_DEVICE inline bool isinf(T a) { return (a.x & 0x7fffu) == (std::is_same<T, Half>::value ? 0x7c00u : 0x7f80u); } \
  inline std::ostream& operator<<(std::ostream& os, T a) { return os << float(a); }

TESSERA_REDUCED_ARITH(Half)
TESSERA_REDUCED_ARITH(BFloat16)
#undef TESSERA_REDUCED_ARITH

/// Bit-exact equality (NaN payloads and the sign of zero count); operator== compares values.
TESSERA_HOST_DEVICE inline bool same_bits(Half a, Half b) { return a.x == b.x; }
TESSERA_HOST_DEVICE inline bool same_bits(BFloat16 a, BFloat16 b) { return a.x == b.x; }

/// The largest value of T (Half or BFloat16) strictly below b, for b above T's lowest value:
/// random number generators use it to keep [a, b) half-open after rounding to T.
template <typename T>
TESSERA_HOST_DEVICE T largest_below(double b) {
  const T t = T(b);
  if (double(float(t)) < b) return t;
  const uint16_t bits = t.x;
  if (bits == 0x0000u || bits == 0x8000u) return T(uint16_t(0x8001u), FromBitsTag{});  // -denorm_min
  return T(uint16_t((bits & 0x8000u) ? bits + 1u : bits - 1u), FromBitsTag{});
}

}  // namespace tessera

namespace std {

template <>
class numeric_limits<tessera::Half> {
  using H = tessera::Half;
  static constexpr H b(uint16_t v) { return H(v, tessera::FromBitsTag{}); }

 public:
  static constexpr bool is_specialized = true, is_signed = true, is_integer = false, is_exact = false;
  static constexpr bool has_infinity = true, has_quiet_NaN = true, has_signaling_NaN = true;
  static constexpr bool has_denorm_loss = false, is_iec559 = true, is_bounded = true, is_modulo = false;
  static constexpr float_denorm_style has_denorm = denorm_present;
  static constexpr float_round_style round_style = round_to_nearest;
  static constexpr int digits = 11, digits10 = 3, max_digits10 = 5, radix = 2;
  static constexpr int min_exponent = -13, min_exponent10 = -4, max_exponent = 16, max_exponent10 = 4;
  static constexpr bool traps = false, tinyness_before = false;
  static constexpr H min() { return b(0x0400); }            ///< 2^-14
  static constexpr H lowest() { return b(0xfbff); }         ///< -65504
  static constexpr H max() { return b(0x7bff); }            ///< 65504
  static constexpr H epsilon() { return b(0x1400); }        ///< 2^-10
  static constexpr H round_error() { return b(0x3800); }    ///< 0.5
  static constexpr H infinity() { return b(0x7c00); }
  static constexpr H quiet_NaN() { return b(0x7e00); }
  static constexpr H signaling_NaN() { return b(0x7d00); }
  static constexpr H denorm_min() { return b(0x0001); }     ///< 2^-24
};

template <>
class numeric_limits<tessera::BFloat16> {
  using B = tessera::BFloat16;
  static constexpr B b(uint16_t v) { return B(v, tessera::FromBitsTag{}); }

 public:
  static constexpr bool is_specialized = true, is_signed = true, is_integer = false, is_exact = false;
  static constexpr bool has_infinity = true, has_quiet_NaN = true, has_signaling_NaN = true;
  static constexpr bool has_denorm_loss = false, is_iec559 = false, is_bounded = true, is_modulo = false;
  static constexpr float_denorm_style has_denorm = denorm_present;
  static constexpr float_round_style round_style = round_to_nearest;
  static constexpr int digits = 8, digits10 = 2, max_digits10 = 4, radix = 2;
  static constexpr int min_exponent = -125, min_exponent10 = -37, max_exponent = 128, max_exponent10 = 38;
  static constexpr bool traps = false, tinyness_before = false;
  static constexpr B min() { return b(0x0080); }            ///< 2^-126
  static constexpr B lowest() { return b(0xff7f); }         ///< -3.3895e38
  static constexpr B max() { return b(0x7f7f); }            ///< 3.3895e38
  static constexpr B epsilon() { return b(0x3c00); }        ///< 2^-7
  static constexpr B round_error() { return b(0x3f00); }    ///< 0.5
  static constexpr B infinity() { return b(0x7f80); }
  static constexpr B quiet_NaN() { return b(0x7fc0); }
  static constexpr B signaling_NaN() { return b(0x7fa0); }
  static constexpr B denorm_min() { return b(0x0001); }     ///< 2^-133
};

}  // namespace std
