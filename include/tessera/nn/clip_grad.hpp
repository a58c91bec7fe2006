// Gradient clipping, as torch.nn.utils.clip_grad_norm_ (torch/nn/utils/clip_grad.py).
#pragma once
#include <vector>

#include "tessera/tensor.hpp"

namespace tessera::nn::utils {

/// Scales the gradients of `parameters` in place so that their total norm is at most
/// max_norm, and returns the total norm before clipping (a 0-dim tensor of the first
/// gradient's dtype, on its device), as torch.nn.utils.clip_grad_norm_:
///   total = || (||g_1||_p, ..., ||g_n||_p) ||_p   (norm_type p > 0, or inf for the max |g|)
///   every g *= min(1, max_norm / (total + 1e-6))
/// Parameters without a gradient are skipped; with none, returns 0. The scale is applied as a
/// device tensor, so clipping does not wait for a GPU unless error_if_nonfinite is set, which
/// reads the total back and throws ValueError when it is NaN or infinite (gradients unchanged).
/// Throws ValueError for norm_type <= 0 or NaN, or max_norm NaN.
Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

}  // namespace tessera::nn::utils
