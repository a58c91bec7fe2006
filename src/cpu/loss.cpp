// CPU negative log-likelihood loss per sample (reduction is done by ops_nn.cpp with
// sum/mean): out[i] = -logp[i, target[i]] (0 where target[i] == ignore_index), as PyTorch's
// nll_loss with reduction='none'.
#include <algorithm>

#include "cpu/cpu_backend.hpp"
#include "cpu/dispatch.hpp"

namespace tessera::cpu {
namespace {

Tensor contiguous_or_self(const Tensor& t) { return t.is_contiguous() ? t : t.contiguous(); }

/// Targets are validated by nll_loss(); this re-check keeps a direct backend call from
/// reading out of bounds.
void check_targets(const int64_t* t, int64_t n, int64_t classes, int64_t ignore_index, const char* op) {
  for (int64_t i = 0; i < n; ++i) {
    TESSERA_CHECK((t[i] >= 0 && t[i] < classes) || t[i] == ignore_index, IndexError, op, ": target ", t[i], " at index ", i,
                  " is out of bounds for ", classes, " classes");
  }
}

}  // namespace

void CpuBackend::nll_loss_forward(const Tensor& logp, const Tensor& target, const Tensor& out,
                                  int64_t ignore_index) {
  if (is_reduced_floating_point(logp.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return nll_loss_forward(f.in(logp), target, f.out(out), ignore_index);
  }
  const Tensor lc = contiguous_or_self(logp), tc = contiguous_or_self(target);
  const int64_t n = lc.size(0), classes = lc.size(1);
  const int64_t* td = tc.data_ptr<int64_t>();
  check_targets(td, n, classes, ignore_index, "nll_loss");
  dispatch_float(logp.dtype(), "nll_loss", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ld = lc.data_ptr<T>();
    T* od = out.data_ptr<T>();
    for (int64_t i = 0; i < n; ++i) od[i] = td[i] == ignore_index ? T(0) : T(-ld[i * classes + td[i]]);
  });
}

void CpuBackend::nll_loss_backward(const Tensor& grad_out, const Tensor& target, const Tensor& grad_logp,
                                   int64_t ignore_index) {
  if (is_reduced_floating_point(grad_logp.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return nll_loss_backward(f.in(grad_out), target, f.out(grad_logp), ignore_index);
  }
  const Tensor gc = contiguous_or_self(grad_out), tc = contiguous_or_self(target);
  const int64_t n = grad_logp.size(0), classes = grad_logp.size(1);
  const int64_t* td = tc.data_ptr<int64_t>();
  check_targets(td, n, classes, ignore_index, "nll_loss_backward");
  dispatch_float(grad_logp.dtype(), "nll_loss_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gd = gc.data_ptr<T>();
    T* gl = grad_logp.data_ptr<T>();
    std::fill(gl, gl + n * classes, T(0));
    for (int64_t i = 0; i < n; ++i)
      if (td[i] != ignore_index) gl[i * classes + td[i]] = -gd[i];
  });
}

}  // namespace tessera::cpu
