// conv2d forward, backward-data, backward-filter and bias gradient through cuDNN. The
// algorithm for each (shape, dtype, math mode, direction) is chosen once with
// cudnnFind*AlgorithmEx and cached; workspaces come from the caching allocator.
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

/// See Backend::conv2d_forward.
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, const Tensor& out);
/// See Backend::conv2d_backward.
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& grad_out, const Conv2dParams& p,
                     const Tensor& grad_x, const Tensor& grad_w, const Tensor& grad_b);

}  // namespace tessera::cuda::detail
