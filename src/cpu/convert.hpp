// Internal to the CPU backend: float32 <-> float16 array conversion. With F16C (x86, under
// -march=native on any CPU since 2012) 8 values per instruction: VCVTPS2PH with imm8 0
// (round to nearest even, MXCSR ignored) and VCVTPH2PS, which give the bits of the scalar
// conversions in tessera/half.hpp for every input, subnormals, ties, overflow and NaN
// included (tests/test_dtype.cpp compares them). Without F16C, the scalar ones.
#pragma once
#include <cstdint>

#include "tessera/half.hpp"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace tessera::cpu {

inline void float_to_half(const float* src, Half* dst, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
#endif
  for (; i < n; ++i) dst[i] = Half(src[i]);
}

inline void half_to_float(const Half* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
  for (; i < n; ++i) dst[i] = float(src[i]);
}

}  // namespace tessera::cpu
