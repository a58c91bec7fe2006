// Batched matrix multiply for Backend::bmm: cuBLAS strided-batched GEMM (transposed views
// passed as transposes, not copied; TF32 when tessera::cuda::allow_tf32()), or Tessera's
// tiled SGEMM for float32 when tessera::cuda::gemm_impl() == GemmImpl::Tiled.
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

/// out[b] = a[b] @ b_[b]; a [B, M, K], b_ [B, K, N] any strides; out [B, M, N] contiguous.
void bmm(const Tensor& a, const Tensor& b, const Tensor& out);

}  // namespace tessera::cuda::detail
