// Elementwise kernels: strided copy with dtype casts, fill, unary and binary ops with
// broadcasting (stride-0 views), where, and Philox random fills. 64-bit indexing; 16-byte
// vector loads and stores when every operand is contiguous and aligned.
#pragma once
#include <cstdint>

#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

/// dst = src with dtype conversion; same shape, any strides (no overlap).
void elementwise_copy(const Tensor& src, const Tensor& dst);
/// Every element of dst = value (converted to dst's dtype).
void elementwise_fill(const Tensor& dst, double value);
/// out (contiguous) = op(x); float dtypes, plus integers for Neg, Abs, Sign, Square, Relu,
/// ReluGrad, Clamp. Throws UnsupportedError otherwise.
void elementwise_unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b);
/// out (contiguous) = op(a, b); out is a's dtype or bool for comparisons.
void elementwise_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
/// out (contiguous) = cond ? a : b.
void elementwise_where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);
/// Fills contiguous out from Philox blocks (seed, offset + i), exactly as the CPU backend.
void random_fill(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t offset, double a, double b);

}  // namespace tessera::cuda::detail
