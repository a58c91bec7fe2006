// Elementwise ops: validation, type promotion, broadcasting, dispatch and autograd.
#include "tessera/amp/autocast.hpp"
#include <cmath>

#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"

namespace tessera {

namespace {

using autograd::any_requires_grad;
using autograd::record;
using autograd::sum_to;
using Grads = std::vector<Tensor>;

void check_defined(const Tensor& t, const char* op, const char* what = "input") {
  TESSERA_CHECK(t.defined(), ValueError, op, ": ", what, " is an undefined tensor");
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  TESSERA_CHECK(a.device() == b.device(), DeviceError, op, ": tensors on different devices (", a.device().str(),
                " with shape ", shape_str(a.shape()), " and ", b.device().str(), " with shape ", shape_str(b.shape()),
                "); move one with .to(device)");
}

bool needs_float(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: case UnaryOp::Abs: case UnaryOp::Relu: case UnaryOp::Clamp: case UnaryOp::Sign:
    case UnaryOp::Square: case UnaryOp::ReluGrad:
      return false;
    default:
      return true;
  }
}

Tensor unary_op(UnaryOp op, const Tensor& x_in, double a = 0, double b = 0) {
  const char* name = unary_op_name(op);
  check_defined(x_in, name);
  Tensor x = x_in;
  if (needs_float(op) && !is_floating_point(x.dtype())) x = x.to(DType::Float32);
  TESSERA_CHECK(x.dtype() != DType::Bool || op == UnaryOp::Relu || op == UnaryOp::Abs, DTypeError, name,
                ": not defined for bool tensors (shape ", shape_str(x.shape()), ")");
  Tensor out = empty(x.shape(), TensorOptions(x.dtype(), x.device()));
  if (out.numel() > 0) backend_for(x.device()).unary(op, x, out, a, b);
  return out;
}

// Records the backward of y = op(x) as grad * factor(x, y). Double backward
// (create_graph: grad mode is on while it runs) passes the recorded input itself, and y
// recomputed by `forward` (y saved with its history would be a reference cycle), so factor's
// ops record; forward == nullptr marks an op whose factor is not differentiable that way.
using UnaryForward = Tensor (*)(const Tensor&);
template <typename Fn>
Tensor with_unary_grad(Tensor out, const Tensor& x, const char* name, Fn factor, UnaryForward forward = nullptr,
                       bool double_backward = true) {
  if (any_requires_grad({&x})) {
    Tensor xs = x.detach(), ys = out.detach();
    record(out, name, {x}, [x, xs, ys, factor, forward](const Tensor& g) {
      if (autograd::grad_mode_enabled()) return Grads{factor(g, x, forward ? forward(x) : ys)};
      return Grads{factor(g, xs, ys)};
    }, double_backward);
  }
  return out;
}

DType result_dtype(BinaryOp op, DType a, DType b) {
  DType t = promote_types(a, b);
  if (op == BinaryOp::Div && !is_floating_point(t)) t = DType::Float32;
  return t;
}

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  check_defined(a, name, "first input");
  check_defined(b, name, "second input");
  check_same_device(a, b, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  DType compute = result_dtype(op, a.dtype(), b.dtype());
  if (op == BinaryOp::Pow && !is_floating_point(compute)) compute = DType::Float32;
  if ((op == BinaryOp::LogicalAnd || op == BinaryOp::LogicalOr)) compute = DType::Bool;
  DType out_dtype = is_comparison(op) ? DType::Bool : compute;
  TESSERA_CHECK(compute != DType::Bool || is_comparison(op) || op == BinaryOp::Maximum || op == BinaryOp::Minimum ||
                    op == BinaryOp::Mul,
                DTypeError, name, ": not defined for bool tensors (shapes ", shape_str(a.shape()), " and ",
                shape_str(b.shape()), "); convert with .to(dtype)");
  Tensor ac = a.dtype() == compute ? a.detach() : a.detach().to(compute);
  Tensor bc = b.dtype() == compute ? b.detach() : b.detach().to(compute);
  Tensor out = empty(shape, TensorOptions(out_dtype, a.device()));
  if (out.numel() > 0) backend_for(a.device()).binary(op, ac.expand(shape), bc.expand(shape), out);
  return out;
}

// Scalar as a 0-dim tensor whose dtype does not raise t's (PyTorch's wrapped-number rule).
// A bool tensor with an integral scalar computes in int64; an integer tensor keeps its dtype
// for integral scalars that fit it; a fractional, non-finite or out-of-range scalar makes the
// op compute in float32 (as PyTorch does for a Python float), never an undefined cast.
Tensor wrap_scalar(const Tensor& t, double v) {
  check_defined(t, "scalar op");
  DType dt = t.dtype();
  const bool integral = std::isfinite(v) && v == std::floor(v);
  if (!is_floating_point(dt)) {
    if (!integral) {
      dt = DType::Float32;
    } else {
      if (dt == DType::Bool) dt = DType::Int64;
      if (!fits_integer_dtype(v, dt)) dt = DType::Float32;
    }
  }
  return scalar_tensor(v, TensorOptions(dt, t.device()));
}

Tensor bool_mask(const Tensor& m, DType dt) { return m.to(dt); }

}  // namespace

const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {"neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh",
                                "sigmoid", "relu", "gelu", "clamp", "relu_grad", "gelu_grad", "sign", "square",
                                "reciprocal", "pow"};
  return names[int(op)];
}
const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt",
                                "le", "gt", "ge", "logical_and", "logical_or"};
  return names[int(op)];
}

// ---- unary --------------------------------------------------------------------------------

Tensor neg(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Neg, x), x, "NegBackward", [](const Tensor& g, const Tensor&, const Tensor&) { return neg(g); });
}
Tensor abs(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Abs, x), x, "AbsBackward",
                         [](const Tensor& g, const Tensor& xs, const Tensor&) { return mul(g, unary_op(UnaryOp::Sign, xs)); });
}
Tensor exp(const Tensor& x_in) {
  const Tensor x = amp::autocast(x_in, "exp");
  return with_unary_grad(unary_op(UnaryOp::Exp, x), x, "ExpBackward", [](const Tensor& g, const Tensor&, const Tensor& y) { return mul(g, y); },
                         [](const Tensor& v) { return exp(v); });
}
Tensor log(const Tensor& x_in) {
  const Tensor x = amp::autocast(x_in, "log");
  return with_unary_grad(unary_op(UnaryOp::Log, x), x, "LogBackward", [](const Tensor& g, const Tensor& xs, const Tensor&) { return div(g, xs); });
}
Tensor log1p(const Tensor& x_in) {
  const Tensor x = amp::autocast(x_in, "log1p");
  return with_unary_grad(unary_op(UnaryOp::Log1p, x), x, "Log1pBackward",
                         [](const Tensor& g, const Tensor& xs, const Tensor&) { return div(g, add(xs, 1.0)); });
}
Tensor sqrt(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Sqrt, x), x, "SqrtBackward",
                         [](const Tensor& g, const Tensor&, const Tensor& y) { return div(g, mul(y, 2.0)); },
                         [](const Tensor& v) { return sqrt(v); });
}
Tensor rsqrt(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Rsqrt, x), x, "RsqrtBackward", [](const Tensor& g, const Tensor&, const Tensor& y) {
    return mul(g, mul(pow(y, 3.0), -0.5));
  }, [](const Tensor& v) { return rsqrt(v); });
}
Tensor sin(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Sin, x), x, "SinBackward", [](const Tensor& g, const Tensor& xs, const Tensor&) { return mul(g, cos(xs)); });
}
Tensor cos(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Cos, x), x, "CosBackward",
                         [](const Tensor& g, const Tensor& xs, const Tensor&) { return neg(mul(g, sin(xs))); });
}
Tensor tanh(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Tanh, x), x, "TanhBackward", [](const Tensor& g, const Tensor&, const Tensor& y) {
    return mul(g, (1.0 - square(y)));
  }, [](const Tensor& v) { return tanh(v); });
}
Tensor sigmoid(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Sigmoid, x), x, "SigmoidBackward", [](const Tensor& g, const Tensor&, const Tensor& y) {
    return mul(g, mul(y, (1.0 - y)));
  }, [](const Tensor& v) { return sigmoid(v); });
}
Tensor relu(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Relu, x), x, "ReluBackward", [](const Tensor& g, const Tensor& xs, const Tensor&) {
    return mul(g, unary_op(UnaryOp::ReluGrad, xs));
  });
}
Tensor gelu(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Gelu, x), x, "GeluBackward", [](const Tensor& g, const Tensor& xs, const Tensor&) {
    return mul(g, unary_op(UnaryOp::GeluGrad, xs));
  }, nullptr, /*double_backward=*/false);  // GeluGrad is a kernel without a derivative of its own
}
Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (approximate == "none") return gelu(x);
  TESSERA_CHECK(approximate == "tanh", ValueError, "gelu: approximate must be \"none\" or \"tanh\", got \"",
                approximate, "\"");
  check_defined(x, "gelu");
  const Tensor xf = is_floating_point(x.dtype()) ? x : x.to(DType::Float32);
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's formula; autograd through the ops.
  const double k = std::sqrt(2.0 / 3.14159265358979323846);
  const Tensor inner = mul(add(xf, mul(mul(mul(xf, xf), xf), 0.044715)), k);
  return mul(mul(xf, 0.5), add(tanh(inner), 1.0));
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  TESSERA_CHECK(!(lo > hi), ValueError, "clamp: min ", lo, " > max ", hi);
  return with_unary_grad(unary_op(UnaryOp::Clamp, x, lo, hi), x, "ClampBackward",
                         [lo, hi](const Tensor& g, const Tensor& xs, const Tensor&) {
                           return mul(g, bool_mask(logical_and(ge(xs, lo), le(xs, hi)), g.dtype()));
                         });
}
Tensor square(const Tensor& x) {
  return with_unary_grad(unary_op(UnaryOp::Square, x), x, "SquareBackward",
                         [](const Tensor& g, const Tensor& xs, const Tensor&) { return mul(g, mul(xs, 2.0)); });
}
Tensor pow(const Tensor& x_in, double e) {
  const Tensor x = amp::autocast(x_in, "pow");
  return with_unary_grad(unary_op(UnaryOp::PowScalar, x, e), x, "PowBackward", [e](const Tensor& g, const Tensor& xs, const Tensor&) {
    if (e == 0) return zeros_like(g);
    return mul(g, mul(pow(xs, e - 1), e));
  });
}

// ---- binary ---------------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  if (alpha != 1.0) return add(a, mul(b, alpha));
  Tensor out = binary_op(BinaryOp::Add, a, b);
  if (any_requires_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    record(out, "AddBackward", {a, b}, [sa, sb](const Tensor& g) { return Grads{sum_to(g, sa), sum_to(g, sb)}; }, true);
  }
  return out;
}
Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  if (alpha != 1.0) return sub(a, mul(b, alpha));
  Tensor out = binary_op(BinaryOp::Sub, a, b);
  if (any_requires_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    record(out, "SubBackward", {a, b}, [sa, sb](const Tensor& g) { return Grads{sum_to(g, sa), sum_to(neg(g), sb)}; },
           true);
  }
  return out;
}
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(BinaryOp::Mul, a, b);
  if (any_requires_grad({&a, &b})) {
    // The inputs themselves are saved (not detached copies), so that the backward's own ops
    // record under create_graph; with grad mode off they record nothing either way.
    Tensor ad = a, bd = b;
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record(out, "MulBackward", {a, b}, [ad, bd, ga, gb](const Tensor& g) {
      return Grads{ga ? sum_to(mul(g, bd), ad.shape()) : Tensor(), gb ? sum_to(mul(g, ad), bd.shape()) : Tensor()};
    }, true);
  }
  return out;
}
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(BinaryOp::Div, a, b);
  if (any_requires_grad({&a, &b})) {
    Tensor ad = a, bd = b;  // saved with history: see mul
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record(out, "DivBackward", {a, b}, [ad, bd, ga, gb](const Tensor& g) {
      return Grads{ga ? sum_to(div(g, bd), ad.shape()) : Tensor(),
                   gb ? sum_to(neg(div(mul(g, ad), square(bd))), bd.shape()) : Tensor()};
    }, true);
  }
  return out;
}
Tensor pow(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = amp::autocast(a_in, "pow");
  const Tensor b = amp::autocast(b_in, "pow");
  Tensor out = binary_op(BinaryOp::Pow, a, b);
  if (any_requires_grad({&a, &b})) {
    Tensor ad = a.detach(), bd = b.detach(), od = out.detach();
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record(out, "PowBackward", {a, b}, [ad, bd, od, ga, gb](const Tensor& g) {
      Tensor gA, gB;
      if (ga) gA = sum_to(mul(g, mul(bd, pow(ad, sub(bd, 1.0)))), ad.shape());
      if (gb) gB = sum_to(mul(g, mul(od, where(gt(ad, 0.0), log(ad), 0.0))), bd.shape());
      return Grads{gA, gB};
    });
  }
  return out;
}

namespace {
Tensor minmax(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(op, a, b);
  if (any_requires_grad({&a, &b})) {
    Tensor ad = a.detach(), bd = b.detach();  // only their comparison is used: a constant mask
    bool is_max = op == BinaryOp::Maximum;
    record(out, is_max ? "MaximumBackward" : "MinimumBackward", {a, b}, [ad, bd, is_max](const Tensor& g) {
      // The larger (smaller) input takes the gradient; ties split it evenly (PyTorch).
      Tensor wins = (is_max ? gt(ad, bd) : lt(ad, bd)).to(g.dtype());
      Tensor ties = eq(ad, bd).to(g.dtype());
      Tensor wa = add(wins, mul(ties, 0.5));
      Tensor wb = 1.0 - wa;
      return Grads{sum_to(mul(g, wa), ad.shape()), sum_to(mul(g, wb), bd.shape())};
    }, true);
  }
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return minmax(BinaryOp::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return minmax(BinaryOp::Minimum, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::LogicalAnd, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::LogicalOr, a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined(cond, "where", "condition");
  check_defined(a, "where", "first input");
  check_defined(b, "where", "second input");
  TESSERA_CHECK(cond.dtype() == DType::Bool, DTypeError, "where: condition must be bool, got ", dtype_name(cond.dtype()));
  check_same_device(cond, a, "where");
  check_same_device(a, b, "where");
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  DType dt = promote_types(a.dtype(), b.dtype());
  Tensor out = empty(shape, TensorOptions(dt, a.device()));
  if (out.numel() > 0)
    backend_for(a.device()).where(cond.expand(shape), a.detach().to(dt).expand(shape), b.detach().to(dt).expand(shape), out);
  if (any_requires_grad({&a, &b})) {
    Tensor cd = cond.detach();
    Shape sa = a.shape(), sb = b.shape();
    record(out, "WhereBackward", {a, b}, [cd, sa, sb](const Tensor& g) {
      Tensor z = zeros({}, TensorOptions(g.dtype(), g.device()));
      return Grads{sum_to(where(cd, g, z), sa), sum_to(where(cd, z, g), sb)};
    }, true);
  }
  return out;
}
Tensor where(const Tensor& cond, const Tensor& a, double b) { return where(cond, a, wrap_scalar(a, b)); }

Tensor add(const Tensor& a, double b) { return add(a, wrap_scalar(a, b)); }
Tensor sub(const Tensor& a, double b) { return sub(a, wrap_scalar(a, b)); }
Tensor mul(const Tensor& a, double b) { return mul(a, wrap_scalar(a, b)); }
Tensor div(const Tensor& a, double b) { return div(a, wrap_scalar(a, b)); }
Tensor maximum(const Tensor& a, double b) { return maximum(a, wrap_scalar(a, b)); }
Tensor minimum(const Tensor& a, double b) { return minimum(a, wrap_scalar(a, b)); }
Tensor eq(const Tensor& a, double b) { return eq(a, wrap_scalar(a, b)); }
Tensor ne(const Tensor& a, double b) { return ne(a, wrap_scalar(a, b)); }
Tensor lt(const Tensor& a, double b) { return lt(a, wrap_scalar(a, b)); }
Tensor le(const Tensor& a, double b) { return le(a, wrap_scalar(a, b)); }
Tensor gt(const Tensor& a, double b) { return gt(a, wrap_scalar(a, b)); }
Tensor ge(const Tensor& a, double b) { return ge(a, wrap_scalar(a, b)); }

// ---- in place -----------------------------------------------------------------------------

namespace {
Tensor& inplace(BinaryOp op, Tensor& a, const Tensor& b_in) {
  const char* name = binary_op_name(op);
  check_defined(a, name, "destination");
  check_defined(b_in, name, "second input");
  TESSERA_CHECK(!(autograd::grad_mode_enabled() && a.requires_grad()), AutogradError, name,
                "_: in-place op on a tensor of shape ", shape_str(a.shape()),
                " that requires grad; do it under NoGradGuard or use the out-of-place op");
  check_same_device(a, b_in, name);
  DType dt = result_dtype(op, a.dtype(), b_in.dtype());
  TESSERA_CHECK(dt == a.dtype(), DTypeError, name, "_: result dtype ", dtype_name(dt),
                " cannot be stored in the destination's dtype ", dtype_name(a.dtype()));
  Shape shape = broadcast_shapes(a.shape(), b_in.shape(), name);
  TESSERA_CHECK(shape == a.shape(), ShapeError, name, "_: the second input of shape ", shape_str(b_in.shape()),
                " broadcasts to ", shape_str(shape), ", not to the destination's shape ", shape_str(a.shape()));
  for (size_t d = 0; d < a.shape().size(); ++d)
    TESSERA_CHECK(a.strides()[d] != 0 || a.shape()[d] <= 1, ValueError, name, "_: destination of shape ",
                  shape_str(a.shape()), " has overlapping elements (stride 0 in dim ", d, ")");
  Tensor b = b_in.detach().to(dt);
  if (b_in.dtype() == dt && may_share_memory(a, b)) {
    // Partial overlap makes the result depend on iteration order: refuse it.
    const bool same_view =
        b.storage_offset() == a.storage_offset() && b.strides() == a.strides() && b.shape() == a.shape();
    TESSERA_CHECK(same_view, ValueError, name, "_: the second input overlaps the destination (shape ",
                  shape_str(a.shape()), ") partially in memory; pass a .clone() of it");
  }
  if (a.numel() > 0) backend_for(a.device()).binary(op, a.detach(), b.expand(shape), a.detach());
  return a;
}
}  // namespace

Tensor& add_(Tensor& a, const Tensor& b, double alpha) {
  if (alpha != 1.0) return inplace(BinaryOp::Add, a, mul(b.detach(), alpha));
  return inplace(BinaryOp::Add, a, b);
}
Tensor& sub_(Tensor& a, const Tensor& b) { return inplace(BinaryOp::Sub, a, b); }
Tensor& mul_(Tensor& a, const Tensor& b) { return inplace(BinaryOp::Mul, a, b); }
Tensor& div_(Tensor& a, const Tensor& b) { return inplace(BinaryOp::Div, a, b); }
Tensor& add_(Tensor& a, double b) { return inplace(BinaryOp::Add, a, wrap_scalar(a, b)); }
Tensor& mul_(Tensor& a, double b) { return inplace(BinaryOp::Mul, a, wrap_scalar(a, b)); }
Tensor& div_(Tensor& a, double b) { return inplace(BinaryOp::Div, a, wrap_scalar(a, b)); }
Tensor& clamp_(Tensor& a, double lo, double hi) {
  TESSERA_CHECK(!(autograd::grad_mode_enabled() && a.requires_grad()), AutogradError,
                "clamp_: in-place op on a tensor that requires grad");
  for (size_t d = 0; d < a.shape().size(); ++d)
    TESSERA_CHECK(a.strides()[d] != 0 || a.shape()[d] <= 1, ValueError, "clamp_: destination of shape ",
                  shape_str(a.shape()), " has overlapping elements (stride 0 in dim ", d, ")");
  NoGradGuard ng;
  a.copy_(clamp(a, lo, hi));
  return a;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return sub(wrap_scalar(b, a), b); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return div(wrap_scalar(b, a), b); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, double b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, double b) { return ne(a, b); }
Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  check_defined(a, "allclose", "first input");
  check_defined(b, "allclose", "second input");
  check_same_device(a, b, "allclose");
  NoGradGuard no_grad;
  const DType dt = promote_types(promote_types(a.dtype(), b.dtype()), DType::Float32);
  const Tensor x = a.detach().to(dt), y = b.detach().to(dt);
  Tensor close = le(abs(sub(x, y)), add(mul(abs(y), rtol), atol));
  close = logical_or(close, eq(x, y));  // equal infinities
  if (equal_nan) close = logical_or(close, logical_and(ne(x, x), ne(y, y)));
  return all(close).item<bool>();
}

bool equal(const Tensor& a, const Tensor& b) {
  check_defined(a, "equal", "first input");
  check_defined(b, "equal", "second input");
  check_same_device(a, b, "equal");
  if (a.shape() != b.shape()) return false;
  NoGradGuard no_grad;
  return all(eq(a.detach(), b.detach())).item<bool>();
}
Tensor& operator+=(Tensor& a, const Tensor& b) { return add_(a, b); }
Tensor& operator-=(Tensor& a, const Tensor& b) { return sub_(a, b); }
Tensor& operator*=(Tensor& a, const Tensor& b) { return mul_(a, b); }
Tensor& operator/=(Tensor& a, const Tensor& b) { return div_(a, b); }
Tensor& operator+=(Tensor& a, double b) { return add_(a, b); }
Tensor& operator*=(Tensor& a, double b) { return mul_(a, b); }

}  // namespace tessera
