#include "index.cuh"

#include <type_traits>

#include "cuda_context.cuh"
#include "tessera/deterministic.hpp"
#include "tessera/detail/float32_scope.hpp"
#include "tessera/random.hpp"

namespace tessera::cuda::detail {

namespace {

/// Records an index out of range for check_device_errors (the first thread to claim the
/// record wins): `position` is its element offset in the index tensor.
__device__ __forceinline__ void report_bad_index(DeviceErrors err, int64_t position, int64_t value, int64_t size,
                                                 int64_t dim, uintptr_t op) {
  if (atomicCAS(err.claim, 0, 1) == 0) {
    volatile DeviceErrorRecord* r = err.record;
    r->index = position;
    r->value = value;
    r->rows = size;
    r->classes = 0;
    r->dim = dim;
    r->op = op;
    __threadfence_system();
    r->code = kBadIndex;
  }
}

template <typename T>
__device__ __forceinline__ T bad_gather_value() {
  if constexpr (is_floating_type_v<T>) return T(NAN);
  else return T(0);
}

/// out[off0] = x[off2 + index[off1] * step] over index's shape (offsets from calc).
template <typename T>
__global__ void gather_kernel(const T* __restrict__ x, const int64_t* __restrict__ index, T* __restrict__ out,
                              OffsetCalc<3> calc, int64_t n, int64_t step, int64_t size, int64_t dim, uintptr_t op,
                              DeviceErrors err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    calc.get(i, off);
    const int64_t j = index[off[1]];
    if (j >= 0 && j < size) {
      out[off[0]] = x[off[2] + j * step];
    } else {
      out[off[0]] = bad_gather_value<T>();
      report_bad_index(err, off[1], j, size, dim, op);
    }
  }
}

/// The dtypes CUDA's atomicAdd serves (int64 through unsigned long long: two's complement).
template <typename T>
constexpr bool kAtomicAddable = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>;

template <typename T>
__device__ __forceinline__ void atomic_add(T* p, T v) {
  if constexpr (std::is_same_v<T, int64_t>)
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  else
    atomicAdd(p, v);
}

/// out[off0 + index[off1] * step] += src[off2] over index's shape, with atomicAdd.
template <typename T>
__global__ void scatter_add_atomic_kernel(T* __restrict__ out, const int64_t* __restrict__ index,
                                          const T* __restrict__ src, OffsetCalc<3> calc, int64_t n, int64_t step,
                                          int64_t size, int64_t dim, uintptr_t op, DeviceErrors err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    calc.get(i, off);
    const int64_t j = index[off[1]];
    if (j >= 0 && j < size) atomic_add(out + off[0] + j * step, src[off[2]]);
    else report_bad_index(err, off[1], j, size, dim, op);
  }
}

/// Deterministic scatter-add: one thread per destination element e of the region R (index's
/// shape with dim's size replaced by out's), whose coordinate along dim is v = (e / inner) % V.
/// calc gives e's offset in out and the offsets of (e's other coordinates, 0) in index and src;
/// the thread adds src[.., j, ..] for every j with index[.., j, ..] == v in ascending j, as the
/// CPU does. The threads with v == 0 report bad indices (each position is seen by one of them).
template <typename T>
__global__ void scatter_add_ordered_kernel(T* __restrict__ out, const int64_t* __restrict__ index,
                                           const T* __restrict__ src, OffsetCalc<3> calc, int64_t n, int64_t inner,
                                           int64_t V, int64_t J, int64_t index_step, int64_t src_step, int64_t dim,
                                           uintptr_t op, DeviceErrors err) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    calc.get(e, off);
    const int64_t v = (e / inner) % V;
    T acc = out[off[0]];
    for (int64_t j = 0; j < J; ++j) {
      const int64_t t = index[off[1] + j * index_step];
      if (t == v) acc = T(acc + src[off[2] + j * src_step]);
      else if (v == 0 && (t < 0 || t >= V)) report_bad_index(err, off[1] + j * index_step, t, V, dim, op);
    }
    out[off[0]] = acc;
  }
}

/// Whether element (a, i) comes before (b, j) in topk's order: NaN above every number, equal
/// values (or two NaN) by ascending column.
template <typename T>
__device__ __forceinline__ bool topk_before(T a, int64_t i, T b, int64_t j, bool largest) {
  const bool na = is_nan(a), nb = is_nan(b);
  if (na || nb) return na != nb ? (largest ? na : nb) : i < j;
  if (a != b) return largest ? a > b : a < b;
  return i < j;
}

/// Each block takes tiles (row m, chunk c) of kThreads elements; thread t counts how many
/// elements of row m precede its element c * kThreads + t, reading the row through shared
/// memory, and writes it to that rank when the rank is below k.
template <typename T>
__global__ void topk_rank_kernel(const T* __restrict__ x, int64_t M, int64_t N, int64_t k, bool largest,
                                 T* __restrict__ values, int64_t* __restrict__ indices) {
  __shared__ T tile[kThreads];
  const int64_t chunks = (N + kThreads - 1) / kThreads;
  for (int64_t t = blockIdx.x; t < M * chunks; t += gridDim.x) {
    const int64_t m = t / chunks;
    const int64_t i = (t % chunks) * kThreads + threadIdx.x;
    const T* row = x + m * N;
    const T xi = i < N ? row[i] : T(0);
    int64_t rank = 0;
    for (int64_t j0 = 0; j0 < N; j0 += kThreads) {
      __syncthreads();  // the previous tile (or row) is no longer read
      if (j0 + threadIdx.x < N) tile[threadIdx.x] = row[j0 + threadIdx.x];
      __syncthreads();
      const int64_t len = min(int64_t(kThreads), N - j0);
      if (i < N)
        for (int64_t u = 0; u < len; ++u) rank += topk_before(tile[u], j0 + u, xi, i, largest) ? 1 : 0;
    }
    if (i < N && rank < k) {
      values[m * k + rank] = xi;
      indices[m * k + rank] = i;
    }
  }
}

/// Sample (m, s) = i: u from Philox block (seed, offset + i), the first column whose running
/// sum (float64, from column 0) exceeds u * total; the last positive column if rounding
/// leaves none.
template <typename T>
__global__ void multinomial_kernel(const T* __restrict__ probs, int64_t M, int64_t N, int64_t S, uint64_t seed,
                                   uint64_t offset, int64_t* __restrict__ out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < M * S; i += int64_t(gridDim.x) * blockDim.x) {
    const T* row = probs + (i / S) * N;
    double total = 0;
    int64_t last = N - 1;
    for (int64_t j = 0; j < N; ++j) {
      const double p = double(row[j]);
      total += p;
      if (p > 0) last = j;
    }
    const Philox4x32 r = philox_block(seed, offset, uint64_t(i));
    const double target = uint2_to_unit_double(r.v[0], r.v[1]) * total;
    int64_t pick = last;
    double acc = 0;
    for (int64_t j = 0; j < N; ++j) {
      acc += double(row[j]);
      if (target < acc) {
        pick = j;
        break;
      }
    }
    out[i] = pick;
  }
}

uintptr_t op_tag(const char* op) { return reinterpret_cast<uintptr_t>(op); }

}  // namespace

void index_gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out, const char* op) {
  const int64_t n = index.numel();
  if (n == 0) return;
  DeviceGuard guard(x.device().index);
  DeviceContext& ctx = context_of(x);
  Strides xs = x.strides();
  xs[std::size_t(dim)] = 0;  // the kernel adds index * stride itself
  const OffsetCalc<3> calc =
      make_offset_calc<3>(index.shape(), {&out.strides(), &index.strides(), &xs}, op);
  const DeviceErrors err = ctx.errors();
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    gather_kernel<T><<<grid_for(n, kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const int64_t*>(index.raw_data()),
        static_cast<T*>(out.raw_data()), calc, n, x.stride(dim), x.size(dim), dim, op_tag(op), err);
    TESSERA_KERNEL_CHECK();
  });
}

void index_scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, const char* op) {
  const int64_t n = index.numel();
  if (n == 0) return;
  if (is_reduced_floating_point(out.dtype())) {  // summed in float32, rounded once
    ::tessera::detail::Float32Scope f;
    return index_scatter_add(f.inout(out), dim, index, f.in(src), op);
  }
  DeviceGuard guard(out.device().index);
  DeviceContext& ctx = context_of(out);
  const DeviceErrors err = ctx.errors();
  const bool ordered = deterministic() && is_floating_point(out.dtype());
  dispatch_standard(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!kAtomicAddable<T>) {
      throw UnsupportedError(std::string("cuda ") + op + ": not implemented for " + dtype_name(out.dtype()));
    } else if (ordered) {
      Shape region = index.shape();
      region[std::size_t(dim)] = out.size(dim);
      Strides is = index.strides(), ss = src.strides();
      is[std::size_t(dim)] = 0;
      ss[std::size_t(dim)] = 0;
      int64_t inner = 1;
      for (std::size_t d = std::size_t(dim) + 1; d < region.size(); ++d) inner *= region[d];
      const int64_t total = shape_numel(region);
      if (total == 0) return;
      const OffsetCalc<3> calc = make_offset_calc<3>(region, {&out.strides(), &is, &ss}, op);
      scatter_add_ordered_kernel<T><<<grid_for(total, kThreads), kThreads, 0, ctx.stream>>>(
          static_cast<T*>(out.raw_data()), static_cast<const int64_t*>(index.raw_data()),
          static_cast<const T*>(src.raw_data()), calc, total, inner, out.size(dim), index.size(dim),
          index.stride(dim), src.stride(dim), dim, op_tag(op), err);
      TESSERA_KERNEL_CHECK();
    } else {
      Strides os = out.strides();
      os[std::size_t(dim)] = 0;  // the kernel adds index * stride itself
      const OffsetCalc<3> calc =
          make_offset_calc<3>(index.shape(), {&os, &index.strides(), &src.strides()}, op);
      scatter_add_atomic_kernel<T><<<grid_for(n, kThreads), kThreads, 0, ctx.stream>>>(
          static_cast<T*>(out.raw_data()), static_cast<const int64_t*>(index.raw_data()),
          static_cast<const T*>(src.raw_data()), calc, n, out.stride(dim), out.size(dim), dim, op_tag(op), err);
      TESSERA_KERNEL_CHECK();
    }
  });
}

void topk_rows(const Tensor& x, int64_t k, bool largest, const Tensor& values, const Tensor& indices) {
  TESSERA_CHECK(x.dim() == 2 && x.is_contiguous(), ShapeError, "cuda topk: x must be contiguous [M, N], got ",
                shape_str(x.shape()));
  if (is_reduced_floating_point(x.dtype())) {  // compared in float32 (exact), values rounded back exactly
    ::tessera::detail::Float32Scope f;
    return topk_rows(f.in(x), k, largest, f.out(values), indices);
  }
  const int64_t M = x.size(0), N = x.size(1);
  if (M == 0 || k == 0) return;
  DeviceGuard guard(x.device().index);
  DeviceContext& ctx = context_of(x);
  dispatch_standard(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) {
      throw DTypeError("cuda topk: not implemented for bool");
    } else {
      topk_rank_kernel<T><<<grid_for(M * ceil_div(N, kThreads), 1), kThreads, 0, ctx.stream>>>(
          static_cast<const T*>(x.raw_data()), M, N, k, largest, static_cast<T*>(values.raw_data()),
          static_cast<int64_t*>(indices.raw_data()));
      TESSERA_KERNEL_CHECK();
    }
  });
}

void multinomial_rows(const Tensor& probs, uint64_t seed, uint64_t offset, const Tensor& out) {
  TESSERA_CHECK(probs.dim() == 2 && probs.is_contiguous(), ShapeError,
                "cuda multinomial: probs must be contiguous [M, N], got ", shape_str(probs.shape()));
  if (is_reduced_floating_point(probs.dtype())) {  // float32 holds every float16/bfloat16 weight exactly
    ::tessera::detail::Float32Scope f;
    return multinomial_rows(f.in(probs), seed, offset, out);
  }
  const int64_t M = probs.size(0), N = probs.size(1), S = out.size(1);
  if (M * S == 0) return;
  DeviceGuard guard(probs.device().index);
  DeviceContext& ctx = context_of(probs);
  dispatch_float(probs.dtype(), "multinomial", [&](auto tag) {
    using T = typename decltype(tag)::type;
    multinomial_kernel<T><<<grid_for(M * S, kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(probs.raw_data()), M, N, S, seed, offset, static_cast<int64_t*>(out.raw_data()));
    TESSERA_KERNEL_CHECK();
  });
}

}  // namespace tessera::cuda::detail
