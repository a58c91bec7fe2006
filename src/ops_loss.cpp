// Regression and binary losses, leaky_relu, silu, dropout2d, unflatten (see ops.hpp). These are
// compositions of the elementwise ops, so autograd, both devices and every floating dtype come
// from those ops; binary_cross_entropy records its own backward (PyTorch's clamped form).
#include <cmath>
#include <string>

#include "ops_checks.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/autograd/function.hpp"
#include "tessera/error.hpp"
#include "tessera/ops.hpp"

namespace tessera {

using namespace ops_detail;

namespace {

void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  check_defined(input, op, "input");
  check_defined(target, op, "target");
  check_float(input, op, "input");
  check_float(target, op, "target");
  check_same_device(input, target, op, "target");
  TESSERA_CHECK(input.shape() == target.shape(), ShapeError, op, ": input ", shape_str(input.shape()), " and target ",
                shape_str(target.shape()),
                " must have the same shape (reshape one of them; PyTorch would broadcast them with a warning)");
}

/// The optional weight tensors of the binary losses: floating point, same device, broadcastable.
void check_weight(const Tensor& input, const Tensor& w, const char* op, const char* what) {
  if (!w.defined()) return;
  check_float(w, op, what);
  check_same_device(input, w, op, what);
  try {
    (void)broadcast_shapes(input.shape(), w.shape());
  } catch (const ShapeError&) {
    throw ShapeError(detail::str_cat(op, ": ", what, " ", shape_str(w.shape()), " does not broadcast to input ",
                                     shape_str(input.shape())));
  }
}

Tensor reduce(const Tensor& loss, Reduction reduction, const char* op) {
  switch (reduction) {
    case Reduction::None: return loss;
    case Reduction::Mean: return mean(loss);
    case Reduction::Sum: return sum(loss);
    case Reduction::BatchMean: break;
  }
  throw ValueError(detail::str_cat(op, ": reduction must be None, Mean or Sum (BatchMean is kl_div's)"));
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "mse_loss");
  return reduce(square(sub(input, target)), reduction, "mse_loss");
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "l1_loss");
  return reduce(abs(sub(input, target)), reduction, "l1_loss");
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  check_pair(input, target, "smooth_l1_loss");
  TESSERA_CHECK(beta >= 0, ValueError, "smooth_l1_loss: beta must be >= 0, got ", beta);
  const Tensor d = sub(input, target), ad = abs(d);
  if (beta == 0) return reduce(ad, reduction, "smooth_l1_loss");
  Tensor small;
  {
    NoGradGuard no_grad;
    small = lt(ad, beta);
  }
  return reduce(where(small, mul(square(d), 0.5 / beta), sub(ad, 0.5 * beta)), reduction, "smooth_l1_loss");
}

Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction, double delta) {
  check_pair(input, target, "huber_loss");
  TESSERA_CHECK(delta > 0, ValueError, "huber_loss: delta must be > 0, got ", delta);
  const Tensor d = sub(input, target), ad = abs(d);
  Tensor small;
  {
    NoGradGuard no_grad;
    small = le(ad, delta);
  }
  return reduce(where(small, mul(square(d), 0.5), mul(sub(ad, 0.5 * delta), delta)), reduction, "huber_loss");
}

namespace {
/// The unreduced BCE as a custom autograd function (the library's own user of
/// autograd::Function): forward -w (t log x + (1 - t) log(1 - x)) with each log clamped at
/// -100; backward PyTorch's binary_cross_entropy_backward for x, and the exact gradients for
/// the target and the weight.
struct BinaryCrossEntropy : autograd::Function<BinaryCrossEntropy> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x, const Tensor& t, const Tensor& w) {
    ctx->save_for_backward({x, t, w});
    Tensor loss = neg(add(mul(t, clamped_log(x)), mul(add(neg(t), 1.0), clamped_log1m(x))));
    return w.defined() ? mul(loss, w) : loss;
  }
  static autograd::tensor_list backward(autograd::AutogradContext* ctx, autograd::tensor_list grad_outputs) {
    const auto& saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &t = saved[1], &w = saved[2];
    const Tensor g = w.defined() ? mul(grad_outputs[0], w) : grad_outputs[0];
    autograd::tensor_list grads(3);
    // d/dx = w (x - t) / max(x (1 - x), 1e-12); d/dt = w (log(1 - x) - log x), logs clamped.
    if (ctx->needs_input_grad(0)) grads[0] = div(mul(g, sub(x, t)), clamp(mul(x, add(neg(x), 1.0)), 1e-12));
    if (ctx->needs_input_grad(1)) grads[1] = mul(g, sub(clamped_log1m(x), clamped_log(x)));
    if (ctx->needs_input_grad(2))  // d/dw = the unweighted loss, summed down to w's shape by apply
      grads[2] = mul(grad_outputs[0], neg(add(mul(t, clamped_log(x)), mul(add(neg(t), 1.0), clamped_log1m(x)))));
    return grads;
  }
  static Tensor clamped_log(const Tensor& x) { return clamp(log(x), -100.0); }
  static Tensor clamped_log1m(const Tensor& x) { return clamp(log1p(neg(x)), -100.0); }
};
}  // namespace

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, Reduction reduction) {
  const char* op = "binary_cross_entropy";
  check_pair(input, target, op);
  check_weight(input, weight, op, "weight");
  {
    NoGradGuard no_grad;
    const Tensor x = input.detach();
    // PyTorch: "all elements of input should be between 0 and 1" (NaN fails the test too).
    const bool bad = any(logical_or(lt(x, 0.0), logical_or(gt(x, 1.0), ne(x, x)))).item<bool>();
    TESSERA_CHECK(!bad, ValueError, op, ": every input value must be a probability in [0, 1] (input ",
                  shape_str(x.shape()), ", min ", min(x).item<double>(), ", max ", max(x).item<double>(),
                  "); for logits use binary_cross_entropy_with_logits");
  }
  return reduce(BinaryCrossEntropy::apply(input, target, weight), reduction, op);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        Reduction reduction, const Tensor& pos_weight) {
  const char* op = "binary_cross_entropy_with_logits";
  check_pair(input, target, op);
  check_weight(input, weight, op, "weight");
  check_weight(input, pos_weight, op, "pos_weight");
  // log(1 + exp(-|x|)) + max(-x, 0) = log(1 + exp(-x)), finite for every x.
  const Tensor log_sig_neg = add(log1p(exp(neg(abs(input)))), relu(neg(input)));
  Tensor loss;
  if (pos_weight.defined()) {
    const Tensor coef = add(mul(sub(pos_weight, 1.0), target), 1.0);  // 1 + (p - 1) t
    loss = add(mul(add(neg(target), 1.0), input), mul(coef, log_sig_neg));
  } else {
    loss = add(mul(add(neg(target), 1.0), input), log_sig_neg);
  }
  if (weight.defined()) loss = mul(loss, weight);
  return reduce(loss, reduction, op);
}

Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction, bool log_target) {
  const char* op = "kl_div";
  check_pair(input, target, op);
  Tensor loss;
  if (log_target) {
    loss = mul(exp(target), sub(target, input));
  } else {
    // xlogy(t, t) - t * input, with 0 log 0 = 0: log of a clamped target where t > 0.
    Tensor positive;
    {
      NoGradGuard no_grad;
      positive = gt(target, 0.0);
    }
    const Tensor safe_t = where(positive, target, 1.0);
    loss = sub(where(positive, mul(target, log(safe_t)), 0.0), mul(target, input));
  }
  if (reduction == Reduction::BatchMean) {
    const int64_t n = input.dim() == 0 ? 1 : input.size(0);
    return div(sum(loss), double(n));
  }
  return reduce(loss, reduction, op);
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  check_defined(x, "leaky_relu", "input");
  check_float(x, "leaky_relu", "input");
  Tensor positive;
  {
    NoGradGuard no_grad;
    positive = gt(x, 0.0);
  }
  return where(positive, x, mul(x, negative_slope));
}

Tensor silu(const Tensor& x) {
  check_defined(x, "silu", "input");
  check_float(x, "silu", "input");
  return mul(x, sigmoid(x));
}

Tensor dropout2d(const Tensor& x, double p, bool training) {
  const char* op = "dropout2d";
  check_defined(x, op, "input");
  TESSERA_CHECK(p >= 0.0 && p <= 1.0, ValueError, op, ": probability p must be in [0, 1], got ", p);
  TESSERA_CHECK(x.dim() == 3 || x.dim() == 4, ShapeError, op, ": input must be [N, C, H, W] or [C, H, W], got ",
                shape_str(x.shape()));
  if (!training || p == 0.0) return x;
  check_float(x, op, "input");
  Shape mask_shape = x.shape();
  for (std::size_t d = mask_shape.size() - 2; d < mask_shape.size(); ++d) mask_shape[d] = 1;
  Tensor mask;
  {
    NoGradGuard no_grad;
    if (p == 1.0) {
      mask = zeros(mask_shape, TensorOptions(x.dtype(), x.device()));
    } else {
      const Tensor u = rand(mask_shape, TensorOptions(x.dtype(), x.device()));
      mask = mul(ge(u, p).to(x.dtype()), 1.0 / (1.0 - p));
    }
  }
  return mul(x, mask);
}

Tensor unflatten(const Tensor& x, int64_t dim, const Shape& sizes) {
  check_defined(x, "unflatten", "input");
  const int64_t nd = x.dim();
  TESSERA_CHECK(nd > 0 && dim >= -nd && dim < nd, IndexError, "unflatten: dim ", dim, " out of range for input ",
                shape_str(x.shape()));
  const int64_t d = dim < 0 ? dim + nd : dim;
  TESSERA_CHECK(!sizes.empty(), ShapeError, "unflatten: sizes must not be empty");
  int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == -1) {
      TESSERA_CHECK(infer < 0, ShapeError, "unflatten: only one size may be -1, got ", shape_str(sizes));
      infer = int64_t(i);
    } else {
      TESSERA_CHECK(sizes[i] >= 0, ShapeError, "unflatten: sizes must be >= 0 or -1, got ", shape_str(sizes));
      known *= sizes[i];
    }
  }
  Shape resolved = sizes;
  const int64_t n = x.size(d);
  if (infer >= 0) {
    TESSERA_CHECK(known > 0 && n % known == 0, ShapeError, "unflatten: sizes ", shape_str(sizes),
                  " cannot split dim ", d, " of size ", n, " (input ", shape_str(x.shape()), ")");
    resolved[std::size_t(infer)] = n / known;
  } else {
    TESSERA_CHECK(known == n, ShapeError, "unflatten: sizes ", shape_str(sizes), " multiply to ", known,
                  ", not to size ", n, " of dim ", d, " (input ", shape_str(x.shape()), ")");
  }
  Shape out;
  for (int64_t i = 0; i < nd; ++i) {
    if (i == d)
      out.insert(out.end(), resolved.begin(), resolved.end());
    else
      out.push_back(x.size(i));
  }
  return x.reshape(out);
}

}  // namespace tessera
