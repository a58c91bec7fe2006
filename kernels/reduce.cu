#include "reduce.cuh"

#include <type_traits>

#include "cuda_context.cuh"
#include "elementwise.cuh"

namespace tessera::cuda::detail {

namespace {

template <typename T>
using VAcc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
// Bool tensors are read as bytes.
template <typename T>
using Load = std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>;

template <typename T>
struct SumR {
  using S = VAcc<T>;
  __device__ S identity() const { return S(0); }
  __device__ S load(T v, int64_t, int64_t) const { return S(v); }
  __device__ S combine(S a, S b) const { return a + b; }
};
template <typename T>
struct ProdR {
  using S = VAcc<T>;
  __device__ S identity() const { return S(1); }
  __device__ S load(T v, int64_t, int64_t) const { return S(v); }
  __device__ S combine(S a, S b) const { return a * b; }
};
template <typename T>
struct ShiftSumR {  // sum of (x - x_row0): the shifted first pass of var
  using S = double;
  const T* x;
  int64_t len;
  __device__ S identity() const { return 0.0; }
  __device__ S load(T v, int64_t, int64_t row) const { return double(v) - double(x[row * len]); }
  __device__ S combine(S a, S b) const { return a + b; }
};
template <typename T>
struct SqDevR {  // sum of ((x - x_row0) - shifted_mean_row)^2, for var (second pass)
  using S = double;
  const double* mean;
  const T* x;
  int64_t len;
  __device__ S identity() const { return 0.0; }
  __device__ S load(T v, int64_t, int64_t row) const {
    // Shifting by the row's first element makes a constant row exactly 0.
    double d = (double(v) - double(x[row * len])) - mean[row];
    return d * d;
  }
  __device__ S combine(S a, S b) const { return a + b; }
};
template <typename T, bool ALL>
struct LogicR {
  using S = int;
  __device__ S identity() const { return ALL ? 1 : 0; }
  __device__ S load(T v, int64_t, int64_t) const { return v != T(0) ? 1 : 0; }
  __device__ S combine(S a, S b) const { return ALL ? (a & b) : (a | b); }
};
template <typename T>
struct ExtState {
  T val;
  int64_t idx;  // -1: empty
};
template <typename T, bool IS_MAX>
struct ExtR {
  using S = ExtState<T>;
  __device__ S identity() const { return S{T(0), -1}; }
  __device__ S load(T v, int64_t col, int64_t) const { return S{v, col}; }
  __device__ S combine(S a, S b) const {
    if (a.idx < 0) return b;
    if (b.idx < 0) return a;
    const bool an = is_nan(a.val), bn = is_nan(b.val);
    if (an || bn) {  // NaN wins; first NaN among NaNs
      if (an && bn) return a.idx < b.idx ? a : b;
      return an ? a : b;
    }
    if (a.val == b.val) return a.idx < b.idx ? a : b;
    return (IS_MAX ? a.val > b.val : a.val < b.val) ? a : b;
  }
};

template <typename S>
__device__ __forceinline__ S shfl_down(S s, int o) {
  return __shfl_down_sync(0xffffffffu, s, o);
}
template <typename T>
__device__ __forceinline__ ExtState<T> shfl_down(ExtState<T> s, int o) {
  ExtState<T> r;
  if constexpr (sizeof(T) < 4) r.val = T(__shfl_down_sync(0xffffffffu, int(s.val), o));
  else r.val = __shfl_down_sync(0xffffffffu, s.val, o);
  r.idx = __shfl_down_sync(0xffffffffu, s.idx, o);
  return r;
}

template <typename R, typename S>
__device__ __forceinline__ S warp_reduce(const R& r, S s) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s = r.combine(s, shfl_down(s, o));
  return s;
}

/// Block-wide reduction; the result is valid in thread 0.
template <typename R, typename S>
__device__ __forceinline__ S block_reduce(const R& r, S s) {
  __shared__ __align__(16) unsigned char raw[32 * sizeof(S)];  // aligned for S (double, int64 pairs)
  S* smem = reinterpret_cast<S*>(raw);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  s = warp_reduce(r, s);
  __syncthreads();
  if (lane == 0) smem[warp] = s;
  __syncthreads();
  const int nwarps = (blockDim.x + 31) >> 5;
  if (warp == 0) {
    s = lane < nwarps ? smem[lane] : r.identity();
    s = warp_reduce(r, s);
  }
  return s;
}

/// One block per (row, chunk): partial[row * nchunks + chunk].
template <typename T, typename R>
__global__ void __launch_bounds__(512) reduce_block_kernel(const T* __restrict__ x, int64_t M, int64_t len, int64_t chunk_len,
                                    int64_t nchunks, R r, typename R::S* __restrict__ partial) {
  for (int64_t b = blockIdx.x; b < M * nchunks; b += gridDim.x) {
    const int64_t row = b / nchunks, chunk = b % nchunks;
    const int64_t c0 = chunk * chunk_len;
    const int64_t c1 = c0 + chunk_len < len ? c0 + chunk_len : len;
    const T* xr = x + row * len;
    typename R::S s = r.identity();
    for (int64_t c = c0 + threadIdx.x; c < c1; c += blockDim.x) s = r.combine(s, r.load(xr[c], c, row));
    s = block_reduce(r, s);
    if (threadIdx.x == 0) partial[b] = s;
    __syncthreads();
  }
}

/// One warp per row.
template <typename T, typename R>
__global__ void reduce_warp_kernel(const T* __restrict__ x, int64_t M, int64_t len, R r,
                                   typename R::S* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_grid = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t row = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); row < M; row += warps_per_grid) {
    const T* xr = x + row * len;
    typename R::S s = r.identity();
    for (int64_t c = lane; c < len; c += 32) s = r.combine(s, r.load(xr[c], c, row));
    s = warp_reduce(r, s);
    if (lane == 0) out[row] = s;
  }
}

/// Combines nchunks partial states per row (one warp per row).
template <typename R>
__global__ void combine_kernel(const typename R::S* __restrict__ partial, int64_t M, int64_t nchunks, R r,
                               typename R::S* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_grid = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t row = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); row < M; row += warps_per_grid) {
    typename R::S s = r.identity();
    for (int64_t c = lane; c < nchunks; c += 32) s = r.combine(s, partial[row * nchunks + c]);
    s = warp_reduce(r, s);
    if (lane == 0) out[row] = s;
  }
}

/// Reduces every row into states[M] (on the stream of device).
template <typename T, typename R>
void reduce_to_states(const T* x, int64_t M, int64_t len, const R& r, typename R::S* states, DeviceContext& ctx) {
  using S = typename R::S;
  if (M == 0) return;
  if (len <= 512) {
    constexpr int warps = kThreads / 32;
    reduce_warp_kernel<T, R><<<grid_for(M, warps), kThreads, 0, ctx.stream>>>(x, M, len, r, states);
    TESSERA_KERNEL_CHECK();
    return;
  }
  int64_t nchunks = 1;
  if (M < 2 * int64_t(ctx.sm_count) && len >= 32768) {
    const int64_t want = ceil_div(4 * int64_t(ctx.sm_count), M);
    const int64_t most = ceil_div(len, 16384);
    nchunks = want < most ? want : most;
  }
  const int64_t chunk_len = ceil_div(len, nchunks);
  const int threads = 512;
  if (nchunks == 1) {
    reduce_block_kernel<T, R><<<grid_for(M, 1), threads, 0, ctx.stream>>>(x, M, len, chunk_len, 1, r, states);
    TESSERA_KERNEL_CHECK();
    return;
  }
  TempBuffer partial(std::size_t(M * nchunks) * sizeof(S), ctx.device);
  reduce_block_kernel<T, R><<<grid_for(M * nchunks, 1), threads, 0, ctx.stream>>>(x, M, len, chunk_len, nchunks, r,
                                                                                  partial.as<S>());
  TESSERA_KERNEL_CHECK();
  constexpr int warps = kThreads / 32;
  combine_kernel<R><<<grid_for(M, warps), kThreads, 0, ctx.stream>>>(partial.as<S>(), M, nchunks, r, states);
  TESSERA_KERNEL_CHECK();
}

// ---- finalisation ------------------------------------------------------------------------------
template <typename S, typename V>
__global__ void finalize_scalar(const S* __restrict__ st, int64_t M, double divisor, bool divide, V* __restrict__ out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < M; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = divide ? V(double(st[i]) / divisor) : V(st[i]);
}
template <typename T, typename V>
__global__ void finalize_ext(const ExtState<T>* __restrict__ st, int64_t M, V* __restrict__ vals,
                             int64_t* __restrict__ idx) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < M; i += int64_t(gridDim.x) * blockDim.x) {
    if (vals) vals[i] = V(st[i].val);
    if (idx) idx[i] = st[i].idx;
  }
}

}  // namespace

void reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out, const Tensor& indices, double correction) {
  const Device dev = x.device();
  DeviceGuard guard(dev.index);
  DeviceContext& ctx = device_context(dev.index);
  TESSERA_CHECK(x.dim() == 2 && x.is_contiguous(), ShapeError, "cuda ", reduce_op_name(op),
                ": expected a contiguous [M, R] tensor, got shape ", shape_str(x.shape()));
  const int64_t M = x.size(0), len = x.size(1);
  if (M == 0) return;
  const Device d = dev;
  auto out_flat = [&](const Tensor& t) { return t.defined() ? t.view({M}) : t; };

  dispatch_standard(x.dtype(), [&](auto tag) {
    using T0 = typename decltype(tag)::type;
    using T = Load<T0>;
    using V = VAcc<T>;
    const T* xp = static_cast<const T*>(x.raw_data());
    constexpr DType vdt = std::is_floating_point_v<T> ? DType::Float64 : DType::Int64;
    auto scalar_result = [&](const auto& r, bool divide, double divisor, DType rdt) {
      using S = typename std::decay_t<decltype(r)>::S;
      TempBuffer states(std::size_t(M) * sizeof(S), d.index);
      reduce_to_states<T>(xp, M, len, r, states.template as<S>(), ctx);
      Tensor tmp = make_device_tensor({M}, rdt, d);
      if (rdt == DType::Float64)
        finalize_scalar<S, double><<<grid_for(M, kThreads), kThreads, 0, ctx.stream>>>(
            states.template as<S>(), M, divisor, divide, static_cast<double*>(tmp.raw_data()));
      else
        finalize_scalar<S, int64_t><<<grid_for(M, kThreads), kThreads, 0, ctx.stream>>>(
            states.template as<S>(), M, divisor, divide, static_cast<int64_t*>(tmp.raw_data()));
      TESSERA_KERNEL_CHECK();
      return tmp;
    };
    switch (op) {
      case ReduceOp::Sum:
        elementwise_copy(scalar_result(SumR<T>{}, false, 1.0, vdt), out_flat(out));
        return;
      case ReduceOp::Mean:
        elementwise_copy(scalar_result(SumR<T>{}, true, double(len), DType::Float64), out_flat(out));
        return;
      case ReduceOp::Prod:
        elementwise_copy(scalar_result(ProdR<T>{}, false, 1.0, vdt), out_flat(out));
        return;
      case ReduceOp::All:
        elementwise_copy(scalar_result(LogicR<T, true>{}, false, 1.0, DType::Int64), out_flat(out));
        return;
      case ReduceOp::Any:
        elementwise_copy(scalar_result(LogicR<T, false>{}, false, 1.0, DType::Int64), out_flat(out));
        return;
      case ReduceOp::Var: {
        Tensor mean = scalar_result(ShiftSumR<T>{xp, len}, true, double(len), DType::Float64);
        const double denom = double(len) - correction > 0 ? double(len) - correction : 0.0;
        Tensor v = scalar_result(SqDevR<T>{static_cast<const double*>(mean.raw_data()), xp, len}, true, denom, DType::Float64);
        elementwise_copy(v, out_flat(out));
        return;
      }
      case ReduceOp::Max: case ReduceOp::Min: case ReduceOp::ArgMax: case ReduceOp::ArgMin: {
        TESSERA_CHECK(len > 0, ShapeError, "cuda ", reduce_op_name(op), ": cannot reduce a dim of size 0");
        const bool is_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
        using S = ExtState<T>;
        TempBuffer states(std::size_t(M) * sizeof(S), d.index);
        if (is_max) reduce_to_states<T>(xp, M, len, ExtR<T, true>{}, states.as<S>(), ctx);
        else reduce_to_states<T>(xp, M, len, ExtR<T, false>{}, states.as<S>(), ctx);
        const bool want_vals = (op == ReduceOp::Max || op == ReduceOp::Min) && out.defined();
        Tensor vals = want_vals ? make_device_tensor({M}, vdt, d) : Tensor();
        Tensor idx = make_device_tensor({M}, DType::Int64, d);
        finalize_ext<T, V><<<grid_for(M, kThreads), kThreads, 0, ctx.stream>>>(
            states.as<S>(), M, want_vals ? static_cast<V*>(vals.raw_data()) : nullptr,
            static_cast<int64_t*>(idx.raw_data()));
        TESSERA_KERNEL_CHECK();
        if (want_vals) elementwise_copy(vals, out_flat(out));
        if (indices.defined()) elementwise_copy(idx, out_flat(indices));
        if (!want_vals && out.defined() && !out.is_same(indices)) elementwise_copy(idx, out_flat(out));
        return;
      }
    }
  });
}

}  // namespace tessera::cuda::detail
