// Indexing ops of ops.hpp: embedding, index_select, gather, scatter_add, index_add,
// masked_fill, tril/triu, topk and multinomial. Each validates its arguments (throwing a
// tessera::Error subclass that names the op and the offending shapes, dtypes or devices),
// dispatches to the backend's gather / scatter_add / topk_rows / multinomial_rows (or composes
// elementwise ops) and records its backward.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "ops_checks.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"

namespace tessera {

std::string index_out_of_range_message(const char* op, int64_t value, int64_t position, int64_t dim, int64_t size) {
  if (std::string(op) == "embedding")
    return detail::str_cat("embedding: index ", value, " at position ", position,
                           " of indices is out of range for a table of ", size,
                           " embeddings (weight's rows); indices must be in [0, ", size, ")");
  return detail::str_cat(op, ": index ", value, " at position ", position, " is out of bounds for dim ", dim,
                         " with size ", size, "; indices must be in [0, ", size, ")");
}

namespace {

using namespace ops_detail;
using Grads = std::vector<Tensor>;

/// The index as a contiguous int64 tensor without history (int32 converted when allowed), so
/// that the backends' "position" of a bad index is its flat position here.
Tensor index_tensor(const Tensor& index, const Tensor& x, const char* op, bool allow_int32) {
  check_defined(index, op, "index");
  check_same_device(x, index, op, "index");
  const bool ok = index.dtype() == DType::Int64 || (allow_int32 && index.dtype() == DType::Int32);
  TESSERA_CHECK(ok, DTypeError, op, ": index must be ", allow_int32 ? "int64 or int32" : "int64", ", got ",
                dtype_name(index.dtype()), " (index ", shape_str(index.shape()), ")");
  return index.detach().to(DType::Int64).contiguous();
}

/// A 1-D (or 0-dim) index for index_select / index_add, as [K].
Tensor vector_index(const Tensor& index, const Tensor& x, const char* op) {
  const Tensor idx = index_tensor(index, x, op, true);
  TESSERA_CHECK(idx.dim() <= 1, ShapeError, op, ": index must be 1-D (or 0-dim), got shape ",
                shape_str(index.shape()));
  return idx.reshape({idx.numel()});
}

/// The [K] index seen with `shape` (K at dim, stride 0 elsewhere) for the gather/scatter kernels.
Tensor expand_along(const Tensor& idx, int64_t dim, int64_t ndim, const Shape& shape) {
  Shape v(std::size_t(ndim), 1);
  v[std::size_t(dim)] = idx.numel();
  return idx.view(v).expand(shape);
}

int64_t index_dim(const Tensor& x, int64_t dim, const char* op) {
  TESSERA_CHECK(x.dim() >= 1, ShapeError, op, ": expected an input with at least 1 dim, got a 0-dim tensor");
  return wrap_dim(dim, x.dim(), op);
}

/// out = x gathered at index along dim (index: int64 without history).
Tensor gather_values(const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  Tensor out = empty(index.shape(), TensorOptions(x.dtype(), x.device()));
  backend_for(x.device()).gather(x.detach(), dim, index, out, op);
  return out;
}

/// A contiguous copy of x with src scatter-added at index along dim.
Tensor scatter_added(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, const char* op) {
  Tensor out = empty(x.shape(), TensorOptions(x.dtype(), x.device()));
  if (out.numel() > 0) backend_for(x.device()).copy(x.detach(), out);
  backend_for(x.device()).scatter_add(out, dim, index, src.detach(), op);
  return out;
}

void check_scatter_dtype(const Tensor& x, const char* op) {
  TESSERA_CHECK(x.dtype() != DType::Bool && x.dtype() != DType::UInt8, DTypeError, op,
                ": not implemented for dtype ", dtype_name(x.dtype()), " (input ", shape_str(x.shape()),
                "); convert with .to(dtype)");
}

/// A gradient of `shape` equal to g in the leading corner of g's shape and 0 elsewhere (src
/// larger than index in scatter_add).
Tensor pad_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor full = zeros(shape, TensorOptions(g.dtype(), g.device()));
  Tensor corner = full;
  for (int64_t d = 0; d < g.dim(); ++d) corner = corner.narrow(d, 0, g.size(d));
  corner.copy_(g);
  return full;
}

}  // namespace

// ---- gather / scatter family ----------------------------------------------------------------

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "index_select";
  check_defined(x, op, "input");
  const int64_t d = index_dim(x, dim, op);
  const Tensor idx = vector_index(index, x, op);
  Shape out_shape = x.shape();
  out_shape[std::size_t(d)] = idx.numel();
  Tensor out = gather_values(x, d, expand_along(idx, d, x.dim(), out_shape), op);
  if (recording({&x})) {
    const Shape shape = x.shape();
    autograd::record(out, "IndexSelectBackward", {x}, [shape, d, idx](const Tensor& g) {
      return Grads{index_add(zeros(shape, TensorOptions(g.dtype(), g.device())), d, idx, g)};
    });
  }
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "gather";
  check_defined(x, op, "input");
  const int64_t d = index_dim(x, dim, op);
  const Tensor idx = index_tensor(index, x, op, false);
  TESSERA_CHECK(idx.dim() == x.dim(), ShapeError, op, ": index ", shape_str(idx.shape()), " must have as many dims as input ",
                shape_str(x.shape()));
  for (int64_t k = 0; k < x.dim(); ++k) {
    TESSERA_CHECK(k == d || idx.size(k) <= x.size(k), ShapeError, op, ": index ", shape_str(idx.shape()),
                  " is larger than input ", shape_str(x.shape()), " in dim ", k, " (only dim ", d, " may differ)");
  }
  Tensor out = gather_values(x, d, idx, op);
  if (recording({&x})) {
    const Shape shape = x.shape();
    autograd::record(out, "GatherBackward", {x}, [shape, d, idx](const Tensor& g) {
      return Grads{scatter_add(zeros(shape, TensorOptions(g.dtype(), g.device())), d, idx, g)};
    });
  }
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add";
  check_defined(x, op, "input");
  check_defined(src, op, "src");
  const int64_t d = index_dim(x, dim, op);
  const Tensor idx = index_tensor(index, x, op, false);
  check_same_device(x, src, op, "src");
  check_same_dtype(x, src, op, "src");
  check_scatter_dtype(x, op);
  TESSERA_CHECK(idx.dim() == x.dim() && src.dim() == x.dim(), ShapeError, op, ": input ", shape_str(x.shape()),
                ", index ", shape_str(idx.shape()), " and src ", shape_str(src.shape()),
                " must have the same number of dims");
  for (int64_t k = 0; k < x.dim(); ++k) {
    TESSERA_CHECK(idx.size(k) <= src.size(k) && (k == d || idx.size(k) <= x.size(k)), ShapeError, op, ": index ",
                  shape_str(idx.shape()), " must be no larger than src ", shape_str(src.shape()),
                  " in every dim and than input ", shape_str(x.shape()), " in every dim but ", d,
                  " (dim ", k, " is not)");
  }
  Tensor out = scatter_added(x, d, idx, src, op);
  if (recording({&x, &src})) {
    const Shape src_shape = src.shape();
    const bool gx = needs_grad(x), gs = needs_grad(src);
    autograd::record(out, "ScatterAddBackward", {x, src}, [d, idx, src_shape, gx, gs](const Tensor& g) {
      return Grads{gx ? g : Tensor(), gs ? pad_to(gather(g, d, idx), src_shape) : Tensor()};
    });
  }
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha) {
  const char* op = "index_add";
  check_defined(x, op, "input");
  check_defined(src, op, "source");
  const int64_t d = index_dim(x, dim, op);
  const Tensor idx = vector_index(index, x, op);
  check_same_device(x, src, op, "source");
  check_same_dtype(x, src, op, "source");
  check_scatter_dtype(x, op);
  Shape want = x.shape();
  want[std::size_t(d)] = idx.numel();
  TESSERA_CHECK(src.shape() == want, ShapeError, op, ": source ", shape_str(src.shape()), " must have shape ",
                shape_str(want), " (input ", shape_str(x.shape()), " with dim ", d, " of the index's length ",
                idx.numel(), ")");
  TESSERA_CHECK(is_floating_point(x.dtype()) || alpha == std::floor(alpha), ValueError, op, ": alpha ", alpha,
                " must be an integer for integer input (dtype ", dtype_name(x.dtype()), ")");
  Tensor scaled;
  {
    NoGradGuard no_grad;
    scaled = alpha == 1.0 ? src.detach() : mul(src.detach(), alpha);
  }
  Tensor out = scatter_added(x, d, expand_along(idx, d, x.dim(), src.shape()), scaled, op);
  if (recording({&x, &src})) {
    const bool gx = needs_grad(x), gs = needs_grad(src);
    autograd::record(out, "IndexAddBackward", {x, src}, [d, idx, alpha, gx, gs](const Tensor& g) {
      Tensor gsrc;
      if (gs) {
        gsrc = index_select(g, d, idx);
        if (alpha != 1.0) gsrc = mul(gsrc, alpha);
      }
      return Grads{gx ? g : Tensor(), gsrc};
    });
  }
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx) {
  const char* op = "embedding";
  check_defined(weight, op, "weight");
  check_defined(indices, op, "indices");
  TESSERA_CHECK(!(is_floating_point(indices.dtype()) && !is_floating_point(weight.dtype())), DTypeError, op,
                ": weight has dtype ", dtype_name(weight.dtype()), " and indices ", dtype_name(indices.dtype()),
                "; the order is embedding(weight, indices), torch.embedding's (torch.nn.functional.embedding "
                "takes (indices, weight))");
  TESSERA_CHECK(weight.dim() == 2, ShapeError, op, ": expected weight [num_embeddings, embedding_dim], got shape ",
                shape_str(weight.shape()));
  TESSERA_CHECK(is_floating_point(weight.dtype()), DTypeError, op, ": weight must be floating point, got ",
                dtype_name(weight.dtype()), " (weight ", shape_str(weight.shape()), ")");
  const int64_t V = weight.size(0), D = weight.size(1);
  int64_t pad = -1;
  if (padding_idx) {
    TESSERA_CHECK(*padding_idx >= -V && *padding_idx < V, ValueError, op, ": padding_idx ", *padding_idx,
                  " must be within [-", V, ", ", V, ") for weight ", shape_str(weight.shape()));
    pad = *padding_idx < 0 ? *padding_idx + V : *padding_idx;
  }
  const Tensor flat = index_tensor(indices, weight, op, true).reshape({indices.numel()});
  Tensor rows = gather_values(weight, 0, expand_along(flat, 0, 2, Shape{flat.numel(), D}), op);
  if (recording({&weight})) {
    autograd::record(rows, "EmbeddingBackward", {weight}, [V, D, flat, pad](const Tensor& g) {
      Tensor gw = index_add(zeros({V, D}, TensorOptions(g.dtype(), g.device())), 0, flat, g);
      if (pad >= 0) gw.select(0, pad).fill_(0.0);
      return Grads{gw};
    });
  }
  Shape out_shape = indices.shape();
  out_shape.push_back(D);
  return rows.reshape(out_shape);
}

// ---- masks --------------------------------------------------------------------------------

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  const char* op = "masked_fill";
  check_defined(x, op, "input");
  check_defined(mask, op, "mask");
  TESSERA_CHECK(mask.dtype() == DType::Bool, DTypeError, op, ": mask must be bool, got ", dtype_name(mask.dtype()),
                " (mask ", shape_str(mask.shape()), ")");
  check_same_device(x, mask, op, "mask");
  (void)broadcast_shapes(x.shape(), mask.shape(), op);
  return where(mask, scalar_tensor(value, TensorOptions(x.dtype(), x.device())), x);
}

namespace {
/// x where the element (i, j) of its last two dims satisfies keep(j - i), else 0.
template <typename Keep>
Tensor triangle(const Tensor& x, const char* op, Keep keep) {
  check_defined(x, op, "input");
  TESSERA_CHECK(x.dim() >= 2, ShapeError, op, ": expected a tensor with at least 2 dims [..., rows, cols], got shape ",
                shape_str(x.shape()));
  const int64_t R = x.size(-2), C = x.size(-1);
  Tensor mask = empty({R, C}, TensorOptions(DType::Bool));
  bool* m = mask.data_ptr<bool>();
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) m[i * C + j] = keep(j - i);
  return where(mask.to(x.device()), x, zeros({}, TensorOptions(x.dtype(), x.device())));
}
}  // namespace

Tensor tril(const Tensor& x, int64_t diagonal) {
  return triangle(x, "tril", [diagonal](int64_t d) { return d <= diagonal; });
}
Tensor triu(const Tensor& x, int64_t diagonal) {
  return triangle(x, "triu", [diagonal](int64_t d) { return d >= diagonal; });
}

// ---- topk, multinomial --------------------------------------------------------------------

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
  (void)sorted;  // always sorted: torch allows any order when sorted is false
  const char* op = "topk";
  check_defined(x, op, "input");
  TESSERA_CHECK(x.dtype() != DType::Bool, DTypeError, op, ": not implemented for bool (input ", shape_str(x.shape()),
                ")");
  if (x.dim() == 0) {
    auto [v, i] = topk(x.reshape({1}), k, 0, largest, sorted);
    return {v.reshape({}), i.reshape({})};
  }
  const int64_t d = wrap_dim(dim, x.dim(), op);
  const int64_t N = x.size(d);
  TESSERA_CHECK(k >= 0 && k <= N, ValueError, op, ": k = ", k, " is out of range for dim ", d, " of size ", N,
                " (input ", shape_str(x.shape()), "); k must be in [0, ", N, "]");
  const Tensor xt = x.detach().transpose(d, -1).contiguous();
  Shape shape_t = xt.shape();
  const int64_t M = N == 0 ? shape_numel(Shape(shape_t.begin(), shape_t.end() - 1)) : xt.numel() / N;
  Tensor v2 = empty({M, k}, TensorOptions(x.dtype(), x.device()));
  Tensor i2 = empty({M, k}, TensorOptions(DType::Int64, x.device()));
  backend_for(x.device()).topk_rows(xt.reshape({M, N}), k, largest, v2, i2);
  shape_t.back() = k;
  Tensor values = v2.reshape(shape_t).transpose(d, -1).contiguous();
  Tensor indices = i2.reshape(shape_t).transpose(d, -1).contiguous();
  if (recording({&x})) {
    const Shape shape = x.shape();
    autograd::record(values, "TopkBackward", {x}, [shape, d, indices](const Tensor& g) {
      return Grads{scatter_add(zeros(shape, TensorOptions(g.dtype(), g.device())), d, indices, g)};
    });
  }
  return {values, indices};
}

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator* generator) {
  const char* op = "multinomial";
  check_defined(probs, op, "probs");
  TESSERA_CHECK(probs.dim() == 1 || probs.dim() == 2, ShapeError, op,
                ": probs must be 1-D [N] or 2-D [M, N], got shape ", shape_str(probs.shape()));
  TESSERA_CHECK(is_floating_point(probs.dtype()), DTypeError, op, ": probs must be floating point, got ",
                dtype_name(probs.dtype()), " (probs ", shape_str(probs.shape()), ")");
  const int64_t N = probs.size(-1);
  TESSERA_CHECK(N > 0, ValueError, op, ": probs ", shape_str(probs.shape()), " has no categories");
  TESSERA_CHECK(num_samples > 0, ValueError, op, ": num_samples must be positive, got ", num_samples);
  TESSERA_CHECK(replacement || num_samples <= N, ValueError, op, ": cannot draw ", num_samples,
                " samples without replacement from ", N, " categories (probs ", shape_str(probs.shape()), ")");
  NoGradGuard no_grad;
  const Tensor p = probs.detach().reshape({-1, N}).contiguous();
  const int64_t M = p.size(0);
  if (M > 0) {
    // The distribution's checks read three reductions back (a wait on a CUDA device).
    const double lo = min(p).item<double>(), hi = max(p).item<double>();
    TESSERA_CHECK(lo >= 0 && std::isfinite(hi), ValueError, op, ": probs ", shape_str(probs.shape()),
                  " must be finite and >= 0, but holds ", std::isnan(lo) || std::isnan(hi) ? "NaN" : lo < 0 ? "a negative weight" : "inf",
                  " (min ", lo, ", max ", hi, ")");
    TESSERA_CHECK(min(sum(p, {1})).item<double>() > 0, ValueError, op, ": a row of probs ", shape_str(probs.shape()),
                  " sums to 0; every row needs a positive weight");
    if (!replacement) {
      const int64_t positive = min(sum(gt(p, 0.0), {1})).item<int64_t>();
      TESSERA_CHECK(positive >= num_samples, ValueError, op, ": cannot draw ", num_samples,
                    " samples without replacement from a row of probs ", shape_str(probs.shape()), " with only ",
                    positive, " positive weights");
    }
  }
  Generator& g = generator ? *generator : default_generator();
  Tensor out;
  if (replacement) {
    out = empty({M, num_samples}, TensorOptions(DType::Int64, p.device()));
    const uint64_t offset = g.advance(uint64_t(M * num_samples));
    backend_for(p.device()).multinomial_rows(p, g.seed(), offset, out);
  } else {
    // PyTorch's kernel: the top num_samples of p / E, E ~ Exp(1) = -log(1 - U) (U in [0, 1)),
    // drawn in float64; zero weights never win (key -1).
    Tensor u = empty({M, N}, TensorOptions(DType::Float64, p.device()));
    const uint64_t offset = g.advance(uint64_t(M * N));
    if (u.numel() > 0) backend_for(p.device()).random(RandomKind::Uniform, u, g.seed(), offset, 0.0, 1.0);
    const Tensor pd = p.to(DType::Float64);
    const Tensor keys = where(gt(pd, 0.0), div(pd, neg(log1p(neg(u)))), -1.0);
    out = num_samples == 1 ? argmax(keys, 1, true) : topk(keys, num_samples, 1).second;
  }
  return probs.dim() == 1 ? out.reshape({num_samples}) : out;
}

}  // namespace tessera
