// Negative log-likelihood loss on log-probabilities, forward and backward.
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

/// logp [N, C] contiguous, target [N] int64 (any stride), out [N] = -logp[i, target_i].
void nll_loss_forward(const Tensor& logp, const Tensor& target, const Tensor& out);
/// grad_logp [N, C] = 0 except grad_logp[i, target_i] = -grad_out[i]; grad_out [N] any stride
/// (a stride-0 broadcast of a mean's gradient is fine).
void nll_loss_backward(const Tensor& grad_out, const Tensor& target, const Tensor& grad_logp);

}  // namespace tessera::cuda::detail
