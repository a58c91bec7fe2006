#include "loss.cuh"

#include "cuda_context.cuh"

namespace tessera::cuda::detail {

namespace {
/// Records an out-of-range class index for check_device_errors: of several, the one whose
/// thread claims the record first (not necessarily the lowest index).
__device__ __forceinline__ void report_bad_target(DeviceErrors err, int64_t i, int64_t t, int64_t N, int64_t C) {
  if (atomicCAS(err.claim, 0, 1) == 0) {
    volatile DeviceErrorRecord* r = err.record;
    r->index = i;
    r->value = t;
    r->rows = N;
    r->classes = C;
    __threadfence_system();
    r->code = kBadClassIndex;
  }
}

/// out[i] = -logp[i, t_i] (0 where t_i == ignore_index); a target outside [0, C) gives NaN and
/// is reported (the host checks at its next synchronisation instead of copying the targets to
/// the host before the launch).
template <typename T>
__global__ void nll_fwd_kernel(const T* __restrict__ logp, const int64_t* __restrict__ target, int64_t ts,
                               T* __restrict__ out, int64_t os, int64_t N, int64_t C, int64_t ignore_index,
                               DeviceErrors err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = target[i * ts];
    if (t == ignore_index) {
      out[i * os] = T(0);
      continue;
    }
    const bool ok = t >= 0 && t < C;
    out[i * os] = ok ? -logp[i * C + t] : T(NAN);
    if (!ok) report_bad_target(err, i, t, N, C);
  }
}
template <typename T>
__global__ void nll_bwd_kernel(const T* __restrict__ gout, int64_t gs, const int64_t* __restrict__ target, int64_t ts,
                               T* __restrict__ glogp, int64_t N, int64_t C, int64_t ignore_index,
                               DeviceErrors err) {
  const int64_t total = N * C;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / C, j = k % C;
    const int64_t t = target[i * ts];
    glogp[k] = t == j && t != ignore_index ? -gout[i * gs] : T(0);
    if (j == 0 && t != ignore_index && !(t >= 0 && t < C)) report_bad_target(err, i, t, N, C);
  }
}
}  // namespace

void nll_loss_forward(const Tensor& logp, const Tensor& target, const Tensor& out, int64_t ignore_index) {
  TESSERA_CHECK(logp.dim() == 2 && logp.is_contiguous(), ShapeError, "cuda nll_loss: logp must be contiguous [N, C], got ",
                shape_str(logp.shape()));
  TESSERA_CHECK(target.dtype() == DType::Int64, DTypeError, "cuda nll_loss: target must be int64, got ", target.dtype());
  const int64_t N = logp.size(0), C = logp.size(1);
  if (N == 0) return;
  DeviceGuard guard(logp.device().index);
  DeviceContext& ctx = context_of(logp);
  cudaStream_t s = ctx.stream;
  const DeviceErrors err = ctx.errors();
  dispatch_float(logp.dtype(), "nll_loss", [&](auto tag) {
    using T = typename decltype(tag)::type;
    nll_fwd_kernel<T><<<grid_for(N, kThreads), kThreads, 0, s>>>(
        static_cast<const T*>(logp.raw_data()), static_cast<const int64_t*>(target.raw_data()),
        target.dim() ? target.stride(0) : 0, static_cast<T*>(out.raw_data()), out.dim() ? out.stride(0) : 0, N, C, ignore_index, err);
    TESSERA_KERNEL_CHECK();
  });
}

void nll_loss_backward(const Tensor& grad_out, const Tensor& target, const Tensor& grad_logp, int64_t ignore_index) {
  TESSERA_CHECK(grad_logp.dim() == 2 && grad_logp.is_contiguous(), ShapeError,
                "cuda nll_loss_backward: grad_logp must be contiguous [N, C], got ", shape_str(grad_logp.shape()));
  const int64_t N = grad_logp.size(0), C = grad_logp.size(1);
  if (N * C == 0) return;
  DeviceGuard guard(grad_logp.device().index);
  DeviceContext& ctx = context_of(grad_logp);
  cudaStream_t s = ctx.stream;
  const DeviceErrors err = ctx.errors();
  dispatch_float(grad_logp.dtype(), "nll_loss_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    nll_bwd_kernel<T><<<grid_for(N * C, kThreads), kThreads, 0, s>>>(
        static_cast<const T*>(grad_out.raw_data()), grad_out.dim() ? grad_out.stride(0) : 0,
        static_cast<const int64_t*>(target.raw_data()), target.dim() ? target.stride(0) : 0,
        static_cast<T*>(grad_logp.raw_data()), N, C, ignore_index, err);
    TESSERA_KERNEL_CHECK();
  });
}

}  // namespace tessera::cuda::detail
