#include "softmax.cuh"

#include "cuda_context.cuh"
#include "device_math.cuh"

namespace tessera::cuda::detail {

namespace {

template <typename T>
struct MaxSum {
  T m;  // running max
  T s;  // sum of exp(x - m)
};

template <typename T>
__device__ __forceinline__ void online_update(MaxSum<T>& a, T v) {
  if (v > a.m) {
    a.s = (a.s == T(0) ? T(0) : a.s * m_exp(a.m - v)) + T(1);
    a.m = v;
  } else if (v == v) {
    a.s += (v == a.m && a.m == T(-INFINITY)) ? T(0) : m_exp(v - a.m);
  } else {
    a.m = v;  // NaN poisons the row
    a.s = v;
  }
}
template <typename T>
__device__ __forceinline__ MaxSum<T> online_combine(MaxSum<T> a, MaxSum<T> b) {
  if (a.m != a.m || a.s != a.s) return a;
  if (b.m != b.m || b.s != b.s) return b;
  const T m = a.m > b.m ? a.m : b.m;
  const T sa = a.s == T(0) ? T(0) : a.s * m_exp(a.m - m);
  const T sb = b.s == T(0) ? T(0) : b.s * m_exp(b.m - m);
  return MaxSum<T>{m, sa + sb};
}
template <typename T>
__device__ __forceinline__ MaxSum<T> warp_combine(MaxSum<T> a) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum<T> b{__shfl_xor_sync(0xffffffffu, a.m, o), __shfl_xor_sync(0xffffffffu, a.s, o)};
    a = online_combine(a, b);
  }
  return a;
}
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// Block-wide all-reduce of a MaxSum (every thread gets the result).
template <typename T>
__device__ MaxSum<T> block_combine(MaxSum<T> a) {
  __shared__ T sm[32], ss[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  a = warp_combine(a);
  __syncthreads();
  if (lane == 0) { sm[warp] = a.m; ss[warp] = a.s; }
  __syncthreads();
  MaxSum<T> r{lane < nw ? sm[lane] : T(-INFINITY), lane < nw ? ss[lane] : T(0)};
  return warp_combine(r);
}
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T sh[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  return warp_sum(lane < nw ? sh[lane] : T(0));
}

template <typename T, bool LOG>
__device__ __forceinline__ T softmax_out(T v, const MaxSum<T>& ms) {
  if constexpr (LOG) return v - ms.m - m_log(ms.s);
  else return m_exp(v - ms.m) / ms.s;
}

// ---- forward ----------------------------------------------------------------------------------
template <typename T, bool LOG>
__global__ void softmax_warp_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t M, int64_t N) {
  const int lane = threadIdx.x & 31;
  const int64_t wpg = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t row = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); row < M; row += wpg) {
    const T* xr = x + row * N;
    T* yr = y + row * N;
    MaxSum<T> ms{T(-INFINITY), T(0)};
    for (int64_t c = lane; c < N; c += 32) online_update(ms, __ldg(xr + c));
    ms = warp_combine(ms);
    for (int64_t c = lane; c < N; c += 32) yr[c] = softmax_out<T, LOG>(__ldg(xr + c), ms);
  }
}

// Launched with up to 1024 threads: the bound makes the compiler keep registers within what a
// 1024-thread block may use (64 per thread; the double variant used 62 unbounded, sm_90).
template <typename T, bool LOG, int VEC>
__global__ void __launch_bounds__(1024) softmax_block_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t M, int64_t N) {
  for (int64_t row = blockIdx.x; row < M; row += gridDim.x) {
    const T* xr = x + row * N;
    T* yr = y + row * N;
    MaxSum<T> ms{T(-INFINITY), T(0)};
    const int64_t nv = N / VEC;
    const VecT<T, VEC>* xv = reinterpret_cast<const VecT<T, VEC>*>(xr);
    for (int64_t c = threadIdx.x; c < nv; c += blockDim.x) {
      VecT<T, VEC> v = xv[c];
#pragma unroll
      for (int k = 0; k < VEC; ++k) online_update(ms, v.v[k]);
    }
    for (int64_t c = nv * VEC + threadIdx.x; c < N; c += blockDim.x) online_update(ms, xr[c]);
    ms = block_combine(ms);
    VecT<T, VEC>* yv = reinterpret_cast<VecT<T, VEC>*>(yr);
    for (int64_t c = threadIdx.x; c < nv; c += blockDim.x) {
      VecT<T, VEC> v = xv[c];  // second read hits L1/L2: the row was just read by this block
#pragma unroll
      for (int k = 0; k < VEC; ++k) v.v[k] = softmax_out<T, LOG>(v.v[k], ms);
      yv[c] = v;
    }
    for (int64_t c = nv * VEC + threadIdx.x; c < N; c += blockDim.x) yr[c] = softmax_out<T, LOG>(xr[c], ms);
  }
}

// ---- backward ----------------------------------------------------------------------------------
template <typename T, bool LOG>
__device__ __forceinline__ T grad_term(T y, T gy) { return LOG ? gy : gy * y; }
template <typename T, bool LOG>
__device__ __forceinline__ T grad_out(T y, T gy, T s) { return LOG ? gy - m_exp(y) * s : y * (gy - s); }

template <typename T, bool LOG>
__global__ void softmax_bwd_warp_kernel(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx,
                                        int64_t M, int64_t N) {
  const int lane = threadIdx.x & 31;
  const int64_t wpg = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t row = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); row < M; row += wpg) {
    const int64_t base = row * N;
    T s = T(0);
    for (int64_t c = lane; c < N; c += 32) s += grad_term<T, LOG>(y[base + c], gy[base + c]);
    s = warp_sum(s);
    for (int64_t c = lane; c < N; c += 32) gx[base + c] = grad_out<T, LOG>(y[base + c], gy[base + c], s);
  }
}
template <typename T, bool LOG>
__global__ void __launch_bounds__(512) softmax_bwd_block_kernel(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx,
                                         int64_t M, int64_t N) {
  for (int64_t row = blockIdx.x; row < M; row += gridDim.x) {
    const int64_t base = row * N;
    T s = T(0);
    for (int64_t c = threadIdx.x; c < N; c += blockDim.x) s += grad_term<T, LOG>(y[base + c], gy[base + c]);
    s = block_sum(s);
    for (int64_t c = threadIdx.x; c < N; c += blockDim.x) gx[base + c] = grad_out<T, LOG>(y[base + c], gy[base + c], s);
  }
}

void check_rows(const char* op, const Tensor& t) {
  TESSERA_CHECK(t.dim() == 2 && t.is_contiguous(), ShapeError, "cuda ", op,
                ": expected a contiguous [M, N] tensor, got shape ", shape_str(t.shape()));
}

}  // namespace

void softmax_rows(const Tensor& x, const Tensor& out, bool log) {
  check_rows("softmax", x);
  check_rows("softmax", out);
  const int64_t M = x.size(0), N = x.size(1);
  if (M == 0 || N == 0) return;
  DeviceGuard guard(x.device().index);
  cudaStream_t s = context_of(x).stream;
  dispatch_float(x.dtype(), "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* yp = static_cast<T*>(out.raw_data());
    auto go = [&](auto log_tag) {
      constexpr bool L = decltype(log_tag)::value;
      if (N <= 1024) {
        softmax_warp_kernel<T, L><<<grid_for(M, kThreads / 32), kThreads, 0, s>>>(xp, yp, M, N);
      } else {
        constexpr int V = int(16 / sizeof(T));
        const int threads = N >= 8192 ? 1024 : 512;
        if (N % V == 0 && aligned(xp, 16) && aligned(yp, 16))
          softmax_block_kernel<T, L, V><<<grid_for(M, 1), threads, 0, s>>>(xp, yp, M, N);
        else
          softmax_block_kernel<T, L, 1><<<grid_for(M, 1), threads, 0, s>>>(xp, yp, M, N);
      }
      TESSERA_KERNEL_CHECK();
    };
    if (log) go(std::true_type{});
    else go(std::false_type{});
  });
}

void softmax_rows_backward(const Tensor& y, const Tensor& grad_y, const Tensor& grad_x, bool log) {
  check_rows("softmax_backward", y);
  check_rows("softmax_backward", grad_y);
  check_rows("softmax_backward", grad_x);
  const int64_t M = y.size(0), N = y.size(1);
  if (M == 0 || N == 0) return;
  DeviceGuard guard(y.device().index);
  cudaStream_t s = context_of(y).stream;
  dispatch_float(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* yp = static_cast<const T*>(y.raw_data());
    const T* gyp = static_cast<const T*>(grad_y.raw_data());
    T* gxp = static_cast<T*>(grad_x.raw_data());
    auto go = [&](auto log_tag) {
      constexpr bool L = decltype(log_tag)::value;
      if (N <= 1024)
        softmax_bwd_warp_kernel<T, L><<<grid_for(M, kThreads / 32), kThreads, 0, s>>>(yp, gyp, gxp, M, N);
      else
        softmax_bwd_block_kernel<T, L><<<grid_for(M, 1), 512, 0, s>>>(yp, gyp, gxp, M, N);
      TESSERA_KERNEL_CHECK();
    };
    if (log) go(std::true_type{});
    else go(std::false_type{});
  });
}

}  // namespace tessera::cuda::detail
