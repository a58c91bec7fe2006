// Neural-network functions of ops.hpp: conv2d, pooling, linear, dropout, nll_loss and
// cross_entropy. Each validates its arguments (throwing a tessera::Error subclass that
// names the op and the offending shapes, dtypes or devices), allocates its output,
// dispatches to the backend of the input's device and records its backward.
#include "tessera/amp/autocast.hpp"
#include <cmath>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ops_checks.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"

namespace tessera {
namespace {

using namespace ops_detail;

using IntPair = std::pair<int64_t, int64_t>;

std::string pair_str(IntPair p) { return detail::str_cat("(", p.first, ", ", p.second, ")"); }

// ---- pooling geometry ------------------------------------------------------------------

/// PyTorch's pooling_output_shape: floor (or ceil) of the window count, where with
/// ceil_mode the last window must start inside the input or its left padding.
int64_t pool_output_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  // Division rounding toward negative infinity.
  int64_t q = num / s;
  if ((num % s != 0) && ((num < 0) != (s < 0))) --q;
  int64_t out = q + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

/// Validates pooling arguments for x [N, C, H, W] and fills params and the output shape.
Pool2dParams pool_params(const char* op, const Tensor& x, IntPair kernel, IntPair stride, IntPair padding,
                         IntPair dilation, bool ceil_mode, bool count_include_pad, Shape& out_shape) {
  check_float(x, op, "input");
  TESSERA_CHECK(kernel.first > 0 && kernel.second > 0, ValueError, op, ": kernel_size must be positive, got ",
                pair_str(kernel));
  if (stride.first == 0 && stride.second == 0) stride = kernel;
  TESSERA_CHECK(stride.first > 0 && stride.second > 0, ValueError, op, ": stride must be positive, got ",
                pair_str(stride));
  TESSERA_CHECK(dilation.first > 0 && dilation.second > 0, ValueError, op,
                ": dilation must be positive, got ", pair_str(dilation));
  TESSERA_CHECK(padding.first >= 0 && padding.second >= 0, ValueError, op,
                ": padding must be non-negative, got ", pair_str(padding));
  TESSERA_CHECK(padding.first <= kernel.first / 2 && padding.second <= kernel.second / 2, ValueError, op,
                ": padding ", pair_str(padding), " must be at most half of kernel_size ", pair_str(kernel));
  const int64_t H = x.size(2), W = x.size(3);
  const int64_t OH = pool_output_size(H, kernel.first, stride.first, padding.first, dilation.first, ceil_mode);
  const int64_t OW = pool_output_size(W, kernel.second, stride.second, padding.second, dilation.second, ceil_mode);
  TESSERA_CHECK(OH > 0 && OW > 0, ShapeError, op, ": input ", shape_str(x.shape()), " is too small for kernel ",
                pair_str(kernel), " with stride ", pair_str(stride), ", padding ", pair_str(padding),
                ", dilation ", pair_str(dilation), ": output would be ", OH, "x", OW);
  Pool2dParams p;
  p.kernel[0] = kernel.first; p.kernel[1] = kernel.second;
  p.stride[0] = stride.first; p.stride[1] = stride.second;
  p.padding[0] = padding.first; p.padding[1] = padding.second;
  p.dilation[0] = dilation.first; p.dilation[1] = dilation.second;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  out_shape = Shape{x.size(0), x.size(1), OH, OW};
  return p;
}

void check_pool_rank(const Tensor& x, const char* op) {
  check_defined(x, op, "input");
  TESSERA_CHECK(x.dim() == 3 || x.dim() == 4, ShapeError, op,
                ": expected a 3-D [C, H, W] or 4-D [N, C, H, W] input, got shape ", shape_str(x.shape()));
}

/// [out, in] matrix whose row i averages inputs [floor(i*in/out), ceil((i+1)*in/out)),
/// PyTorch's adaptive pooling window rule.
Tensor averaging_matrix(int64_t in, int64_t out, DType dtype, Device device) {
  std::vector<double> m(std::size_t(out * in), 0.0);
  for (int64_t i = 0; i < out; ++i) {
    const int64_t s = (i * in) / out, e = ((i + 1) * in + out - 1) / out;
    for (int64_t j = s; j < e; ++j) m[std::size_t(i * in + j)] = 1.0 / double(e - s);
  }
  return from_vector<double>(m, Shape{out, in}, TensorOptions(DType::Float64)).to(device, dtype);
}

// ---- nll_loss -----------------------------------------------------------------------------

/// nll_loss's arguments as [N', C] log-probabilities and [N'] targets (class dim last, the
/// others flattened), with the shape of the unreduced loss.
struct NllArgs {
  Tensor logp, target;  ///< [N', C], [N'] int64
  Shape loss_shape;     ///< target's shape
  int64_t valid = -1;   ///< targets that are not ignore_index, when the targets are on the CPU
};

NllArgs nll_args(const char* op, const Tensor& input, const Tensor& target, int64_t ignore_index) {
  check_defined(input, op, "input");
  check_defined(target, op, "target");
  TESSERA_CHECK(input.dim() >= 1, ShapeError, op, ": expected input [N, C], [N, C, d1, ...] or [C], got shape ",
                shape_str(input.shape()));
  check_float(input, op, "input");
  TESSERA_CHECK(target.dtype() == DType::Int64, DTypeError, op,
                ": target must hold int64 class indices, got dtype ", dtype_name(target.dtype()));
  // [C] takes a 0-dim target; [N, C, d1, ...] takes [N, d1, ...].
  Shape want;
  if (input.dim() >= 2) {
    want.push_back(input.size(0));
    for (int64_t d = 2; d < input.dim(); ++d) want.push_back(input.size(d));
  }
  TESSERA_CHECK(target.shape() == want, ShapeError, op, ": target shape ", shape_str(target.shape()),
                " does not match input ", shape_str(input.shape()), " (expected ", shape_str(want),
                "; input [N, C] takes target [N], [N, C, d1, ...] takes [N, d1, ...], [C] takes [])");
  check_same_device(input, target, op, "target");
  NllArgs a;
  a.loss_shape = want;
  const int64_t C = input.dim() == 1 ? input.size(0) : input.size(1);
  if (input.dim() <= 2) {
    a.logp = input.dim() == 1 ? input.unsqueeze(0) : input;
  } else {
    std::vector<int64_t> order{0};
    for (int64_t d = 2; d < input.dim(); ++d) order.push_back(d);
    order.push_back(1);
    a.logp = input.permute(order).reshape({-1, C});
  }
  a.target = target.reshape({-1});
  // Targets on the CPU are checked here. A CUDA target is checked by the loss kernel, which
  // records the first bad index for the host to throw at its next synchronisation (item(),
  // .to(cpu), cuda::synchronize()), so a training step never waits for the device.
  if (target.is_cuda()) return a;
  const Tensor tc = a.target.detach().contiguous();
  const int64_t* t = tc.data_ptr<int64_t>();
  a.valid = 0;
  for (int64_t i = 0; i < tc.numel(); ++i) {
    if (t[i] == ignore_index) continue;
    ++a.valid;
    TESSERA_CHECK(t[i] >= 0 && t[i] < C, IndexError, op, ": target ", t[i], " at index ", i,
                  " is out of bounds for C = ", C, " classes (input ", shape_str(input.shape()),
                  "); targets must be in [0, ", C, ") or equal ignore_index (", ignore_index, ")");
  }
  return a;
}

/// sum(loss) / the number of targets that are not ignored (counted on the device for CUDA
/// targets; plain mean() when none is ignored). NaN when every target is ignored.
Tensor mean_over_valid(const Tensor& loss, const NllArgs& a, int64_t ignore_index) {
  if (a.valid == a.target.numel()) return mean(loss);
  if (a.valid >= 0) return div(sum(loss), double(a.valid));
  Tensor count;
  {
    NoGradGuard no_grad;
    count = sum(ne(a.target.detach(), double(ignore_index)));
  }
  return div(sum(loss), count);
}

Tensor reduce_loss(const Tensor& loss, const NllArgs& a, Reduction reduction, int64_t ignore_index) {
  switch (reduction) {
    case Reduction::None: return loss.reshape(a.loss_shape);
    case Reduction::Sum: return sum(loss);
    case Reduction::Mean: return mean_over_valid(loss, a, ignore_index);
    case Reduction::BatchMean: break;
  }
  throw ValueError("nll_loss / cross_entropy: reduction must be None, Mean or Sum (BatchMean is kl_div's)");
}

/// Per-target negative log-likelihood [N'] (0 for ignored targets) of validated arguments.
Tensor nll_per_target(const NllArgs& a, int64_t ignore_index) {
  const Tensor lc = plain(a.logp), tc = plain(a.target);
  Tensor out = empty(Shape{lc.size(0)}, TensorOptions(lc.dtype(), lc.device()));
  backend_for(lc.device()).nll_loss_forward(lc, tc, out, ignore_index);
  if (recording({&a.logp})) {
    const Shape shape = lc.shape();
    autograd::record(out, "NllLossBackward", {a.logp}, [tc, shape, ignore_index](const Tensor& g) {
      Tensor grad = empty(shape, TensorOptions(g.dtype(), g.device()));
      backend_for(g.device()).nll_loss_backward(plain(g), tc, grad, ignore_index);
      return std::vector<Tensor>{grad};
    });
  }
  return out;
}

}  // namespace

// ---- conv2d -----------------------------------------------------------------------------

Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, IntPair stride, IntPair padding,
              IntPair dilation, int64_t groups) {
  const Tensor x = amp::autocast(x_in, "conv2d"), weight = amp::autocast(weight_in, "conv2d"),
               bias = amp::autocast(bias_in, "conv2d");
  const char* op = "conv2d";
  check_defined(x, op, "input");
  check_defined(weight, op, "weight");
  TESSERA_CHECK(x.dim() == 4, ShapeError, op, ": expected a 4-D input [N, C_in, H, W], got shape ",
                shape_str(x.shape()));
  TESSERA_CHECK(weight.dim() == 4, ShapeError, op,
                ": expected a 4-D weight [C_out, C_in/groups, kH, kW], got shape ", shape_str(weight.shape()));
  check_float(x, op, "input");
  check_same_dtype(x, weight, op, "weight");
  check_same_device(x, weight, op, "weight");
  if (bias.defined()) {
    check_same_dtype(x, bias, op, "bias");
    check_same_device(x, bias, op, "bias");
  }
  TESSERA_CHECK(stride.first > 0 && stride.second > 0, ValueError, op, ": stride must be positive, got ",
                pair_str(stride));
  TESSERA_CHECK(dilation.first > 0 && dilation.second > 0, ValueError, op, ": dilation must be positive, got ",
                pair_str(dilation));
  TESSERA_CHECK(padding.first >= 0 && padding.second >= 0, ValueError, op,
                ": padding must be non-negative, got ", pair_str(padding));
  TESSERA_CHECK(groups > 0, ValueError, op, ": groups must be positive, got ", groups);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Cout = weight.size(0), kH = weight.size(2), kW = weight.size(3);
  TESSERA_CHECK(C % groups == 0 && Cout % groups == 0, ValueError, op, ": groups=", groups,
                " must divide both C_in=", C, " and C_out=", Cout, " (input ", shape_str(x.shape()), ", weight ",
                shape_str(weight.shape()), ")");
  TESSERA_CHECK(weight.size(1) * groups == C, ShapeError, op, ": input ", shape_str(x.shape()), " has C_in=", C,
                " channels but weight ", shape_str(weight.shape()), " with groups=", groups, " expects ",
                weight.size(1) * groups, " (weight.size(1) * groups)");
  TESSERA_CHECK(kH > 0 && kW > 0, ShapeError, op, ": weight ", shape_str(weight.shape()),
                " has an empty kernel");
  if (bias.defined()) {
    TESSERA_CHECK(bias.dim() == 1 && bias.size(0) == Cout, ShapeError, op, ": bias must have shape [", Cout,
                  "] (C_out of weight ", shape_str(weight.shape()), "), got ", shape_str(bias.shape()));
  }
  const int64_t ekH = dilation.first * (kH - 1) + 1, ekW = dilation.second * (kW - 1) + 1;
  const int64_t pH = H + 2 * padding.first, pW = W + 2 * padding.second;
  TESSERA_CHECK(ekH <= pH && ekW <= pW, ShapeError, op, ": kernel ", kH, "x", kW, " (", ekH, "x", ekW,
                " with dilation ", pair_str(dilation), ") is larger than the padded input ", pH, "x", pW,
                " (input ", shape_str(x.shape()), ", weight ", shape_str(weight.shape()), ", padding ",
                pair_str(padding), ")");
  const int64_t OH = (pH - ekH) / stride.first + 1, OW = (pW - ekW) / stride.second + 1;

  Conv2dParams p;
  p.stride[0] = stride.first; p.stride[1] = stride.second;
  p.padding[0] = padding.first; p.padding[1] = padding.second;
  p.dilation[0] = dilation.first; p.dilation[1] = dilation.second;
  p.groups = groups;

  const Tensor xc = plain(x), wc = plain(weight), bc = plain(bias);
  Tensor out = empty(Shape{N, Cout, OH, OW}, TensorOptions(x.dtype(), x.device()));
  backend_for(x.device()).conv2d_forward(xc, wc, bc, p, out);

  if (recording({&x, &weight, &bias})) {
    const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
    const bool has_bias = bias.defined();
    std::vector<Tensor> inputs{x, weight};
    if (has_bias) inputs.push_back(bias);
    autograd::record(out, "Conv2dBackward", inputs, [xc, wc, p, gx, gw, gb, has_bias](const Tensor& g) {
      const TensorOptions opts(xc.dtype(), xc.device());
      Tensor dx = gx ? empty(xc.shape(), opts) : Tensor();
      Tensor dw = gw ? empty(wc.shape(), opts) : Tensor();
      Tensor db = gb ? empty(Shape{wc.size(0)}, opts) : Tensor();
      backend_for(xc.device()).conv2d_backward(xc, wc, plain(g), p, dx, dw, db);
      std::vector<Tensor> grads{dx, dw};
      if (has_bias) grads.push_back(db);
      return grads;
    });
  }
  return out;
}

Tensor conv_transpose2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, IntPair stride,
                        IntPair padding, IntPair output_padding, int64_t groups, IntPair dilation) {
  const Tensor x = amp::autocast(x_in, "conv2d"), weight = amp::autocast(weight_in, "conv2d"),
               bias = amp::autocast(bias_in, "conv2d");
  const char* op = "conv_transpose2d";
  check_defined(x, op, "input");
  check_defined(weight, op, "weight");
  TESSERA_CHECK(x.dim() == 4, ShapeError, op, ": expected a 4-D input [N, C_in, H, W], got shape ",
                shape_str(x.shape()));
  TESSERA_CHECK(weight.dim() == 4, ShapeError, op,
                ": expected a 4-D weight [C_in, C_out/groups, kH, kW], got shape ", shape_str(weight.shape()));
  check_float(x, op, "input");
  check_same_dtype(x, weight, op, "weight");
  check_same_device(x, weight, op, "weight");
  if (bias.defined()) {
    check_same_dtype(x, bias, op, "bias");
    check_same_device(x, bias, op, "bias");
  }
  TESSERA_CHECK(stride.first > 0 && stride.second > 0 && dilation.first > 0 && dilation.second > 0 && groups > 0,
                ValueError, op, ": stride ", pair_str(stride), ", dilation ", pair_str(dilation), " and groups ",
                groups, " must be positive");
  TESSERA_CHECK(padding.first >= 0 && padding.second >= 0, ValueError, op, ": padding must be non-negative, got ",
                pair_str(padding));
  TESSERA_CHECK(output_padding.first >= 0 && output_padding.second >= 0 &&
                    (output_padding.first < stride.first || output_padding.first < dilation.first) &&
                    (output_padding.second < stride.second || output_padding.second < dilation.second),
                ValueError, op, ": output_padding ", pair_str(output_padding),
                " must be non-negative and smaller than either stride ", pair_str(stride), " or dilation ",
                pair_str(dilation));
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t kH = weight.size(2), kW = weight.size(3);
  TESSERA_CHECK(weight.size(0) == C, ShapeError, op, ": input ", shape_str(x.shape()), " has C_in=", C,
                " channels but weight ", shape_str(weight.shape()), " has size(0)=", weight.size(0),
                " (the weight is [C_in, C_out/groups, kH, kW])");
  TESSERA_CHECK(C % groups == 0, ValueError, op, ": groups=", groups, " must divide C_in=", C);
  TESSERA_CHECK(kH > 0 && kW > 0, ShapeError, op, ": weight ", shape_str(weight.shape()), " has an empty kernel");
  const int64_t Cout = weight.size(1) * groups;
  const int64_t OH = (H - 1) * stride.first - 2 * padding.first + dilation.first * (kH - 1) + output_padding.first + 1;
  const int64_t OW = (W - 1) * stride.second - 2 * padding.second + dilation.second * (kW - 1) + output_padding.second + 1;
  TESSERA_CHECK(OH > 0 && OW > 0, ShapeError, op, ": the output would be ", OH, "x", OW, " (input ",
                shape_str(x.shape()), ", weight ", shape_str(weight.shape()), ", stride ", pair_str(stride),
                ", padding ", pair_str(padding), ")");
  if (bias.defined())
    TESSERA_CHECK(bias.dim() == 1 && bias.size(0) == Cout, ShapeError, op, ": bias must have shape [", Cout,
                  "], got ", shape_str(bias.shape()));

  // The transposed conv of x is the input gradient of conv2d(out, weight) at grad_out = x:
  // conv2d's weight layout [C_out_conv, C_in_conv/groups, k] is exactly this weight's.
  Conv2dParams p;
  p.stride[0] = stride.first; p.stride[1] = stride.second;
  p.padding[0] = padding.first; p.padding[1] = padding.second;
  p.dilation[0] = dilation.first; p.dilation[1] = dilation.second;
  p.groups = groups;
  const Tensor xc = plain(x), wc = plain(weight);
  Tensor out = empty(Shape{N, Cout, OH, OW}, TensorOptions(x.dtype(), x.device()));
  // conv2d_backward reads its x argument only for the weight gradient: out stands in for it.
  backend_for(x.device()).conv2d_backward(out, wc, xc, p, out, Tensor(), Tensor());
  if (bias.defined()) {
    NoGradGuard no_grad;
    out.add_(plain(bias).view({1, Cout, 1, 1}));
  }
  if (recording({&x, &weight, &bias})) {
    const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
    const bool has_bias = bias.defined();
    std::vector<Tensor> inputs{x, weight};
    if (has_bias) inputs.push_back(bias);
    autograd::record(out, "ConvTranspose2dBackward", inputs, [xc, wc, p, gx, gw, gb, has_bias](const Tensor& g) {
      const Tensor gc = plain(g);
      const TensorOptions opts(xc.dtype(), xc.device());
      Tensor dx = gx ? empty(xc.shape(), opts) : Tensor();
      Tensor dw = gw ? empty(wc.shape(), opts) : Tensor();
      // d/dx: conv2d of the gradient; d/dw: conv2d's weight gradient with input g, output x.
      if (gx) backend_for(xc.device()).conv2d_forward(gc, wc, Tensor(), p, dx);
      if (gw) backend_for(xc.device()).conv2d_backward(gc, wc, xc, p, Tensor(), dw, Tensor());
      std::vector<Tensor> grads{dx, dw};
      if (has_bias) grads.push_back(gb ? sum(gc, {0, 2, 3}) : Tensor());
      return grads;
    });
  }
  return out;
}

// ---- pooling ----------------------------------------------------------------------------

Tensor max_pool2d(const Tensor& x, IntPair kernel_size, IntPair stride, IntPair padding, IntPair dilation,
                  bool ceil_mode) {
  const char* op = "max_pool2d";
  check_pool_rank(x, op);
  if (x.dim() == 3) {
    return max_pool2d(x.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode).squeeze(0);
  }
  Shape out_shape;
  const Pool2dParams p = pool_params(op, x, kernel_size, stride, padding, dilation, ceil_mode, true, out_shape);
  const Tensor xc = plain(x);
  Tensor out = empty(out_shape, TensorOptions(x.dtype(), x.device()));
  const Tensor saved = backend_for(x.device()).max_pool2d_forward(xc, p, out);
  if (recording({&x})) {
    const Tensor out_values = out.detach();  // no history: keeps the node from owning itself
    autograd::record(out, "MaxPool2dBackward", {x}, [xc, out_values, saved, p](const Tensor& g) {
      Tensor dx = empty(xc.shape(), TensorOptions(xc.dtype(), xc.device()));
      backend_for(xc.device()).max_pool2d_backward(xc, out_values, saved, plain(g), p, dx);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor avg_pool2d(const Tensor& x, IntPair kernel_size, IntPair stride, IntPair padding, bool ceil_mode,
                  bool count_include_pad) {
  const char* op = "avg_pool2d";
  check_pool_rank(x, op);
  if (x.dim() == 3) {
    return avg_pool2d(x.unsqueeze(0), kernel_size, stride, padding, ceil_mode, count_include_pad).squeeze(0);
  }
  Shape out_shape;
  const Pool2dParams p =
      pool_params(op, x, kernel_size, stride, padding, {1, 1}, ceil_mode, count_include_pad, out_shape);
  const Tensor xc = plain(x);
  Tensor out = empty(out_shape, TensorOptions(x.dtype(), x.device()));
  backend_for(x.device()).avg_pool2d_forward(xc, p, out);
  if (recording({&x})) {
    const Shape in_shape = x.shape();
    autograd::record(out, "AvgPool2dBackward", {x}, [in_shape, p](const Tensor& g) {
      Tensor dx = empty(in_shape, TensorOptions(g.dtype(), g.device()));
      backend_for(g.device()).avg_pool2d_backward(plain(g), p, dx);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor adaptive_avg_pool2d(const Tensor& x, IntPair output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_pool_rank(x, op);
  check_float(x, op, "input");
  TESSERA_CHECK(output_size.first > 0 && output_size.second > 0, ValueError, op,
                ": output_size must be positive, got ", pair_str(output_size));
  const int64_t H = x.size(-2), W = x.size(-1);
  TESSERA_CHECK(H > 0 && W > 0, ShapeError, op, ": input ", shape_str(x.shape()), " has an empty plane");
  const int64_t OH = output_size.first, OW = output_size.second;
  if (H % OH == 0 && W % OW == 0) {
    // Equal windows: the same as avg_pool2d with kernel = stride = input / output.
    return avg_pool2d(x, {H / OH, W / OW}, {H / OH, W / OW});
  }
  // General case: out = A_h @ x @ A_w^T with the averaging matrices of PyTorch's rule;
  // matmul gives the backward and any device.
  const Tensor ah = averaging_matrix(H, OH, x.dtype(), x.device());
  const Tensor awt = averaging_matrix(W, OW, x.dtype(), x.device()).t();
  return matmul(ah, matmul(x, awt));
}

// ---- linear, dropout --------------------------------------------------------------------

Tensor linear(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in) {
  const Tensor x = amp::autocast(x_in, "linear");
  const Tensor weight = amp::autocast(weight_in, "linear");
  const Tensor bias = amp::autocast(bias_in, "linear");
  const char* op = "linear";
  check_defined(x, op, "input");
  check_defined(weight, op, "weight");
  TESSERA_CHECK(x.dim() >= 1, ShapeError, op, ": expected input [..., in_features], got a 0-dim tensor");
  TESSERA_CHECK(weight.dim() == 2, ShapeError, op, ": expected weight [out_features, in_features], got shape ",
                shape_str(weight.shape()));
  check_float(x, op, "input");
  check_same_dtype(x, weight, op, "weight");
  check_same_device(x, weight, op, "weight");
  TESSERA_CHECK(x.size(-1) == weight.size(1), ShapeError, op, ": input ", shape_str(x.shape()), " has ",
                x.size(-1), " features in its last dim but weight ", shape_str(weight.shape()), " expects ",
                weight.size(1));
  if (bias.defined()) {
    check_same_dtype(x, bias, op, "bias");
    check_same_device(x, bias, op, "bias");
    TESSERA_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), ShapeError, op, ": bias must have shape [",
                  weight.size(0), "] (out_features of weight ", shape_str(weight.shape()), "), got ",
                  shape_str(bias.shape()));
  }
  Tensor y = matmul(x, weight.t());
  if (bias.defined()) y = add(y, bias);
  return y;
}

Tensor dropout(const Tensor& x, double p, bool training) {
  const char* op = "dropout";
  check_defined(x, op, "input");
  TESSERA_CHECK(p >= 0.0 && p <= 1.0, ValueError, op, ": probability p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  check_float(x, op, "input");
  if (p == 1.0) return mul(x, 0.0);
  Tensor mask;
  {
    NoGradGuard no_grad;
    const Tensor u = rand(x.shape(), TensorOptions(x.dtype(), x.device()));
    mask = mul(ge(u, p).to(x.dtype()), 1.0 / (1.0 - p));
  }
  return mul(x, mask);
}

// ---- losses -----------------------------------------------------------------------------

Tensor nll_loss(const Tensor& logp_in, const Tensor& target, Reduction reduction, int64_t ignore_index) {
  const Tensor logp = amp::autocast(logp_in, "nll_loss");
  const NllArgs a = nll_args("nll_loss", logp, target, ignore_index);
  return reduce_loss(nll_per_target(a, ignore_index), a, reduction, ignore_index);
}

Tensor cross_entropy(const Tensor& input_in, const Tensor& target, Reduction reduction, int64_t ignore_index,
                     double label_smoothing) {
  const Tensor input = amp::autocast(input_in, "cross_entropy");
  const char* op = "cross_entropy";
  TESSERA_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, ValueError, op,
                ": label_smoothing must be in [0, 1], got ", label_smoothing);
  NllArgs a = nll_args(op, input, target, ignore_index);
  a.logp = log_softmax(a.logp, 1);
  Tensor loss = reduce_loss(nll_per_target(a, ignore_index), a, reduction, ignore_index);
  if (label_smoothing == 0.0) return loss;
  // PyTorch's label smoothing for class indices: (1 - e) * nll + e / C * sum_c -logp_c, the
  // second term also 0 for ignored targets and reduced the same way.
  const int64_t C = a.logp.size(1);
  Tensor keep;
  {
    NoGradGuard no_grad;
    keep = ne(a.target.detach(), double(ignore_index));
  }
  const Tensor smooth = where(keep, neg(sum(a.logp, {1})), 0.0);
  return add(mul(loss, 1.0 - label_smoothing),
             mul(reduce_loss(smooth, a, reduction, ignore_index), label_smoothing / double(C)));
}

}  // namespace tessera
