// Tessera's own SGEMM: 128x128 output tiles per block of 256 threads, 8x8 outputs per thread
// held in registers (register blocking), the A and B tiles (k-depth 8) staged in shared
// memory with double buffering, 16-byte loads where the layout allows. The kernel design of
// the classic "SGEMM with register blocking" (Volkov & Demmel 2008; NVIDIA CUTLASS's
// SIMT path follows the same structure).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda::detail {

/// C[b] (M x N, row-major, ldc) = A[b] (M x K, row-major, lda) @ B[b] (K x N, row-major, ldb)
/// for b < batch, with batch strides sA, sB (0 broadcasts), sC; all in elements.
void tiled_sgemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, int64_t sA, const float* B,
                 int64_t ldb, int64_t sB, float* C, int64_t ldc, int64_t sC, int64_t batch, cudaStream_t stream);

}  // namespace tessera::cuda::detail
