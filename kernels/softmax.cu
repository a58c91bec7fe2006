#include "softmax.cuh"

#include <algorithm>

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

/// max(a, b), NaN if either is NaN (the CPU backend's row maximum propagates NaN).
template <typename T>
__device__ __forceinline__ T max_nan(T a, T b) { return (b > a || b != b) ? b : a; }
/// Block-wide all-reduce of max_nan (every thread gets the result).
template <typename T>
__device__ T block_max(T v) {
  __shared__ T sh[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : T(-INFINITY);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
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

// Rows of at most blockDim.x * EPT elements, held in registers: each row is read from global
// memory once and written once (softmax_block_kernel reads it twice). The same arithmetic as
// the CPU backend: the row maximum (NaN-propagating), then exp(x - max) and its sum, then
// e / sum or (x - max) - log(sum). Thread t holds vectors t, t + blockDim.x, ... of its row.
// EPT: see softmax_rows.
template <typename T, bool LOG, int VEC, int EPT>
__global__ void __launch_bounds__(1024) softmax_cached_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t M,
                                                              int N) {
  constexpr int NV = EPT / VEC;  // vectors per thread
  const int nv = N / VEC;        // VEC divides N on this path
  for (int64_t row = blockIdx.x; row < M; row += gridDim.x) {
    const VecT<T, VEC>* xv = reinterpret_cast<const VecT<T, VEC>*>(x + row * N);
    VecT<T, VEC>* yv = reinterpret_cast<VecT<T, VEC>*>(y + row * N);
    VecT<T, VEC> r[NV];
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      // Past the row's end a thread reloads the row's last vector (an L1 hit): the maximum is
      // unchanged, the sum and the output skip it, and the loads need no predicate.
      const int c = j * int(blockDim.x) + int(threadIdx.x);
      r[j] = xv[c < nv ? c : nv - 1];
    }
    T p[4] = {T(-INFINITY), T(-INFINITY), T(-INFINITY), T(-INFINITY)};  // 4 independent chains
#pragma unroll
    for (int j = 0; j < NV; ++j)
#pragma unroll
      for (int k = 0; k < VEC; ++k) p[(j * VEC + k) & 3] = max_nan(p[(j * VEC + k) & 3], r[j].v[k]);
    const T m = block_max(max_nan(max_nan(p[0], p[1]), max_nan(p[2], p[3])));
#pragma unroll
    for (int i = 0; i < 4; ++i) p[i] = T(0);
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      if (j * int(blockDim.x) + int(threadIdx.x) < nv) {
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
          const T e = m_exp(r[j].v[k] - m);
          p[(j * VEC + k) & 3] += e;
          if constexpr (!LOG) r[j].v[k] = e;
        }
      }
    }
    const T s = block_sum((p[0] + p[1]) + (p[2] + p[3]));
    const T ls = LOG ? m_log(s) : T(0);
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int c = j * int(blockDim.x) + int(threadIdx.x);
      if (c < nv) {
        VecT<T, VEC> o;
#pragma unroll
        for (int k = 0; k < VEC; ++k) o.v[k] = LOG ? (r[j].v[k] - m) - ls : r[j].v[k] / s;
        yv[c] = o;
      }
    }
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
      constexpr int V = int(16 / sizeof(T));
      const bool vec = N % V == 0 && aligned(xp, 16) && aligned(yp, 16);
      // Row elements per thread in the register-cached kernel: 32 floats (8 float4 loads in
      // flight) on the float4 path, 64 bytes otherwise. More would spill under the kernel's
      // 64-register bound (sm_75..sm_90: 46 to 64 registers, no spills).
      constexpr int EPT_V = std::is_same_v<T, float> ? 32 : 64 / int(sizeof(T));
      constexpr int EPT_1 = 64 / int(sizeof(T));
      const int ept = vec ? EPT_V : EPT_1;
      if (N <= 1024) {
        softmax_warp_kernel<T, L><<<grid_for(M, kThreads / 32), kThreads, 0, s>>>(xp, yp, M, N);
      } else if (N <= 1024 * int64_t(ept)) {
        // One block per row, at least 4 warps, each thread holding up to ept elements. float
        // rows of 4096: 128 threads with 8 float4 loads each.
        const int threads = int(std::min<int64_t>(1024, std::max<int64_t>(128, ceil_div(ceil_div(N, ept), 32) * 32)));
        if (vec)
          softmax_cached_kernel<T, L, V, EPT_V><<<grid_for(M, 1), threads, 0, s>>>(xp, yp, M, int(N));
        else
          softmax_cached_kernel<T, L, 1, EPT_1><<<grid_for(M, 1), threads, 0, s>>>(xp, yp, M, int(N));
      } else {  // longer rows: read twice (the second time mostly from L2)
        const int threads = N >= 8192 ? 1024 : 512;
        if (vec)
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
