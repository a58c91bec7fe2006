#include "gemm_cublas.cuh"

#include "cuda_context.cuh"
#include "elementwise.cuh"
#include "gemm_tiled.cuh"
#include "tessera/cuda.hpp"

namespace tessera::cuda::detail {

namespace {

/// How a [rows, cols] matrix with strides (sr, sc) looks to a column-major BLAS.
struct BlasView {
  bool ok = false;
  bool row_major = false;  // true: memory is the transpose in column-major terms
  int64_t ld = 0;
};

BlasView blas_view(int64_t rows, int64_t cols, int64_t sr, int64_t sc) {
  BlasView v;
  const int64_t r1 = rows > 1 ? rows : 1, c1 = cols > 1 ? cols : 1;
  if ((sc == 1 || cols == 1) && (sr >= c1 || rows == 1)) {
    v.ok = true;
    v.row_major = true;
    v.ld = rows == 1 ? c1 : sr;
    if (v.ld < c1) v.ld = c1;
    return v;
  }
  if ((sr == 1 || rows == 1) && (sc >= r1 || cols == 1)) {
    v.ok = true;
    v.row_major = false;
    v.ld = cols == 1 ? r1 : sc;
    if (v.ld < r1) v.ld = r1;
  }
  return v;
}

Tensor contiguous_copy(const Tensor& t) {
  Tensor c = make_device_tensor(t.shape(), t.dtype(), t.device());
  elementwise_copy(t, c);
  return c;
}

}  // namespace

void bmm(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  TESSERA_CHECK(a_in.dim() == 3 && b_in.dim() == 3 && out.dim() == 3, ShapeError,
                "cuda bmm: expected 3-d tensors, got ", shape_str(a_in.shape()), " and ", shape_str(b_in.shape()));
  const int64_t Bt = out.size(0), M = out.size(1), N = out.size(2), K = a_in.size(2);
  TESSERA_CHECK(a_in.dtype() == b_in.dtype() && a_in.dtype() == out.dtype(), DTypeError, "cuda bmm: dtypes ",
                a_in.dtype(), ", ", b_in.dtype(), " and output ", out.dtype(), " must match");
  if (Bt == 0 || M == 0 || N == 0) return;
  DeviceGuard guard(out.device().index);
  DeviceContext& ctx = context_of(out);
  if (K == 0) {
    elementwise_fill(out, 0.0);
    return;
  }
  // float16/bfloat16: tensor cores through cublasGemmEx's 16-bit types with float32
  // accumulation (CUBLAS_COMPUTE_32F), one rounding of each output.
  ::tessera::dispatch<kFloatingTypes>(out.dtype(), "cuda bmm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor a = a_in, b = b_in;
    const int64_t bsa = a.size(0) == 1 ? 0 : a.stride(0);
    const int64_t bsb = b.size(0) == 1 ? 0 : b.stride(0);

    if (std::is_same_v<T, float> && gemm_impl() == GemmImpl::Tiled) {
      // The tiled kernel reads row-major A and B; other layouts are copied first.
      auto row_major_ok = [](const Tensor& t) {
        return (t.stride(2) == 1 || t.size(2) == 1) && (t.stride(1) >= t.size(2) || t.size(1) == 1);
      };
      int64_t sa = bsa, sb = bsb;
      if (!row_major_ok(a)) { a = contiguous_copy(a); sa = a.size(0) == 1 ? 0 : a.stride(0); }
      if (!row_major_ok(b)) { b = contiguous_copy(b); sb = b.size(0) == 1 ? 0 : b.stride(0); }
      const int64_t lda = a.size(1) == 1 ? K : a.stride(1);
      const int64_t ldb = b.size(1) == 1 ? N : b.stride(1);
      tiled_sgemm(M, N, K, static_cast<const float*>(a.raw_data()), lda, sa, static_cast<const float*>(b.raw_data()),
                  ldb, sb, static_cast<float*>(out.raw_data()), N, M * N, Bt, ctx.stream);
      return;
    }

    // Column-major view: C^T [N x M] = op(B^T-view) [N x K] * op(A^T-view) [K x M].
    BlasView vb = blas_view(K, N, b.stride(1), b.stride(2));
    if (!vb.ok) { b = contiguous_copy(b); vb = blas_view(K, N, b.stride(1), b.stride(2)); }
    BlasView va = blas_view(M, K, a.stride(1), a.stride(2));
    if (!va.ok) { a = contiguous_copy(a); va = blas_view(M, K, a.stride(1), a.stride(2)); }
    const int64_t sa = a.size(0) == 1 ? 0 : a.stride(0);
    const int64_t sb = b.size(0) == 1 ? 0 : b.stride(0);
    const cublasOperation_t opb = vb.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
    const cublasOperation_t opa = va.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
    using Scalar = compute_type_t<T>;  // alpha and beta: float for the 16-bit types
    const Scalar alpha = Scalar(1), beta = Scalar(0);
    cudaDataType_t dt = std::is_same_v<T, float>      ? CUDA_R_32F
                        : std::is_same_v<T, double>   ? CUDA_R_64F
                        : std::is_same_v<T, Half>     ? CUDA_R_16F
                                                      : CUDA_R_16BF;
    cublasComputeType_t ct = std::is_same_v<T, double> ? CUBLAS_COMPUTE_64F
                             : (std::is_same_v<T, float> && allow_tf32_matmul()) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                          : CUBLAS_COMPUTE_32F;
    TESSERA_CUBLAS_CHECK(cublasGemmStridedBatchedEx_64(
        ctx.cublas(), opb, opa, N, M, K, &alpha, b.raw_data(), dt, vb.ld, sb, a.raw_data(), dt, va.ld, sa, &beta,
        out.raw_data(), dt, N, M * N, Bt, ct, CUBLAS_GEMM_DEFAULT));
  });
}

}  // namespace tessera::cuda::detail
