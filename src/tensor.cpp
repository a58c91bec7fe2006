// Tensor metadata, views, copies and conversion.
#include "tessera/tensor.hpp"

#include <limits>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "tessera/autograd/autograd.hpp"
#include "tessera/backend.hpp"
#include "tessera/ops.hpp"

namespace tessera {

namespace {

Tensor make_view(const Tensor& base, Shape sizes, Strides strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// Records the backward of a view op when the base requires grad.
void record_view(Tensor& out, const Tensor& base, const char* name, autograd::FunctionNode::Fn fn) {
  if (autograd::any_requires_grad({&base})) autograd::record(out, name, {base}, std::move(fn));
}

// Strides for viewing a tensor of (sizes, strides) with new_shape without a copy, or
// empty when impossible (PyTorch's computeStride algorithm).
bool compute_view_strides(const Shape& old_sizes, const Strides& old_strides, const Shape& new_sizes,
                          Strides& out) {
  int64_t numel = shape_numel(old_sizes);
  out.assign(new_sizes.size(), 0);
  if (numel == 0 || old_sizes.empty()) {
    out = contiguous_strides(new_sizes);
    return true;
  }
  int64_t view_d = int64_t(new_sizes.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = int64_t(old_sizes.size()) - 1; tensor_d >= 0; tensor_d--) {
    tensor_numel *= old_sizes[tensor_d];
    if (tensor_d == 0 ||
        (old_sizes[tensor_d - 1] != 1 && old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_sizes[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Shape infer_shape(const char* op, const Shape& shape, int64_t numel, const Shape& from) {
  Shape out = shape;
  int64_t infer = -1;
  Shape known;  // the sizes other than -1
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      TESSERA_CHECK(infer < 0, ShapeError, op, ": only one dim can be -1 in ", shape_str(shape));
      infer = int64_t(i);
    } else {
      TESSERA_CHECK(out[i] >= 0, ShapeError, op, ": invalid size ", out[i], " in ", shape_str(shape));
      known.push_back(out[i]);
    }
  }
  const auto known_numel = try_shape_numel(known);
  TESSERA_CHECK(known_numel, ShapeError, op, ": shape ", shape_str(shape), " has more than 2^63 elements");
  const int64_t prod = *known_numel;
  if (infer >= 0) {
    TESSERA_CHECK(prod != 0 && numel % prod == 0, ShapeError, op, ": shape ", shape_str(shape),
                  " is invalid for input of shape ", shape_str(from), " (", numel, " elements)");
    out[size_t(infer)] = numel / prod;
  } else {
    TESSERA_CHECK(prod == numel, ShapeError, op, ": shape ", shape_str(shape), " is invalid for input of shape ",
                  shape_str(from), " (", numel, " elements)");
  }
  return out;
}

}  // namespace

namespace {
// Dim argument of an op that needs at least one dim (a 0-dim tensor has none to index).
int64_t wrap_real_dim(int64_t d, int64_t ndim, const char* op) {
  TESSERA_CHECK(ndim > 0, IndexError, op, ": dim ", d, " given for a 0-dim tensor, which has no dims");
  return wrap_dim(d, ndim, op);
}
}  // namespace

int64_t Tensor::size(int64_t d) const { return shape()[size_t(wrap_real_dim(d, dim(), "size"))]; }
int64_t Tensor::stride(int64_t d) const { return strides()[size_t(wrap_real_dim(d, dim(), "stride"))]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    int64_t s = shape()[size_t(d)];
    if (s == 0) return true;
    if (s != 1 && strides()[size_t(d)] != expected) return false;
    expected *= s;
  }
  return true;
}

Tensor Tensor::view(const Shape& new_shape) const {
  Shape sz = infer_shape("view", new_shape, numel(), shape());
  Strides st;
  TESSERA_CHECK(compute_view_strides(shape(), strides(), sz, st), ShapeError, "view: cannot view a tensor of shape ",
                shape_str(shape()), " with strides ", shape_str(strides()), " as ", shape_str(sz),
                " without a copy; use reshape()");
  Tensor out = make_view(*this, sz, st, storage_offset());
  Shape in_shape = shape();
  record_view(out, *this, "ViewBackward", [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
  return out;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  Shape sz = infer_shape("reshape", new_shape, numel(), shape());
  Strides st;
  if (compute_view_strides(shape(), strides(), sz, st)) return view(sz);
  return contiguous().view(sz);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  TESSERA_CHECK(int64_t(dims.size()) == dim(), ShapeError, "permute: got ", dims.size(), " dims for a tensor of shape ",
                shape_str(shape()));
  Shape sz(dims.size());
  Strides st(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    TESSERA_CHECK(inverse[size_t(d)] < 0, ShapeError, "permute: dim ", d, " repeated in ", shape_str(dims));
    inverse[size_t(d)] = int64_t(i);
    sz[i] = shape()[size_t(d)];
    st[i] = strides()[size_t(d)];
  }
  Tensor out = make_view(*this, sz, st, storage_offset());
  record_view(out, *this, "PermuteBackward", [inverse](const Tensor& g) { return std::vector<Tensor>{g.permute(inverse)}; });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  if (dim() == 0) return *this;
  d0 = wrap_dim(d0, dim(), "transpose");
  d1 = wrap_dim(d1, dim(), "transpose");
  std::vector<int64_t> p(static_cast<size_t>(dim()));
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[size_t(d0)], p[size_t(d1)]);
  return permute(p);
}

Tensor Tensor::t() const {
  TESSERA_CHECK(dim() <= 2, ShapeError, "t: expects a tensor with <= 2 dims, got shape ", shape_str(shape()));
  return dim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_real_dim(d, dim(), "slice");
  TESSERA_CHECK(step > 0, ValueError, "slice: step must be positive, got ", step);
  int64_t n = shape()[size_t(d)];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  int64_t len = end > start ? (end - start - 1) / step + 1 : 0;  // no overflow for any step
  Shape sz = shape();
  Strides st = strides();
  sz[size_t(d)] = len;
  int64_t off = storage_offset() + (len > 0 ? start * st[size_t(d)] : 0);
  if (len > 1) st[size_t(d)] *= step;  // (len-1)*step < n, so no overflow; a size-1 dim's stride is free
  Tensor out = make_view(*this, sz, st, off);
  Shape in_shape = shape();
  DType dt = dtype();
  Device dev = device();
  record_view(out, *this, "SliceBackward", [in_shape, dt, dev, d, start, end, step](const Tensor& g) {
    Tensor z = zeros(in_shape, TensorOptions(dt, dev));
    NoGradGuard ng;
    z.slice(d, start, end, step).copy_(g);
    return std::vector<Tensor>{z};
  });
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_real_dim(d, dim(), "narrow");
  int64_t n = shape()[size_t(d)];
  if (start < 0) start += n;
  TESSERA_CHECK(start >= 0 && length >= 0 && length <= n - start, IndexError, "narrow: start ", start, " length ",
                length, " out of range for dim ", d, " of size ", n, " (shape ", shape_str(shape()), ")");
  return slice(d, start, start + length, 1);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_real_dim(d, dim(), "select");
  int64_t n = shape()[size_t(d)];
  TESSERA_CHECK(index >= -n && index < n, IndexError, "select: index ", index, " out of range for dim ", d,
                " of size ", n, " (shape ", shape_str(shape()), ")");
  if (index < 0) index += n;
  Shape sz = shape();
  Strides st = strides();
  int64_t off = storage_offset() + index * st[size_t(d)];
  sz.erase(sz.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, sz, st, off);
  Shape in_shape = shape();
  DType dt = dtype();
  Device dev = device();
  record_view(out, *this, "SelectBackward", [in_shape, dt, dev, d, index](const Tensor& g) {
    Tensor z = zeros(in_shape, TensorOptions(dt, dev));
    NoGradGuard ng;
    z.select(d, index).copy_(g);
    return std::vector<Tensor>{z};
  });
  return out;
}

Tensor Tensor::squeeze() const {
  Shape sz;
  for (int64_t s : shape())
    if (s != 1) sz.push_back(s);
  return reshape(sz);
}

Tensor Tensor::squeeze(int64_t d) const {
  if (dim() == 0) return *this;
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[size_t(d)] != 1) return *this;
  Shape sz = shape();
  sz.erase(sz.begin() + d);
  return reshape(sz);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape sz = shape();
  Strides st = strides();
  int64_t s = d < dim() ? st[size_t(d)] * sz[size_t(d)] : 1;
  sz.insert(sz.begin() + d, 1);
  st.insert(st.begin() + d, s);
  Tensor out = make_view(*this, sz, st, storage_offset());
  record_view(out, *this, "UnsqueezeBackward", [d](const Tensor& g) { return std::vector<Tensor>{g.squeeze(d)}; });
  return out;
}

Tensor Tensor::expand(const Shape& new_shape) const {
  TESSERA_CHECK(new_shape.size() >= shape().size(), ShapeError, "expand: cannot expand shape ", shape_str(shape()),
                " to ", shape_str(new_shape), " (fewer dims)");
  size_t lead = new_shape.size() - shape().size();
  Shape sz(new_shape.size());
  Strides st(new_shape.size());
  for (size_t i = 0; i < new_shape.size(); ++i) {
    if (i < lead) {
      TESSERA_CHECK(new_shape[i] >= 0, ShapeError, "expand: size -1 not allowed for a new leading dim in ",
                    shape_str(new_shape));
      sz[i] = new_shape[i];
      st[i] = 0;
    } else {
      int64_t s = shape()[i - lead];
      TESSERA_CHECK(new_shape[i] >= -1, ShapeError, "expand: invalid size ", new_shape[i], " in ",
                    shape_str(new_shape), " (sizes are >= 0, or -1 to keep a dim)");
      int64_t want = new_shape[i] == -1 ? s : new_shape[i];
      TESSERA_CHECK(s == want || s == 1, ShapeError, "expand: cannot expand shape ", shape_str(shape()), " to ",
                    shape_str(new_shape), " (dim ", i, ": ", s, " is not 1)");
      sz[i] = want;
      st[i] = s == want ? strides()[i - lead] : 0;
    }
  }
  TESSERA_CHECK(try_shape_numel(sz), ShapeError, "expand: shape ", shape_str(new_shape), " of ", shape_str(shape()),
                " has more than 2^63 elements");
  if (sz == shape()) return *this;
  Tensor out = make_view(*this, sz, st, storage_offset());
  Shape in_shape = shape();
  record_view(out, *this, "ExpandBackward", [in_shape](const Tensor& g) { return std::vector<Tensor>{autograd::sum_to(g, in_shape)}; });
  return out;
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  TESSERA_CHECK(start_dim <= end_dim, ValueError, "flatten: start_dim ", start_dim, " > end_dim ", end_dim);
  Shape sz;
  int64_t p = 1;
  for (int64_t i = 0; i < dim(); ++i) {
    if (i < start_dim || i > end_dim) {
      sz.push_back(shape()[size_t(i)]);
    } else {
      p *= shape()[size_t(i)];
      if (i == end_dim) sz.push_back(p);
    }
  }
  return reshape(sz);
}

// ---- copies -------------------------------------------------------------------------

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), TensorOptions(dtype(), device()));
  {
    NoGradGuard ng;
    if (numel() > 0) backend_for(device()).copy(*this, out);
  }
  record_view(out, *this, "CloneBackward", [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor Tensor::to(DType dt) const { return to(device(), dt); }
Tensor Tensor::to(Device dev) const { return to(dev, dtype()); }

Tensor Tensor::to(Device dev, DType dt) const {
  if (dev == device() && dt == dtype()) return *this;
  Tensor out = empty(shape(), TensorOptions(dt, dev));
  {
    NoGradGuard ng;
    out.copy_(*this);
  }
  // A cast to an integer dtype ends the history (as PyTorch: integers carry no gradient).
  if (is_floating_point(dt) && autograd::any_requires_grad({this})) {
    DType src_dt = dtype();
    Device src_dev = device();
    autograd::record(out, "ToBackward", {*this}, [src_dt, src_dev](const Tensor& g) {
      return std::vector<Tensor>{g.to(src_dev, src_dt)};
    });
  }
  return out;
}

bool may_share_memory(const Tensor& a, const Tensor& b) {
  if (a.storage().get() != b.storage().get() || a.numel() == 0 || b.numel() == 0) return false;
  auto extent = [](const Tensor& t) {
    int64_t lo = t.storage_offset(), hi = t.storage_offset();
    for (int64_t d = 0; d < t.dim(); ++d) {
      int64_t span = (t.shape()[size_t(d)] - 1) * t.strides()[size_t(d)];
      if (span > 0) hi += span; else lo += span;
    }
    return std::make_pair(lo * int64_t(t.itemsize()), (hi + 1) * int64_t(t.itemsize()));
  };
  auto [alo, ahi] = extent(a);
  auto [blo, bhi] = extent(b);
  return alo < bhi && blo < ahi;
}

Tensor& Tensor::copy_(const Tensor& src_in) {
  TESSERA_CHECK(src_in.defined(), ValueError, "copy_: source tensor is undefined");
  if (autograd::grad_mode_enabled()) {
    TESSERA_CHECK(!requires_grad(), AutogradError, "copy_: destination of shape ", shape_str(shape()),
                  " requires grad; copy into it under NoGradGuard");
    TESSERA_CHECK(!src_in.requires_grad(), AutogradError, "copy_: source of shape ", shape_str(src_in.shape()),
                  " requires grad and copy_ does not record history; use clone() or detach() the source");
  }
  for (size_t d = 0; d < shape().size(); ++d) {
    TESSERA_CHECK(strides()[d] != 0 || shape()[d] <= 1, ValueError, "copy_: destination of shape ",
                  shape_str(shape()), " has overlapping elements (stride 0 in dim ", d,
                  ", e.g. from expand); copy into a contiguous tensor instead");
  }
  Tensor src = src_in.shape() == shape() ? src_in : src_in.expand(shape());
  if (numel() == 0) return *this;
  if (src.device() == device()) {
    if (may_share_memory(src, *this)) {
      if (src.storage_offset() == storage_offset() && src.strides() == strides() && src.dtype() == dtype())
        return *this;  // the same view: nothing to do
      src = src.clone();  // overlapping views: read from a copy so the result is as if copied at once
    }
    backend_for(device()).copy(src, *this);
    return *this;
  }
  // Across devices: cast and pack on the source device, move bytes, unpack on the destination.
  Tensor packed = src.to(dtype()).contiguous();
  Tensor staged = is_contiguous() ? *this : empty(shape(), TensorOptions(dtype(), device()));
  Backend& mover = backend_for(device().is_cpu() ? src.device() : device());
  mover.copy_bytes(staged.raw_data(), device(), packed.raw_data(), packed.device(), nbytes());
  if (!staged.is_same(*this)) backend_for(device()).copy(staged, *this);
  return *this;
}

Tensor& Tensor::fill_(double value) {
  TESSERA_CHECK(!(autograd::grad_mode_enabled() && requires_grad()), AutogradError,
                "fill_: tensor requires grad; fill it under NoGradGuard");
  TESSERA_CHECK(!is_integral(dtype()) || (std::isfinite(value) && fits_integer_dtype(std::trunc(value), dtype())),
                ValueError, "fill_: value ", value, " does not fit dtype ", dtype_name(dtype()));
  if (numel() > 0) backend_for(device()).fill(*this, value);
  return *this;
}

template <typename T>
T Tensor::item() const {
  TESSERA_CHECK(numel() == 1, ShapeError, "item: expects a tensor with one element, got shape ", shape_str(shape()));
  Tensor c = detach().to(Device::cpu(), dtype_of_v<T>).contiguous();
  return *static_cast<const T*>(c.raw_data());
}
#define TESSERA_ITEM(E, T, N, C, K) template T Tensor::item<T>() const;
TESSERA_FORALL_DTYPES(TESSERA_ITEM)
#undef TESSERA_ITEM

// ---- autograd accessors --------------------------------------------------------------

bool Tensor::requires_grad() const { return impl().autograd && impl().autograd->requires_grad; }

Tensor& Tensor::requires_grad_(bool r) {
  auto& meta = impl().autograd;
  TESSERA_CHECK(!(meta && meta->grad_fn), AutogradError,
                "requires_grad_: only leaf tensors can change requires_grad; use detach() first");
  TESSERA_CHECK(!r || is_floating_point(dtype()), AutogradError, "requires_grad_: only float tensors can require grad, got ",
                dtype_name(dtype()));
  if (!meta) meta = std::make_shared<autograd::AutogradMeta>();
  meta->requires_grad = r;
  return *this;
}

Tensor Tensor::grad() const { return impl().autograd ? impl().autograd->grad : Tensor(); }

void Tensor::set_grad(const Tensor& g) const {
  auto& meta = impl().autograd;
  if (!meta) meta = std::make_shared<autograd::AutogradMeta>();
  meta->grad = g;
}

bool Tensor::is_leaf() const { return !(impl().autograd && impl().autograd->grad_fn); }

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  return impl().autograd ? impl().autograd->grad_fn : nullptr;
}

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), storage_offset()); }

Tensor& Tensor::detach_() {
  impl().autograd.reset();
  return *this;
}

// ---- printing --------------------------------------------------------------------------

namespace {

struct Formatter {
  DType dtype;
  bool sci = false;
  bool integral_floats = false;

  void prepare(const std::vector<double>& vals) {
    if (!is_floating_point(dtype)) return;
    double mx = 0, mn = INFINITY;
    bool all_int = true;
    for (double v : vals) {
      if (!std::isfinite(v)) continue;
      double a = std::fabs(v);
      mx = std::max(mx, a);
      if (a > 0) mn = std::min(mn, a);
      if (v != std::floor(v)) all_int = false;
    }
    sci = mx >= 1e8 || (mn < 1e-4 && mn > 0);
    integral_floats = all_int && !sci;
  }
  std::string fmt(double v) const {
    char buf[64];
    if (dtype == DType::Bool) return v != 0 ? "True" : "False";
    if (!is_floating_point(dtype)) {
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
      return buf;
    }
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (sci) std::snprintf(buf, sizeof buf, "%.4e", v);
    else if (integral_floats) std::snprintf(buf, sizeof buf, "%.0f.", v);
    else std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
  }
};

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  Tensor c = to(Device::cpu(), DType::Float64).contiguous();
  if (dtype() == DType::Int64) c = to(Device::cpu(), DType::Int64).contiguous();  // exact beyond 2^53
  std::vector<double> vals(static_cast<size_t>(numel()));
  if (c.dtype() == DType::Int64) {
    const int64_t* p = static_cast<const int64_t*>(c.raw_data());
    for (size_t i = 0; i < vals.size(); ++i) vals[i] = double(p[i]);
  } else {
    const double* p = static_cast<const double*>(c.raw_data());
    std::copy(p, p + vals.size(), vals.begin());
  }
  const bool summarize = numel() > 1000;
  const int64_t edge = 3;
  Formatter f{dtype()};
  f.prepare(vals);
  size_t width = 0;
  for (double v : vals) width = std::max(width, f.fmt(v).size());
  Strides cs = contiguous_strides(shape());
  std::ostringstream os;
  os << "tensor(";
  const int indent = 7;
  std::function<void(int64_t, int64_t)> rec = [&](int64_t d, int64_t off) {
    if (d == dim()) {
      std::string s = f.fmt(vals[size_t(off)]);
      os << std::string(width - s.size(), ' ') << s;
      return;
    }
    os << "[";
    int64_t n = shape()[size_t(d)];
    for (int64_t i = 0; i < n; ++i) {
      if (summarize && n > 2 * edge && i == edge) {
        os << (d + 1 == dim() ? "..., " : "...,\n" + std::string(size_t(indent + d + 1), ' '));
        i = n - edge;
      }
      rec(d + 1, off + i * cs[size_t(d)]);
      if (i + 1 < n) {
        if (d + 1 == dim()) os << ", ";
        else os << "," << std::string(size_t(dim() - d - 1), '\n') << std::string(size_t(indent + d + 1), ' ');
      }
    }
    os << "]";
  };
  rec(0, 0);
  os << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad=True";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

// ---- methods that forward to ops.hpp ------------------------------------------------------

Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return tessera::sum(*this, dims, keepdim); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const { return tessera::mean(*this, dims, keepdim); }
Tensor Tensor::prod(const std::vector<int64_t>& dims, bool keepdim) const { return tessera::prod(*this, dims, keepdim); }
Tensor Tensor::var(const std::vector<int64_t>& dims, double c, bool keepdim) const {
  return tessera::var(*this, dims, c, keepdim);
}
Tensor Tensor::std(const std::vector<int64_t>& dims, double c, bool keepdim) const {
  return tessera::std(*this, dims, c, keepdim);
}
Tensor Tensor::all(const std::vector<int64_t>& dims, bool keepdim) const { return tessera::all(*this, dims, keepdim); }
Tensor Tensor::any(const std::vector<int64_t>& dims, bool keepdim) const { return tessera::any(*this, dims, keepdim); }
Tensor Tensor::max() const { return tessera::max(*this); }
Tensor Tensor::min() const { return tessera::min(*this); }
std::pair<Tensor, Tensor> Tensor::max(int64_t d, bool keepdim) const { return tessera::max(*this, d, keepdim); }
std::pair<Tensor, Tensor> Tensor::min(int64_t d, bool keepdim) const { return tessera::min(*this, d, keepdim); }
Tensor Tensor::argmax() const { return tessera::argmax(*this); }
Tensor Tensor::argmin() const { return tessera::argmin(*this); }
Tensor Tensor::argmax(int64_t d, bool keepdim) const { return tessera::argmax(*this, d, keepdim); }
Tensor Tensor::argmin(int64_t d, bool keepdim) const { return tessera::argmin(*this, d, keepdim); }
Tensor Tensor::matmul(const Tensor& o) const { return tessera::matmul(*this, o); }
Tensor Tensor::mm(const Tensor& o) const { return tessera::mm(*this, o); }
Tensor Tensor::bmm(const Tensor& o) const { return tessera::bmm(*this, o); }
#define TESSERA_UNARY_METHOD(name) \
  Tensor Tensor::name() const { return tessera::name(*this); }
TESSERA_UNARY_METHOD(exp)
TESSERA_UNARY_METHOD(log)
TESSERA_UNARY_METHOD(log1p)
TESSERA_UNARY_METHOD(relu)
TESSERA_UNARY_METHOD(sigmoid)
TESSERA_UNARY_METHOD(tanh)
TESSERA_UNARY_METHOD(abs)
TESSERA_UNARY_METHOD(sqrt)
TESSERA_UNARY_METHOD(rsqrt)
TESSERA_UNARY_METHOD(neg)
TESSERA_UNARY_METHOD(sin)
TESSERA_UNARY_METHOD(cos)
TESSERA_UNARY_METHOD(square)
#undef TESSERA_UNARY_METHOD
Tensor Tensor::clamp(double lo, double hi) const { return tessera::clamp(*this, lo, hi); }
Tensor Tensor::clamp_min(double lo) const { return tessera::clamp(*this, lo); }
Tensor Tensor::clamp_max(double hi) const { return tessera::clamp(*this, -std::numeric_limits<double>::infinity(), hi); }
Tensor Tensor::pow(double e) const { return tessera::pow(*this, e); }
Tensor Tensor::softmax(int64_t d) const { return tessera::softmax(*this, d); }
Tensor Tensor::log_softmax(int64_t d) const { return tessera::log_softmax(*this, d); }
Tensor Tensor::add(const Tensor& o, double alpha) const { return tessera::add(*this, o, alpha); }
Tensor Tensor::add(double o) const { return tessera::add(*this, o); }
Tensor Tensor::sub(const Tensor& o, double alpha) const { return tessera::sub(*this, o, alpha); }
Tensor Tensor::sub(double o) const { return tessera::sub(*this, o); }
#define TESSERA_BINARY_METHOD(name)                                                  \
  Tensor Tensor::name(const Tensor& o) const { return tessera::name(*this, o); }
#define TESSERA_BINARY_METHODS(name) \
  TESSERA_BINARY_METHOD(name)        \
  Tensor Tensor::name(double o) const { return tessera::name(*this, o); }
TESSERA_BINARY_METHODS(mul)
TESSERA_BINARY_METHODS(div)
TESSERA_BINARY_METHOD(maximum)
TESSERA_BINARY_METHOD(minimum)
TESSERA_BINARY_METHODS(eq)
TESSERA_BINARY_METHODS(ne)
TESSERA_BINARY_METHODS(lt)
TESSERA_BINARY_METHODS(le)
TESSERA_BINARY_METHODS(gt)
TESSERA_BINARY_METHODS(ge)
TESSERA_BINARY_METHOD(logical_and)
TESSERA_BINARY_METHOD(logical_or)
#undef TESSERA_BINARY_METHODS
#undef TESSERA_BINARY_METHOD
Tensor Tensor::where(const Tensor& c, const Tensor& o) const { return tessera::where(c, *this, o); }
Tensor Tensor::where(const Tensor& c, double o) const { return tessera::where(c, *this, o); }
Tensor Tensor::masked_fill(const Tensor& m, double v) const { return tessera::masked_fill(*this, m, v); }
Tensor Tensor::index_select(int64_t d, const Tensor& i) const { return tessera::index_select(*this, d, i); }
Tensor Tensor::gather(int64_t d, const Tensor& i) const { return tessera::gather(*this, d, i); }
Tensor Tensor::scatter_add(int64_t d, const Tensor& i, const Tensor& src) const {
  return tessera::scatter_add(*this, d, i, src);
}
Tensor Tensor::index_add(int64_t d, const Tensor& i, const Tensor& src, double alpha) const {
  return tessera::index_add(*this, d, i, src, alpha);
}
Tensor Tensor::tril(int64_t k) const { return tessera::tril(*this, k); }
Tensor Tensor::triu(int64_t k) const { return tessera::triu(*this, k); }
std::pair<Tensor, Tensor> Tensor::topk(int64_t k, int64_t d, bool largest, bool sorted) const {
  return tessera::topk(*this, k, d, largest, sorted);
}
Tensor Tensor::unflatten(int64_t d, const Shape& sizes) const { return tessera::unflatten(*this, d, sizes); }
Tensor& Tensor::add_(const Tensor& o, double alpha) { return tessera::add_(*this, o, alpha); }
Tensor& Tensor::add_(double v) { return tessera::add_(*this, v); }
Tensor& Tensor::sub_(const Tensor& o) { return tessera::sub_(*this, o); }
Tensor& Tensor::mul_(const Tensor& o) { return tessera::mul_(*this, o); }
Tensor& Tensor::mul_(double v) { return tessera::mul_(*this, v); }
Tensor& Tensor::div_(const Tensor& o) { return tessera::div_(*this, o); }
Tensor& Tensor::div_(double v) { return tessera::div_(*this, v); }

}  // namespace tessera
