#include "gemm_tiled.cuh"

#include "cuda_context.cuh"

namespace tessera::cuda::detail {

namespace {
constexpr int BM = 128, BN = 128, BK = 8, NT = 256;

// At most 128 registers, so that two blocks (16 warps) share an SM: one block's loads and
// barrier wait overlap the other's FMAs (unbounded, the float4 variant took 139 registers on
// sm_90 and ran one block per SM). The few spills this costs on some architectures are
// outside the k loop.
template <bool VEC>
__global__ void __launch_bounds__(NT, 2) sgemm_tiled_kernel(int64_t M, int64_t N, int64_t K, const float* __restrict__ A,
                                                         int64_t lda, int64_t sA, const float* __restrict__ B,
                                                         int64_t ldb, int64_t sB, float* __restrict__ C, int64_t ldc,
                                                         int64_t sC, int64_t batch) {
  __shared__ __align__(16) float As[2][BK][BM];
  __shared__ __align__(16) float Bs[2][BK][BN];
  const int tid = threadIdx.x;
  const int tx = tid & 15, ty = tid >> 4;
  const int a_row = tid >> 1, a_col = (tid & 1) * 4;
  const int b_row = tid >> 5, b_col = (tid & 31) * 4;
  const int64_t row0 = int64_t(blockIdx.y) * BM, col0 = int64_t(blockIdx.x) * BN;

  for (int64_t bz = blockIdx.z; bz < batch; bz += gridDim.z) {
    const float* Ab = A + bz * sA;
    const float* Bb = B + bz * sB;
    float* Cb = C + bz * sC;

    // This thread loads A row ar, columns k0 + a_col .. +3, and B row k0 + b_row, columns
    // bc .. bc + 3, through pointers that follow k0: a tile inside K is two 16-byte loads and
    // two pointer increments (no 64-bit index arithmetic, few live registers). A row outside A
    // or columns outside B are clamped to 0 for the pointer and never loaded.
    const int64_t ar = row0 + a_row, bc = col0 + b_col;
    const bool a_in = ar < M, b_in = bc < N;  // with VEC (N % 4 == 0), bc < N means bc + 3 < N
    const float* a_src = Ab + (a_in ? ar : 0) * lda + a_col;
    const float* b_src = Bb + int64_t(b_row) * ldb + (b_in ? bc : 0);
    const int64_t b_step = int64_t(BK) * ldb;

    float ra[4], rb[4];
    auto load_tiles = [&](int64_t k0) {
      if (VEC && k0 + BK <= K) {
        const float4 va = a_in ? *reinterpret_cast<const float4*>(a_src) : make_float4(0.f, 0.f, 0.f, 0.f);
        const float4 vb = b_in ? *reinterpret_cast<const float4*>(b_src) : make_float4(0.f, 0.f, 0.f, 0.f);
        ra[0] = va.x; ra[1] = va.y; ra[2] = va.z; ra[3] = va.w;
        rb[0] = vb.x; rb[1] = vb.y; rb[2] = vb.z; rb[3] = vb.w;
      } else {  // the last, partial k tile; every tile without VEC
        const int64_t ak = k0 + a_col;
        const bool bk_in = k0 + b_row < K;
#pragma unroll
        for (int i = 0; i < 4; ++i) ra[i] = (a_in && ak + i < K) ? a_src[i] : 0.f;
#pragma unroll
        for (int j = 0; j < 4; ++j) rb[j] = (bk_in && bc + j < N) ? b_src[j] : 0.f;
      }
      a_src += BK;
      b_src += b_step;
    };
    auto store_tiles = [&](int buf) {
#pragma unroll
      for (int i = 0; i < 4; ++i) As[buf][a_col + i][a_row] = ra[i];
      *reinterpret_cast<float4*>(&Bs[buf][b_row][b_col]) = make_float4(rb[0], rb[1], rb[2], rb[3]);
    };

    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;

    load_tiles(0);
    store_tiles(0);
    __syncthreads();
    int buf = 0;
    for (int64_t k0 = 0; k0 < K; k0 += BK) {
      const bool more = k0 + BK < K;
      if (more) load_tiles(k0 + BK);
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        float a[8], b[8];
        float4 a0 = *reinterpret_cast<const float4*>(&As[buf][kk][ty * 4]);
        float4 a1 = *reinterpret_cast<const float4*>(&As[buf][kk][64 + ty * 4]);
        float4 b0 = *reinterpret_cast<const float4*>(&Bs[buf][kk][tx * 4]);
        float4 b1 = *reinterpret_cast<const float4*>(&Bs[buf][kk][64 + tx * 4]);
        a[0] = a0.x; a[1] = a0.y; a[2] = a0.z; a[3] = a0.w; a[4] = a1.x; a[5] = a1.y; a[6] = a1.z; a[7] = a1.w;
        b[0] = b0.x; b[1] = b0.y; b[2] = b0.z; b[3] = b0.w; b[4] = b1.x; b[5] = b1.y; b[6] = b1.z; b[7] = b1.w;
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
      if (more) store_tiles(buf ^ 1);
      __syncthreads();
      buf ^= 1;
    }

#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t r = row0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
      if (r >= M) continue;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t c = col0 + h * 64 + tx * 4;
        float* dst = Cb + r * ldc + c;
        if (VEC && c + 3 < N) {
          *reinterpret_cast<float4*>(dst) = make_float4(acc[i][h * 4], acc[i][h * 4 + 1], acc[i][h * 4 + 2], acc[i][h * 4 + 3]);
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j)
            if (c + j < N) dst[j] = acc[i][h * 4 + j];
        }
      }
    }
    __syncthreads();
  }
}
}  // namespace

void tiled_sgemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, int64_t sA, const float* B,
                 int64_t ldb, int64_t sB, float* C, int64_t ldc, int64_t sC, int64_t batch, cudaStream_t stream) {
  if (M == 0 || N == 0 || batch == 0) return;
  TESSERA_CHECK(ceil_div(M, BM) <= 65535, UnsupportedError, "tiled sgemm: M = ", M, " exceeds ", 65535 * BM);
  dim3 grid(unsigned(ceil_div(N, BN)), unsigned(ceil_div(M, BM)), unsigned(batch < 65535 ? batch : 65535));
  const bool vec = K % 4 == 0 && N % 4 == 0 && lda % 4 == 0 && ldb % 4 == 0 && ldc % 4 == 0 && sA % 4 == 0 &&
                   sB % 4 == 0 && sC % 4 == 0 && aligned(A, 16) && aligned(B, 16) && aligned(C, 16);
  if (vec)
    sgemm_tiled_kernel<true><<<grid, NT, 0, stream>>>(M, N, K, A, lda, sA, B, ldb, sB, C, ldc, sC, batch);
  else
    sgemm_tiled_kernel<false><<<grid, NT, 0, stream>>>(M, N, K, A, lda, sA, B, ldb, sB, C, ldc, sC, batch);
  TESSERA_KERNEL_CHECK();
}

}  // namespace tessera::cuda::detail
