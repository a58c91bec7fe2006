// Reductions and softmax: the reduced dims are moved last and the input is viewed as
// [M, R] rows, so every backend only implements row reductions.
#include "tessera/amp/autocast.hpp"
#include <algorithm>
#include <cmath>
#include <limits>

#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"

namespace tessera {

namespace {

using autograd::any_requires_grad;
using autograd::record;
using Grads = std::vector<Tensor>;

struct ReducePlan {
  Tensor rows;         // contiguous [M, R]
  Shape keep_shape;    // output shape with reduced dims as 1
  Shape out_shape;     // output shape honoring keepdim
  int64_t M = 1, R = 1;
};

ReducePlan plan_reduce(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim, const char* op) {
  TESSERA_CHECK(x.defined(), ValueError, op, ": input is an undefined tensor");
  const int64_t nd = x.dim();
  std::vector<bool> reduced(size_t(std::max<int64_t>(nd, 1)), dims_in.empty());
  for (int64_t d : dims_in) {
    int64_t w = wrap_dim(d, nd, op);
    TESSERA_CHECK(!reduced[size_t(w)] || dims_in.empty(), ValueError, op, ": dim ", w, " appears twice in ",
                  shape_str(dims_in));
    reduced[size_t(w)] = true;
  }
  ReducePlan p;
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < nd; ++d)
    if (!reduced[size_t(d)]) {
      perm.push_back(d);
      p.M *= x.shape()[size_t(d)];
      p.out_shape.push_back(x.shape()[size_t(d)]);
    }
  for (int64_t d = 0; d < nd; ++d)
    if (reduced[size_t(d)]) {
      perm.push_back(d);
      p.R *= x.shape()[size_t(d)];
    }
  for (int64_t d = 0; d < nd; ++d) p.keep_shape.push_back(reduced[size_t(d)] ? 1 : x.shape()[size_t(d)]);
  if (keepdim) p.out_shape = p.keep_shape;
  Tensor xd = x.detach();
  Tensor permuted = nd == 0 ? xd : xd.permute(perm);
  p.rows = permuted.contiguous().reshape({p.M, p.R});
  return p;
}

Tensor run_reduce(ReduceOp op, const ReducePlan& p, DType out_dtype, Device dev, Tensor* indices_out = nullptr,
                  double correction = 0) {
  Tensor out = empty({p.M}, TensorOptions(out_dtype, dev));
  Tensor idx;
  if (indices_out) idx = empty({p.M}, TensorOptions(DType::Int64, dev));
  if (p.M > 0) backend_for(dev).reduce_rows(op, p.rows, out, idx, correction);
  if (indices_out) *indices_out = idx.reshape(p.out_shape);
  return out.reshape(p.out_shape);
}

// Gradient g of a reduced output back to the input's shape.
Tensor expand_back(const Tensor& g, const Shape& keep_shape, const Shape& in_shape) {
  return g.reshape(keep_shape).expand(in_shape);
}

void require_float(const Tensor& x, const char* op) {
  TESSERA_CHECK(is_floating_point(x.dtype()), DTypeError, op, ": expects a float32 or float64 input, got ",
                dtype_name(x.dtype()), " with shape ", shape_str(x.shape()));
}

void require_nonempty(const ReducePlan& p, const Tensor& x, const char* op) {
  TESSERA_CHECK(p.R > 0 || p.M == 0, ShapeError, op, ": cannot reduce over a 0-size dim (input shape ",
                shape_str(x.shape()), "); the result is undefined");
}

}  // namespace

const char* reduce_op_name(ReduceOp op) {
  static const char* names[] = {"sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "all", "any"};
  return names[int(op)];
}

Tensor sum(const Tensor& x_in, const std::vector<int64_t>& dims, bool keepdim) {
  const Tensor x = amp::autocast(x_in, "sum");
  ReducePlan p = plan_reduce(x, dims, keepdim, "sum");
  DType dt = is_floating_point(x.dtype()) ? x.dtype() : DType::Int64;
  Tensor out = run_reduce(ReduceOp::Sum, p, dt, x.device());
  if (any_requires_grad({&x})) {
    Shape ks = p.keep_shape, xs = x.shape();
    record(out, "SumBackward", {x}, [ks, xs](const Tensor& g) { return Grads{expand_back(g, ks, xs)}; }, true);
  }
  return out;
}

Tensor mean(const Tensor& x_in, const std::vector<int64_t>& dims, bool keepdim) {
  const Tensor x = amp::autocast(x_in, "mean");
  require_float(x, "mean");
  ReducePlan p = plan_reduce(x, dims, keepdim, "mean");
  Tensor out = run_reduce(ReduceOp::Mean, p, x.dtype(), x.device());
  if (any_requires_grad({&x})) {
    Shape ks = p.keep_shape, xs = x.shape();
    double r = double(p.R);
    record(out, "MeanBackward", {x}, [ks, xs, r](const Tensor& g) { return Grads{expand_back(div(g, r), ks, xs)}; },
           true);
  }
  return out;
}

Tensor prod(const Tensor& x_in, const std::vector<int64_t>& dims, bool keepdim) {
  const Tensor x = amp::autocast(x_in, "prod");
  ReducePlan p = plan_reduce(x, dims, keepdim, "prod");
  DType dt = is_floating_point(x.dtype()) ? x.dtype() : DType::Int64;
  Tensor out = run_reduce(ReduceOp::Prod, p, dt, x.device());
  if (any_requires_grad({&x})) {
    Shape ks = p.keep_shape, xs = x.shape();
    Tensor xd = x.detach(), od = out.detach();
    std::vector<int64_t> dd = dims;
    record(out, "ProdBackward", {x}, [ks, xs, xd, od, dd](const Tensor& g) {
      // d prod / d x_i = prod of the others: computed as a product with x_i set to 1 when
      // x_i is 0 (so a single zero gets the right gradient), and prod / x_i otherwise.
      Tensor zero = eq(xd, 0.0);
      Tensor others = prod(where(zero, ones_like(xd), xd), dd, true);
      Tensor zeros_count = sum(zero.to(DType::Int64), dd, true);
      Tensor other_prod = where(zero, where(eq(zeros_count, 1.0), others.expand(xs), zeros_like(xd)),
                                div(expand_back(od, ks, xs), where(zero, ones_like(xd), xd)));
      return Grads{mul(expand_back(g, ks, xs), other_prod)};
    });
  }
  return out;
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, double correction, bool keepdim) {
  require_float(x, "var");
  ReducePlan p = plan_reduce(x, dims, keepdim, "var");
  Tensor out = run_reduce(ReduceOp::Var, p, x.dtype(), x.device(), nullptr, correction);
  if (any_requires_grad({&x})) {
    Shape ks = p.keep_shape, xs = x.shape();
    Tensor xd = x.detach();
    std::vector<int64_t> dd = dims;
    double denom = std::max(0.0, double(p.R) - correction);
    record(out, "VarBackward", {x}, [ks, xs, xd, dd, denom](const Tensor& g) {
      Tensor centered = sub(xd, mean(xd, dd, true));
      return Grads{mul(expand_back(g, ks, xs), mul(centered, 2.0 / denom))};
    });
  }
  return out;
}

Tensor std(const Tensor& x, const std::vector<int64_t>& dims, double correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

namespace {

Tensor minmax_all(const Tensor& x, bool is_max) {
  const char* op = is_max ? "max" : "min";
  ReducePlan p = plan_reduce(x, {}, false, op);
  require_nonempty(p, x, op);
  TESSERA_CHECK(p.R > 0, ShapeError, op, ": empty input of shape ", shape_str(x.shape()), " has no ", op);
  Tensor out = run_reduce(is_max ? ReduceOp::Max : ReduceOp::Min, p, x.dtype(), x.device());
  if (any_requires_grad({&x})) {
    Tensor xd = x.detach(), od = out.detach();
    record(out, is_max ? "MaxBackward" : "MinBackward", {x}, [xd, od](const Tensor& g) {
      // Evenly split among the elements equal to the extremum (PyTorch's rule).
      Tensor mask = eq(xd, od).to(g.dtype());
      return Grads{mul(mask, div(g, sum(mask)))};
    });
  }
  return out;
}

// One-hot mask along dim at idx (keepdim form), in dtype dt.
Tensor one_hot_along(const Tensor& idx_keep, int64_t dim, const Shape& shape, DType dt) {
  Shape ar_shape(shape.size(), 1);
  ar_shape[size_t(dim)] = shape[size_t(dim)];
  Tensor ar = arange(0, double(shape[size_t(dim)]), 1, TensorOptions(DType::Int64, idx_keep.device())).reshape(ar_shape);
  return eq(ar, idx_keep).to(dt);
}

std::pair<Tensor, Tensor> minmax_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "max" : "min";
  TESSERA_CHECK(x.defined(), ValueError, op, ": input is an undefined tensor");
  int64_t d = wrap_dim(dim, x.dim(), op);
  ReducePlan p = plan_reduce(x, {d}, keepdim, op);
  require_nonempty(p, x, op);
  Tensor idx;
  Tensor out = run_reduce(is_max ? ReduceOp::Max : ReduceOp::Min, p, x.dtype(), x.device(), &idx);
  if (any_requires_grad({&x})) {
    Shape ks = p.keep_shape, xs = x.shape();
    Tensor id = idx.detach();
    record(out, is_max ? "MaxBackward" : "MinBackward", {x}, [ks, xs, id, d](const Tensor& g) {
      Tensor ik = id.reshape(ks);
      return Grads{mul(one_hot_along(ik, d, xs, g.dtype()), g.reshape(ks))};
    });
  }
  return {out, idx};
}

Tensor arg_reduce(const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "argmax" : "argmin";
  TESSERA_CHECK(x.defined(), ValueError, op, ": input is an undefined tensor");
  int64_t d = wrap_dim(dim, x.dim(), op);
  ReducePlan p = plan_reduce(x, {d}, keepdim, op);
  require_nonempty(p, x, op);
  Tensor out = empty({p.M}, TensorOptions(DType::Int64, x.device()));
  if (p.M > 0) backend_for(x.device()).reduce_rows(is_max ? ReduceOp::ArgMax : ReduceOp::ArgMin, p.rows, out, out, 0);
  return out.reshape(p.out_shape);
}

}  // namespace

Tensor max(const Tensor& x) { return minmax_all(x, true); }
Tensor min(const Tensor& x) { return minmax_all(x, false); }
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) { return minmax_dim(x, dim, keepdim, true); }
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) { return minmax_dim(x, dim, keepdim, false); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return arg_reduce(x, dim, keepdim, true); }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return arg_reduce(x, dim, keepdim, false); }
Tensor argmax(const Tensor& x) { return arg_reduce(x.reshape({-1}), 0, false, true); }
Tensor argmin(const Tensor& x) { return arg_reduce(x.reshape({-1}), 0, false, false); }

Tensor all(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  ReducePlan p = plan_reduce(x, dims, keepdim, "all");
  return run_reduce(ReduceOp::All, p, DType::Bool, x.device());
}
Tensor any(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  ReducePlan p = plan_reduce(x, dims, keepdim, "any");
  return run_reduce(ReduceOp::Any, p, DType::Bool, x.device());
}

// ---- softmax ---------------------------------------------------------------------------------

namespace {
Tensor softmax_impl(const Tensor& x_in, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  const Tensor x = amp::autocast(x_in, op);
  TESSERA_CHECK(x.defined(), ValueError, op, ": input is an undefined tensor");
  require_float(x, op);
  int64_t d = wrap_dim(dim, x.dim(), op);
  const int64_t last = std::max<int64_t>(x.dim() - 1, 0);
  Tensor xt = x.dim() == 0 ? x.detach().reshape({1}) : x.detach().transpose(d, last);
  Shape tshape = xt.shape();
  int64_t n = tshape.back();
  int64_t m = n == 0 ? 0 : xt.numel() / n;
  Tensor rows = xt.contiguous().reshape({m, n});
  Tensor out_rows = empty({m, n}, TensorOptions(x.dtype(), x.device()));
  if (m * n > 0) backend_for(x.device()).softmax_rows(rows, out_rows, log);
  Tensor out = x.dim() == 0 ? out_rows.reshape({}) : out_rows.reshape(tshape).transpose(d, last);
  if (x.dim() > 0 && d != last) out = out.contiguous();
  if (any_requires_grad({&x})) {
    Tensor yr = out_rows;
    Shape xs = x.shape();
    const Tensor xo = x;
    record(out, log ? "LogSoftmaxBackward" : "SoftmaxBackward", {x}, [yr, tshape, d, last, m, n, log, xs, xo](const Tensor& g) {
      if (autograd::grad_mode_enabled()) {
        // Double backward: the same formulas from differentiable ops, y recomputed from x.
        const int64_t dd = xs.empty() ? 0 : d;
        const Tensor gg = xs.empty() ? g.reshape({1}) : g, xx = xs.empty() ? xo.reshape({1}) : xo;
        Tensor r;
        if (log) r = sub(gg, mul(exp(log_softmax(xx, dd)), sum(gg, {dd}, true)));  // g - softmax * sum(g)
        else {
          const Tensor y = softmax(xx, dd);
          r = mul(y, sub(gg, sum(mul(gg, y), {dd}, true)));                         // y (g - sum(g y))
        }
        return Grads{xs.empty() ? r.reshape({}) : r};
      }
      Tensor gt = xs.empty() ? g.reshape({1}) : g.transpose(d, last);
      Tensor grows = gt.contiguous().reshape({m, n});
      Tensor gx = empty({m, n}, TensorOptions(g.dtype(), g.device()));
      if (m * n > 0) backend_for(g.device()).softmax_rows_backward(yr, grows, gx, log);
      Tensor r = xs.empty() ? gx.reshape({}) : gx.reshape(tshape).transpose(d, last);
      return Grads{r};
    }, true);
  }
  return out;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace tessera
