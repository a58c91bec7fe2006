// CPU indexing kernels: gather, scatter_add, top-k per row and multinomial sampling with
// replacement (contracts in backend.hpp, "indexing"). Indices are validated in a first pass,
// so a bad one throws before anything is written.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "cpu/cpu_backend.hpp"
#include "cpu/dispatch.hpp"
#include "tessera/random.hpp"

namespace tessera::cpu {
namespace {

/// t's data seen with `shape` (each size at most t's) and t's strides, except stride 0 along
/// `zero_dim` (-1: none). A view for StridedLoop only: no autograd, same storage.
Tensor restride(const Tensor& t, const Shape& shape, int64_t zero_dim) {
  auto impl = std::make_shared<TensorImpl>(t.impl());
  impl->autograd = nullptr;
  impl->sizes = shape;
  if (zero_dim >= 0) impl->strides[std::size_t(zero_dim)] = 0;
  return Tensor(std::move(impl));
}

/// The same view with dim `first` moved to the front (the others keep their order).
Tensor dim_first(const Tensor& t, int64_t first) {
  std::vector<int64_t> order{first};
  for (int64_t d = 0; d < t.dim(); ++d)
    if (d != first) order.push_back(d);
  return t.permute(order);
}

/// Throws the contract's IndexError for the first index (in row-major order of index's view)
/// outside [0, size).
void check_indices(const Tensor& index, int64_t size, int64_t dim, const char* op) {
  if (index.numel() == 0) return;
  const StridedLoop loop({&index});
  const char* base = static_cast<const char*>(index.raw_data());
  loop.run_rows(0, loop.outer(), [&](char** p, const int64_t* s, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const char* at = p[0] + i * s[0];
      const int64_t v = *reinterpret_cast<const int64_t*>(at);
      if (v < 0 || v >= size)
        throw IndexError(index_out_of_range_message(op, v, int64_t(at - base) / int64_t(sizeof(int64_t)), dim, size));
    }
  });
}

template <typename T>
bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

}  // namespace

void CpuBackend::gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out, const char* op) {
  check_indices(index, x.size(dim), dim, op);
  if (out.numel() == 0) return;
  // x seen with index's shape, stride 0 along dim: the kernel adds index * stride itself.
  const Tensor xv = restride(x, index.shape(), dim);
  const int64_t step = x.stride(dim) * int64_t(x.itemsize());
  const StridedLoop loop({&out, &index, &xv});
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    loop.run([&](char** p, const int64_t* s, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t j = *reinterpret_cast<const int64_t*>(p[1] + i * s[1]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const T*>(p[2] + i * s[2] + j * step);
      }
    });
  });
}

void CpuBackend::scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, const char* op) {
  TESSERA_CHECK(out.dtype() != DType::Bool && out.dtype() != DType::UInt8, DTypeError, op,
                ": not implemented for ", dtype_name(out.dtype()));
  if (is_reduced_floating_point(out.dtype())) {  // summed in float32, rounded once
    check_indices(index, out.size(dim), dim, op);
    detail::Float32Scope f;
    return scatter_add(f.inout(out), dim, index, f.in(src), op);
  }
  check_indices(index, out.size(dim), dim, op);
  if (index.numel() == 0) return;
  // One pass in row-major order with dim outermost: for every element of out, the additions
  // come in the order of the index positions along dim (the contract's order). Sequential:
  // duplicate indices make any split of the positions write the same elements.
  const Tensor ov = dim_first(restride(out, index.shape(), dim), dim);
  const Tensor iv = dim_first(index, dim);
  const Tensor sv = dim_first(restride(src, index.shape(), -1), dim);
  const int64_t step = out.stride(dim) * int64_t(out.itemsize());
  const StridedLoop loop({&ov, &iv, &sv});
  dispatch_standard(out.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      loop.run_rows(0, loop.outer(), [&](char** p, const int64_t* s, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          const int64_t j = *reinterpret_cast<const int64_t*>(p[1] + i * s[1]);
          T* o = reinterpret_cast<T*>(p[0] + i * s[0] + j * step);
          *o = T(*o + *reinterpret_cast<const T*>(p[2] + i * s[2]));
        }
      });
    }
  });
}

void CpuBackend::topk_rows(const Tensor& x, int64_t k, bool largest, const Tensor& values, const Tensor& indices) {
  if (is_reduced_floating_point(x.dtype())) {  // compared in float32 (exact), values rounded back exactly
    detail::Float32Scope f;
    return topk_rows(f.in(x), k, largest, f.out(values), indices);
  }
  const int64_t M = x.size(0), N = x.size(1);
  if (M == 0 || k == 0) return;
  int64_t* id = indices.data_ptr<int64_t>();
  dispatch_standard(x.dtype(), "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) {
      throw DTypeError("topk: not implemented for bool");
    } else {
      const T* xd = x.data_ptr<T>();
      T* vd = values.data_ptr<T>();
      parallel_for(M, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(N, 1)), [&](int64_t b, int64_t e) {
        std::vector<int64_t> order(static_cast<std::size_t>(N));
        for (int64_t m = b; m < e; ++m) {
          const T* row = xd + m * N;
          // a before b: NaN above every number; ties (equal, or both NaN) by ascending column.
          auto before = [&](int64_t i, int64_t j) {
            const T a = row[i], c = row[j];
            const bool na = is_nan_value(a), nc = is_nan_value(c);
            if (na || nc) return na != nc ? (largest ? na : nc) : i < j;
            if (a != c) return largest ? a > c : a < c;
            return i < j;
          };
          std::iota(order.begin(), order.end(), int64_t(0));
          std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
          for (int64_t r = 0; r < k; ++r) {
            vd[m * k + r] = row[order[std::size_t(r)]];
            id[m * k + r] = order[std::size_t(r)];
          }
        }
      });
    }
  });
}

void CpuBackend::multinomial_rows(const Tensor& probs, uint64_t seed, uint64_t offset, const Tensor& out) {
  if (is_reduced_floating_point(probs.dtype())) {  // float32 holds every float16/bfloat16 weight exactly
    detail::Float32Scope f;
    return multinomial_rows(f.in(probs), seed, offset, out);
  }
  const int64_t M = probs.size(0), N = probs.size(1), S = out.size(1);
  if (M == 0 || S == 0) return;
  int64_t* od = out.data_ptr<int64_t>();
  dispatch_float(probs.dtype(), "multinomial", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pd = probs.data_ptr<T>();
    parallel_for(M, 1, [&](int64_t b, int64_t e) {
      std::vector<double> cdf(static_cast<std::size_t>(N));
      for (int64_t m = b; m < e; ++m) {
        double acc = 0;
        int64_t last = N - 1;
        for (int64_t j = 0; j < N; ++j) {
          const double p = double(pd[m * N + j]);
          acc += p;
          cdf[std::size_t(j)] = acc;
          if (p > 0) last = j;
        }
        const double total = acc;
        for (int64_t s = 0; s < S; ++s) {
          const Philox4x32 r = philox_block(seed, offset, uint64_t(m * S + s));
          const double target = uint2_to_unit_double(r.v[0], r.v[1]) * total;
          const int64_t j = std::upper_bound(cdf.begin(), cdf.end(), target) - cdf.begin();
          od[m * S + s] = j < N ? j : last;
        }
      }
    });
  });
}

}  // namespace tessera::cpu
