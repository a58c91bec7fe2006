// Softmax and log-softmax over the rows of a contiguous [M, N] tensor, forward and backward.
// Forward reads each row once for an online max-and-sum (Milakov & Gimelshein, "Online
// normalizer calculation for softmax", 2018) and once (from cache) to write: stable for huge
// and -inf logits. One warp per row for N <= 1024, one block per row above.
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

void softmax_rows(const Tensor& x, const Tensor& out, bool log);
/// softmax: gx = y * (gy - sum(gy * y)); log-softmax: gx = gy - exp(y) * sum(gy).
void softmax_rows_backward(const Tensor& y, const Tensor& grad_y, const Tensor& grad_x, bool log);

}  // namespace tessera::cuda::detail
