// Fused optimizer updates on the CPU: one pass over each parameter and its state, instead of
// the ten-odd elementwise ops (each a full pass over memory) that Adam's formula takes when
// written with tensor ops. Formulas: Backend::adam_step / sgd_step (torch.optim's algorithms).
#include <cmath>

#include "cpu/cpu_backend.hpp"
#include "cpu/dispatch.hpp"

namespace tessera::cpu {
namespace {
constexpr int64_t kGrain = int64_t(1) << 15;

template <typename T, bool DECOUPLED, bool AMSGRAD>
void adam_loop(T* p, const T* grad, T* m, T* v, T* vmax, int64_t n, const AdamStepParams& a) {
  const T decay = T(1.0 - a.lr * a.weight_decay), wd = T(a.weight_decay), b1 = T(a.beta1), c1 = T(1.0 - a.beta1),
          b2 = T(a.beta2), c2 = T(1.0 - a.beta2), sqrt_bc2 = T(std::sqrt(a.bias_correction2)), eps = T(a.eps),
          step = T(a.lr / a.bias_correction1);
  const bool has_wd = a.weight_decay != 0.0;  // without it an inf weight must not turn g into NaN
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T g = grad[i], w = p[i];
      if (DECOUPLED) w *= decay;  // weight_decay 0: decay is exactly 1
      else if (has_wd) g += wd * w;
      const T mi = b1 * m[i] + c1 * g, vi = b2 * v[i] + c2 * (g * g);
      m[i] = mi;
      v[i] = vi;
      T second = vi;
      if (AMSGRAD) {
        const T mx = (vi > vmax[i] || vi != vi) ? vi : vmax[i];  // NaN propagates
        vmax[i] = mx;
        second = mx;
      }
      p[i] = w - step * (mi / (std::sqrt(second) / sqrt_bc2 + eps));
    }
  });
}

template <typename T, bool MOMENTUM>
void sgd_loop(T* p, const T* grad, T* buf, int64_t n, const SgdStepParams& s) {
  const T wd = T(s.weight_decay), mom = T(s.momentum), keep = T(1.0 - s.dampening), lr = T(s.lr);
  const bool first = s.first, nesterov = s.nesterov, has_wd = s.weight_decay != 0.0;
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T g = grad[i];
      if (has_wd) g += wd * p[i];
      if (MOMENTUM) {
        const T b = first ? g : mom * buf[i] + keep * g;
        buf[i] = b;
        g = nesterov ? g + mom * b : b;
      }
      p[i] -= lr * g;
    }
  });
}
}  // namespace

void CpuBackend::adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                           const Tensor& max_exp_avg_sq, const AdamStepParams& a) {
  if (is_reduced_floating_point(param.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return adam_step(f.inout(param), f.in(grad), f.inout(exp_avg), f.inout(exp_avg_sq), f.inout(max_exp_avg_sq), a);
  }
  dispatch_float(param.dtype(), "adam_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = param.data_ptr<T>();
    const T* g = grad.data_ptr<T>();
    T* m = exp_avg.data_ptr<T>();
    T* v = exp_avg_sq.data_ptr<T>();
    T* vmax = a.amsgrad ? max_exp_avg_sq.data_ptr<T>() : nullptr;
    const int64_t n = param.numel();
    if (a.decoupled) {
      if (a.amsgrad) adam_loop<T, true, true>(p, g, m, v, vmax, n, a);
      else adam_loop<T, true, false>(p, g, m, v, vmax, n, a);
    } else {
      if (a.amsgrad) adam_loop<T, false, true>(p, g, m, v, vmax, n, a);
      else adam_loop<T, false, false>(p, g, m, v, vmax, n, a);
    }
  });
}

void CpuBackend::sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                          const SgdStepParams& s) {
  if (is_reduced_floating_point(param.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return sgd_step(f.inout(param), f.in(grad), f.inout(momentum_buffer), s);
  }
  dispatch_float(param.dtype(), "sgd_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (s.momentum != 0.0)
      sgd_loop<T, true>(param.data_ptr<T>(), grad.data_ptr<T>(), momentum_buffer.data_ptr<T>(), param.numel(), s);
    else
      sgd_loop<T, false>(param.data_ptr<T>(), grad.data_ptr<T>(), nullptr, param.numel(), s);
  });
}

}  // namespace tessera::cpu
