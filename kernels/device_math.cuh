// Float/double overloads of the math functions the kernels use, so templates over T pick
// the single-precision routine for float (expf, not exp).
#pragma once
#include <cuda_runtime.h>

#include <cmath>

namespace tessera::cuda::detail {

#define TESSERA_DEVICE_MATH1(name, fname, dname)                                  \
  __device__ __forceinline__ float name(float x) { return ::fname(x); }          \
  __device__ __forceinline__ double name(double x) { return ::dname(x); }
TESSERA_DEVICE_MATH1(m_exp, expf, exp)
TESSERA_DEVICE_MATH1(m_log, logf, log)
TESSERA_DEVICE_MATH1(m_log1p, log1pf, log1p)
TESSERA_DEVICE_MATH1(m_sqrt, sqrtf, sqrt)
TESSERA_DEVICE_MATH1(m_rsqrt, rsqrtf, rsqrt)
TESSERA_DEVICE_MATH1(m_sin, sinf, sin)
TESSERA_DEVICE_MATH1(m_cos, cosf, cos)
TESSERA_DEVICE_MATH1(m_tanh, tanhf, tanh)
TESSERA_DEVICE_MATH1(m_erf, erff, erf)
TESSERA_DEVICE_MATH1(m_fabs, fabsf, fabs)
TESSERA_DEVICE_MATH1(m_floor, floorf, floor)
#undef TESSERA_DEVICE_MATH1
__device__ __forceinline__ float m_pow(float x, float y) { return ::powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return ::pow(x, y); }

}  // namespace tessera::cuda::detail
