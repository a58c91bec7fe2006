// Internal to the CPU backend: exp over arrays with Eigen's vectorised code and a fix for
// its subnormal range.
#pragma once
#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>

namespace tessera::cpu {

/// y[i] = exp(x[i]) for i < n (y may be x itself). Eigen 3.4's vectorised exp (pexp) is wrong
/// where the result is subnormal when it is compiled for AVX2 without AVX-512: it gives
/// exp(-1000.0) = 5.6e-309 instead of 0 and exp(-100.0f) = 1e-38-ish instead of 0, every
/// x below about log(FLT_MIN) = -87.3 (float) / log(DBL_MIN) = -708.4 (double); measured
/// on an AVX2 EPYC, where the unit test "unary edge values" caught it. The few elements in
/// that range are recomputed with std::exp, which rounds them correctly (to 0 or a subnormal).
template <typename T>
inline void exp_array(const T* x, T* y, int64_t n) {
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  const T lo = std::log(std::numeric_limits<T>::min());
  constexpr int64_t B = 256;  // blocks, so that y may alias x: the fix-up reads the input copy
  alignas(64) T in[B];
  for (int64_t i0 = 0; i0 < n; i0 += B) {
    const int64_t len = n - i0 < B ? n - i0 : B;
    bool any_low = false;
    for (int64_t i = 0; i < len; ++i) {
      in[i] = x[i0 + i];
      any_low |= in[i] < lo;
    }
    Eigen::Map<Arr>(y + i0, len) = Eigen::Map<const Arr>(in, len).exp();
    if (any_low)
      for (int64_t i = 0; i < len; ++i)
        if (in[i] < lo) y[i0 + i] = std::exp(in[i]);
  }
}

}  // namespace tessera::cpu
