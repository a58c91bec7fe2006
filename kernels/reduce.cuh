// Row reductions: each row of a contiguous [M, R] tensor to one value (sum, mean, prod,
// max/min with first-occurrence indices, argmax/argmin, var with a correction, all, any).
// One warp per row for short rows, one block per row (or several, combined in a second
// kernel, when there are few long rows). Float inputs accumulate in float64.
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

/// See Backend::reduce_rows.
void reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out, const Tensor& indices, double correction);

}  // namespace tessera::cuda::detail
