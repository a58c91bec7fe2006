// Negative log-likelihood loss on log-probabilities, forward and backward.
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

/// logp [N, C] contiguous, target [N] int64 (any stride), out [N] = -logp[i, target_i]
/// (0 where target_i == ignore_index).
void nll_loss_forward(const Tensor& logp, const Tensor& target, const Tensor& out, int64_t ignore_index);
/// grad_logp [N, C] = 0 except grad_logp[i, target_i] = -grad_out[i]; grad_out [N] any stride
/// (a stride-0 broadcast of a mean's gradient is fine); rows whose target is ignore_index are 0.
void nll_loss_backward(const Tensor& grad_out, const Tensor& target, const Tensor& grad_logp, int64_t ignore_index);

}  // namespace tessera::cuda::detail
