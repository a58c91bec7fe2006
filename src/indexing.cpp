// Multi-dimensional indexing (include/tessera/indexing.hpp): x.index({...}), index_put,
// masked_select, nonzero. Composite: basic indices are views (select / slice / unsqueeze),
// advanced indices one index_select on a view, index_put an index_add / masked_fill on the
// flattened tensor, so both backends and autograd come from those ops.
#include "tessera/indexing.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <sstream>

#include "ops_checks.hpp"
#include "tessera/ops.hpp"

namespace tessera {

namespace indexing {

namespace {
std::string opt_str(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string("None"); }
}  // namespace

std::string Slice::str() const { return opt_str(start_) + ":" + opt_str(stop_) + ":" + opt_str(step_); }

TensorIndex::TensorIndex(const char* text) : kind_(Kind::Ellipsis) {
  TESSERA_CHECK(text != nullptr && std::strcmp(text, "...") == 0, ValueError,
                "TensorIndex: the only string index is \"...\" (Ellipsis), got \"", text ? text : "(null)", "\"");
}

std::string TensorIndex::str() const {
  switch (kind_) {
    case Kind::None: return "None";
    case Kind::Ellipsis: return "...";
    case Kind::Integer: return std::to_string(integer_);
    case Kind::Boolean: return boolean_ ? "True" : "False";
    case Kind::Slice: return slice_.str();
    case Kind::Tensor:
      if (!tensor_.defined()) return "tensor(undefined)";
      return detail::str_cat("tensor(", dtype_name(tensor_.dtype()), " ", shape_str(tensor_.shape()), ")");
  }
  return "?";
}

std::string indices_str(const std::vector<TensorIndex>& indices) {
  std::string s = "[";
  for (size_t i = 0; i < indices.size(); ++i) s += (i ? ", " : "") + indices[i].str();
  return s + "]";
}

}  // namespace indexing

namespace {

using indexing::TensorIndex;
using Kind = TensorIndex::Kind;

/// One advanced index after the walk: the dim of the walked view it indexes and its values as
/// a contiguous int64 CPU tensor, already range-checked and wrapped into [0, size).
struct Advanced {
  int64_t dim;
  Tensor host;
};

/// An integer index tensor as wrapped, checked host int64 (IndexError naming the bad entry).
Tensor checked_host_index(const Tensor& index, size_t position, int64_t size, int64_t xdim, const Tensor& x,
                          const std::vector<TensorIndex>& indices, const char* op) {
  TESSERA_CHECK(index.dtype() == DType::Int64 || index.dtype() == DType::Int32, DTypeError, op,
                ": index tensor at position ", position, " of ", indexing::indices_str(indices),
                " must be int64 or int32 (or a bool mask), got ", dtype_name(index.dtype()),
                "; convert a uint8 mask with .to(kBool)");
  Tensor h = index.detach().to(Device::cpu(), DType::Int64).contiguous();
  if (h.data_ptr<int64_t>() == static_cast<const void*>(index.raw_data()))
    h = h.clone();  // wrapped in place below: never write the caller's tensor
  int64_t* p = h.data_ptr<int64_t>();
  for (int64_t i = 0; i < h.numel(); ++i) {
    const int64_t v = p[i];
    TESSERA_CHECK(v >= -size && v < size, IndexError, op, ": index ", v, " (element ", i, " of the index tensor at position ",
                  position, ") is out of bounds for dim ", xdim, " with size ", size, " (input ", shape_str(x.shape()),
                  ")");
    if (v < 0) p[i] = v + size;
  }
  return h;
}

bool can_expand(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const size_t off = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[off + i]) return false;
  return true;
}

/// Number of x's dims that the indices consume (everything but None, Ellipsis and bools).
int64_t consumed_dims(const std::vector<TensorIndex>& indices, const char* op) {
  int64_t consumed = 0;
  int ellipses = 0;
  for (const TensorIndex& ix : indices) {
    switch (ix.kind()) {
      case Kind::Integer:
      case Kind::Slice: ++consumed; break;
      case Kind::Ellipsis: ++ellipses; break;
      case Kind::Tensor:
        ops_detail::check_defined(ix.tensor(), op, "an index tensor");
        if (ix.tensor().dtype() == DType::Bool) consumed += ix.tensor().dim();
        else ++consumed;
        break;
      default: break;
    }
  }
  TESSERA_CHECK(ellipses <= 1, IndexError, op, ": an index can only have a single ellipsis ('...'), got ",
                indexing::indices_str(indices));
  return consumed;
}

/// x[indices]. The walk applies the basic indices as views and collects the advanced ones.
Tensor index_impl(const Tensor& x, const std::vector<TensorIndex>& indices, const char* op) {
  ops_detail::check_defined(x, op, "input");
  const int64_t consumed = consumed_dims(indices, op);
  TESSERA_CHECK(consumed <= x.dim(), IndexError, op, ": too many indices for a tensor of dimension ", x.dim(),
                " (input ", shape_str(x.shape()), ", indices ", indexing::indices_str(indices), " index ", consumed,
                " dims)");
  Tensor y = x;
  int64_t d = 0;   // dim of y the next index applies to
  int64_t xd = 0;  // dim of x it applies to (for messages)
  std::vector<Advanced> adv;
  auto bool_index = [&](bool value) {  // libtorch: unsqueeze, then a [1] or [0] advanced index
    y = y.unsqueeze(d);
    Tensor h = value ? zeros({1}, DType::Int64) : empty({0}, DType::Int64);
    adv.push_back({d, h});
    ++d;
  };
  for (size_t i = 0; i < indices.size(); ++i) {
    const TensorIndex& ix = indices[i];
    switch (ix.kind()) {
      case Kind::None:
        y = y.unsqueeze(d);
        ++d;
        break;
      case Kind::Boolean: bool_index(ix.boolean()); break;
      case Kind::Ellipsis:
        d += x.dim() - consumed;
        xd += x.dim() - consumed;
        break;
      case Kind::Integer: {
        const int64_t n = y.size(d), v = ix.integer();
        TESSERA_CHECK(v >= -n && v < n, IndexError, op, ": index ", v, " is out of bounds for dim ", xd, " with size ",
                      n, " (input ", shape_str(x.shape()), ", indices ", indexing::indices_str(indices), ")");
        y = y.select(d, v);
        ++xd;
        break;
      }
      case Kind::Slice: {
        const indexing::Slice& s = ix.slice();
        TESSERA_CHECK(s.step() > 0, ValueError, op, ": slice ", s.str(), " at position ", i, " has step ", s.step(),
                      "; the step must be positive (as in PyTorch; flip() reverses a dim)");
        y = y.slice(d, s.start(), s.stop(), s.step());
        ++d;
        ++xd;
        break;
      }
      case Kind::Tensor: {
        const Tensor& t = ix.tensor();
        if (t.dtype() == DType::Bool && t.dim() == 0) {
          bool_index(t.item<bool>());
          break;
        }
        if (t.dtype() == DType::Bool) {
          const int64_t k = t.dim();
          const Shape sub(y.shape().begin() + d, y.shape().begin() + d + k);
          TESSERA_CHECK(t.shape() == sub, IndexError, op, ": the shape of the mask ", shape_str(t.shape()),
                        " at position ", i, " does not match the shape ", shape_str(sub), " of the dims ", xd, " to ",
                        xd + k - 1, " it indexes (input ", shape_str(x.shape()), ")");
          const Tensor coords = nonzero(t).to(Device::cpu()).contiguous();  // [n, k] int64, in range
          for (int64_t j = 0; j < k; ++j) adv.push_back({d + j, coords.select(1, j).contiguous()});
          d += k;
          xd += k;
          break;
        }
        adv.push_back({d, checked_host_index(t, i, y.size(d), xd, x, indices, op)});
        ++d;
        ++xd;
        break;
      }
    }
  }
  if (adv.empty()) return y;

  // The advanced indices broadcast together to B.
  Shape B = adv[0].host.shape();
  for (size_t k = 1; k < adv.size(); ++k) {
    const Shape& s = adv[k].host.shape();
    const size_t n = std::max(B.size(), s.size());
    Shape out(n);
    bool ok = true;
    for (size_t j = 0; j < n; ++j) {
      const int64_t a = j + B.size() >= n ? B[j + B.size() - n] : 1;
      const int64_t b = j + s.size() >= n ? s[j + s.size() - n] : 1;
      ok = ok && (a == b || a == 1 || b == 1);
      out[j] = a == 1 ? b : a;
    }
    if (!ok) {
      std::string shapes;
      for (const Advanced& a : adv) shapes += (shapes.empty() ? "" : ", ") + shape_str(a.host.shape());
      throw ShapeError(detail::str_cat(op, ": shape mismatch: indexing tensors could not be broadcast together with shapes ",
                                       shapes, " (input ", shape_str(x.shape()), ", indices ",
                                       indexing::indices_str(indices), ")"));
    }
    B = out;
  }
  const int64_t nB = shape_numel(B);

  if (adv.size() == 1) {
    const int64_t dim = adv[0].dim;
    const Tensor lin = adv[0].host.reshape({nB}).to(y.device());
    Shape out = y.shape();
    out.erase(out.begin() + dim);
    out.insert(out.begin() + dim, B.begin(), B.end());
    return index_select(y, dim, lin).reshape(out);
  }

  // Several: move the advanced dims first, flatten them, and gather one linear index.
  std::vector<int64_t> perm, rest;
  std::vector<bool> is_adv(size_t(y.dim()), false);
  for (const Advanced& a : adv) {
    perm.push_back(a.dim);
    is_adv[size_t(a.dim)] = true;
  }
  for (int64_t j = 0; j < y.dim(); ++j)
    if (!is_adv[size_t(j)]) rest.push_back(j);
  bool adjacent = true;
  for (size_t k = 1; k < adv.size(); ++k) adjacent = adjacent && adv[k].dim == adv[k - 1].dim + 1;
  Shape flat_shape{1};
  for (const Advanced& a : adv) flat_shape[0] *= y.size(a.dim);
  for (int64_t j : rest) flat_shape.push_back(y.size(j));
  perm.insert(perm.end(), rest.begin(), rest.end());

  Tensor lin_host = zeros({nB}, DType::Int64);
  int64_t* lin = lin_host.data_ptr<int64_t>();
  int64_t stride = 1;
  for (size_t k = adv.size(); k-- > 0;) {
    const Tensor e = adv[k].host.expand(B).contiguous();
    const int64_t* p = e.data_ptr<int64_t>();
    for (int64_t i = 0; i < nB; ++i) lin[i] += p[i] * stride;
    stride *= y.size(adv[k].dim);
  }
  Tensor flat = y.permute(perm).reshape(flat_shape);
  Tensor got = index_select(flat, 0, lin_host.to(y.device()));
  Shape out = B;
  for (int64_t j : rest) out.push_back(y.size(j));
  got = got.reshape(out);
  const int64_t first = adv[0].dim;
  if (adjacent && first > 0) {  // B back where the advanced dims were
    const int64_t nb = int64_t(B.size());
    std::vector<int64_t> back;
    for (int64_t j = 0; j < first; ++j) back.push_back(nb + j);
    for (int64_t j = 0; j < nb; ++j) back.push_back(j);
    for (int64_t j = nb + first; j < got.dim(); ++j) back.push_back(j);
    got = got.permute(back);
  }
  return got;
}

/// The flat positions (row-major in x) that x[indices] names, as a contiguous int64 tensor on
/// x's device, and the shape of x[indices].
std::pair<Tensor, Shape> indexed_positions(const Tensor& x, const std::vector<TensorIndex>& indices, const char* op) {
  ops_detail::check_defined(x, op, "input");
  Tensor pos = arange(0, double(x.numel()), 1, TensorOptions(DType::Int64, x.device())).reshape(x.shape());
  Tensor p = index_impl(pos, indices, op);
  Shape r = p.shape();
  return {p.contiguous().reshape({p.numel()}), r};
}

/// [x.numel()] bool on x's device: true at the positions pos names. Without allow_duplicates a
/// position named twice is a ValueError naming its coordinates.
Tensor written_mask(const Tensor& x, const Tensor& pos, const std::vector<TensorIndex>& indices,
                    bool allow_duplicates, const char* op) {
  const Tensor host_pos = pos.to(Device::cpu()).contiguous();
  const int64_t* hp = host_pos.data_ptr<int64_t>();
  Tensor hit_host = zeros({x.numel()}, DType::Bool);
  bool* hit = hit_host.data_ptr<bool>();
  for (int64_t i = 0; i < host_pos.numel(); ++i) {
    const int64_t p = hp[i];
    if (hit[p] && !allow_duplicates) {
      Shape coord(size_t(x.dim()));
      int64_t rem = p;
      for (int64_t j = x.dim(); j-- > 0;) {
        coord[size_t(j)] = rem % x.size(j);
        rem /= x.size(j);
      }
      throw ValueError(detail::str_cat(op, ": the indices ", indexing::indices_str(indices), " name the element ",
                                       shape_str(coord), " of input ", shape_str(x.shape()),
                                       " more than once; pass accumulate = true to add the values up (PyTorch "
                                       "leaves the result undefined)"));
    }
    hit[p] = true;
  }
  return hit_host.to(x.device());
}

bool is_flag_dtype(DType t) { return t == DType::Bool || t == DType::UInt8; }

}  // namespace

Tensor index(const Tensor& x, const std::vector<indexing::TensorIndex>& indices) {
  return index_impl(x, indices, "index");
}

namespace {

Tensor index_put_impl(const Tensor& x, const std::vector<indexing::TensorIndex>& indices, const Tensor& values,
                      bool accumulate, const char* op) {
  ops_detail::check_defined(values, op, "values");
  auto [pos, R] = indexed_positions(x, indices, op);
  TESSERA_CHECK(can_expand(values.shape(), R), ShapeError, op, ": values of shape ", shape_str(values.shape()),
                " cannot be broadcast to the indexing result of shape ", shape_str(R), " (input ",
                shape_str(x.shape()), ", indices ", indexing::indices_str(indices), ")");
  if (pos.numel() == 0) return x.clone();
  const Tensor hit = written_mask(x, pos, indices, /*allow_duplicates=*/accumulate, op);
  const DType dt = x.dtype();
  const DType work = is_flag_dtype(dt) ? DType::Int64 : dt;  // index_add has no bool/uint8 kernels
  Tensor flat = x.reshape({x.numel()});
  if (work != dt) flat = flat.to(work);
  Tensor v = values.to(x.device()).to(work).expand(R).reshape({pos.numel()});
  Tensor out;
  if (accumulate) {
    out = index_add(flat, 0, pos, v);
  } else {
    out = index_add(masked_fill(flat, hit, 0.0), 0, pos, v);
  }
  if (work != dt) out = out.to(dt);
  return out.reshape(x.shape());
}

Tensor index_put_impl(const Tensor& x, const std::vector<indexing::TensorIndex>& indices, double value,
                      const char* op) {
  auto [pos, R] = indexed_positions(x, indices, op);
  (void)R;
  if (pos.numel() == 0) return x.clone();
  const Tensor hit = written_mask(x, pos, indices, /*allow_duplicates=*/true, op);
  return masked_fill(x.reshape({x.numel()}), hit, value).reshape(x.shape());
}

}  // namespace

Tensor index_put(const Tensor& x, const std::vector<indexing::TensorIndex>& indices, const Tensor& values,
                 bool accumulate) {
  return index_put_impl(x, indices, values, accumulate, "index_put");
}

Tensor index_put(const Tensor& x, const std::vector<indexing::TensorIndex>& indices, double value) {
  return index_put_impl(x, indices, value, "index_put");
}

Tensor masked_select(const Tensor& x, const Tensor& mask) {
  const char* op = "masked_select";
  ops_detail::check_defined(x, op, "input");
  ops_detail::check_defined(mask, op, "mask");
  TESSERA_CHECK(mask.dtype() == DType::Bool, DTypeError, op, ": mask must be bool, got ", dtype_name(mask.dtype()),
                " (mask ", shape_str(mask.shape()), "); convert with .to(kBool)");
  ops_detail::check_same_device(x, mask, op, "mask");
  const Shape s = broadcast_shapes(x.shape(), mask.shape(), op);
  return index_impl(x.expand(s), {mask.expand(s)}, op);
}

Tensor nonzero(const Tensor& x) {
  const char* op = "nonzero";
  ops_detail::check_defined(x, op, "input");
  Tensor b;
  {
    NoGradGuard no_grad;
    b = x.dtype() == DType::Bool ? x.detach() : ne(x.detach(), 0.0);
  }
  b = b.to(Device::cpu()).contiguous();
  const bool* p = b.data_ptr<bool>();
  const int64_t n = b.numel(), nd = b.dim();
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += p[i] ? 1 : 0;
  Tensor out = empty({count, nd}, DType::Int64);
  int64_t* o = out.data_ptr<int64_t>();
  std::vector<int64_t> coord(size_t(nd), 0);
  for (int64_t i = 0; i < n; ++i) {
    if (p[i]) {
      std::copy(coord.begin(), coord.end(), o);
      o += nd;
    }
    for (int64_t j = nd; j-- > 0;) {  // row-major odometer
      if (++coord[size_t(j)] < b.size(j)) break;
      coord[size_t(j)] = 0;
    }
  }
  return out.to(x.device());
}

Tensor argwhere(const Tensor& x) { return nonzero(x); }

// ---- Tensor methods ----------------------------------------------------------------------------

Tensor Tensor::operator[](const Tensor& index) const { return tessera::index(*this, {index}); }

Tensor Tensor::index(const std::vector<indexing::TensorIndex>& indices) const { return tessera::index(*this, indices); }

namespace {
bool all_basic(const std::vector<TensorIndex>& indices) {
  for (const TensorIndex& ix : indices)
    if (ix.is_tensor() || ix.is_boolean()) return false;
  return true;
}

void check_in_place(const Tensor& self, const Tensor* values, const char* op) {
  if (!autograd::grad_mode_enabled()) return;
  TESSERA_CHECK(!self.requires_grad(), AutogradError, op, ": the tensor of shape ", shape_str(self.shape()),
                " requires grad and index_put_ does not record history; write under NoGradGuard, or use the "
                "differentiable index_put (y = x.index_put(...))");
  TESSERA_CHECK(values == nullptr || !values->requires_grad(), AutogradError, op, ": values of shape ",
                shape_str(values->shape()),
                " require grad and index_put_ does not record history; use the differentiable index_put "
                "(y = x.index_put(indices, values)) or detach() the values");
}
}  // namespace

Tensor& Tensor::index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& values, bool accumulate) {
  const char* op = "index_put_";
  ops_detail::check_defined(*this, op, "input");
  ops_detail::check_defined(values, op, "values");
  check_in_place(*this, &values, op);
  if (all_basic(indices)) {
    Tensor view = index_impl(*this, indices, op);
    TESSERA_CHECK(can_expand(values.shape(), view.shape()), ShapeError, op, ": values of shape ",
                  shape_str(values.shape()), " cannot be broadcast to the indexing result of shape ",
                  shape_str(view.shape()), " (input ", shape_str(shape()), ", indices ",
                  indexing::indices_str(indices), ")");
    if (accumulate) {
      NoGradGuard no_grad;
      view.copy_(tessera::add(view, values.to(device()).to(dtype())));
    } else {
      view.copy_(values);
    }
    return *this;
  }
  Tensor r;
  {
    NoGradGuard no_grad;
    r = index_put_impl(*this, indices, values, accumulate, op);
  }
  copy_(r);
  return *this;
}

Tensor& Tensor::index_put_(const std::vector<indexing::TensorIndex>& indices, double value) {
  const char* op = "index_put_";
  ops_detail::check_defined(*this, op, "input");
  check_in_place(*this, nullptr, op);
  if (all_basic(indices)) {
    index_impl(*this, indices, op).fill_(value);
    return *this;
  }
  Tensor r;
  {
    NoGradGuard no_grad;
    r = index_put_impl(*this, indices, value, op);
  }
  copy_(r);
  return *this;
}

Tensor Tensor::index_put(const std::vector<indexing::TensorIndex>& indices, const Tensor& values,
                         bool accumulate) const {
  return tessera::index_put(*this, indices, values, accumulate);
}

Tensor Tensor::masked_select(const Tensor& mask) const { return tessera::masked_select(*this, mask); }
Tensor Tensor::nonzero() const { return tessera::nonzero(*this); }
Tensor Tensor::argwhere() const { return tessera::argwhere(*this); }

}  // namespace tessera
