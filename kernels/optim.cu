#include "optim.cuh"

#include <cmath>

#include "cuda_context.cuh"
#include "device_math.cuh"

namespace tessera::cuda::detail {

namespace {
template <typename T>
struct AdamScalars {
  T decay, wd, b1, c1, b2, c2, sqrt_bc2, eps, step;
  bool has_wd;
};
template <typename T>
struct SgdScalars {
  T wd, mom, keep, lr;
  bool has_wd, first, nesterov;
};

// The same element arithmetic as the CPU backend's (src/cpu/optim.cpp), in T.
template <typename T, bool DECOUPLED, bool AMSGRAD>
__global__ void adam_kernel(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ m, T* __restrict__ v,
                            T* __restrict__ vmax, int64_t n, AdamScalars<T> s) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T g = grad[i], w = p[i];
    if (DECOUPLED) w *= s.decay;
    else if (s.has_wd) g += s.wd * w;
    const T mi = s.b1 * m[i] + s.c1 * g, vi = s.b2 * v[i] + s.c2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    T second = vi;
    if (AMSGRAD) {
      const T old = vmax[i];
      const T mx = (vi > old || vi != vi) ? vi : old;  // NaN propagates
      vmax[i] = mx;
      second = mx;
    }
    p[i] = w - s.step * (mi / (m_sqrt(second) / s.sqrt_bc2 + s.eps));
  }
}

template <typename T, bool MOMENTUM>
__global__ void sgd_kernel(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ buf, int64_t n,
                           SgdScalars<T> s) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T g = grad[i];
    if (s.has_wd) g += s.wd * p[i];
    if (MOMENTUM) {
      const T b = s.first ? g : s.mom * buf[i] + s.keep * g;
      buf[i] = b;
      g = s.nesterov ? g + s.mom * b : b;
    }
    p[i] -= s.lr * g;
  }
}
}  // namespace

void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const Tensor& max_exp_avg_sq, const AdamStepParams& a) {
  const int64_t n = param.numel();
  if (n == 0) return;
  DeviceGuard guard(param.device().index);
  cudaStream_t st = context_of(param).stream;
  dispatch_float(param.dtype(), "adam_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const AdamScalars<T> s{T(1.0 - a.lr * a.weight_decay), T(a.weight_decay), T(a.beta1), T(1.0 - a.beta1),
                           T(a.beta2), T(1.0 - a.beta2), T(std::sqrt(a.bias_correction2)), T(a.eps),
                           T(a.lr / a.bias_correction1), a.weight_decay != 0.0};
    T* p = static_cast<T*>(param.raw_data());
    const T* g = static_cast<const T*>(grad.raw_data());
    T* m = static_cast<T*>(exp_avg.raw_data());
    T* v = static_cast<T*>(exp_avg_sq.raw_data());
    T* vmax = a.amsgrad ? static_cast<T*>(max_exp_avg_sq.raw_data()) : nullptr;
    const unsigned blocks = grid_for(n, kThreads);
    if (a.decoupled && a.amsgrad) adam_kernel<T, true, true><<<blocks, kThreads, 0, st>>>(p, g, m, v, vmax, n, s);
    else if (a.decoupled) adam_kernel<T, true, false><<<blocks, kThreads, 0, st>>>(p, g, m, v, vmax, n, s);
    else if (a.amsgrad) adam_kernel<T, false, true><<<blocks, kThreads, 0, st>>>(p, g, m, v, vmax, n, s);
    else adam_kernel<T, false, false><<<blocks, kThreads, 0, st>>>(p, g, m, v, vmax, n, s);
    TESSERA_KERNEL_CHECK();
  });
}

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SgdStepParams& a) {
  const int64_t n = param.numel();
  if (n == 0) return;
  DeviceGuard guard(param.device().index);
  cudaStream_t st = context_of(param).stream;
  dispatch_float(param.dtype(), "sgd_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const SgdScalars<T> s{T(a.weight_decay), T(a.momentum), T(1.0 - a.dampening), T(a.lr), a.weight_decay != 0.0,
                          a.first, a.nesterov};
    T* p = static_cast<T*>(param.raw_data());
    const T* g = static_cast<const T*>(grad.raw_data());
    const unsigned blocks = grid_for(n, kThreads);
    if (a.momentum != 0.0)
      sgd_kernel<T, true><<<blocks, kThreads, 0, st>>>(p, g, static_cast<T*>(momentum_buffer.raw_data()), n, s);
    else
      sgd_kernel<T, false><<<blocks, kThreads, 0, st>>>(p, g, nullptr, n, s);
    TESSERA_KERNEL_CHECK();
  });
}

}  // namespace tessera::cuda::detail
