// max/avg pooling (NCHW). cuDNN runs max-pool forward (dilation 1, floor mode) and avg-pool
// forward (floor mode); Tessera's own kernels cover dilation and ceil_mode with PyTorch's
// window rules, and the backward passes (max: the gradient of a window goes to its first
// maximum, NaN first, recomputed from x, so no saved indices are needed).
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

/// Returns an undefined tensor: backward recomputes the argmax from x.
Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out);
void max_pool2d_backward(const Tensor& x, const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x);
void avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out);
void avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x);

}  // namespace tessera::cuda::detail
