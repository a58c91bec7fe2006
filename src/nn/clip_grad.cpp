// Gradient clipping (see clip_grad.hpp).
#include "tessera/nn/clip_grad.hpp"

#include <cmath>
#include <limits>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"
#include "tessera/ops.hpp"

namespace tessera::nn::utils {
namespace {

/// ||g||_p over all elements (0 for an empty tensor), a 0-dim tensor of g's dtype.
Tensor vector_norm(const Tensor& g, double p) {
  if (g.numel() == 0) return zeros({}, TensorOptions(g.dtype(), g.device()));
  const Tensor a = abs(g);
  if (std::isinf(p)) return max(a);
  if (p == 1.0) return sum(a);
  if (p == 2.0) return sqrt(sum(square(a)));
  return pow(sum(pow(a, p)), 1.0 / p);
}

}  // namespace

Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  const char* op = "clip_grad_norm_";
  TESSERA_CHECK(norm_type > 0, ValueError, op, ": norm_type must be positive (or inf), got ", norm_type);
  TESSERA_CHECK(!std::isnan(max_norm), ValueError, op, ": max_norm is NaN");
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters) {
    TESSERA_CHECK(p.defined(), ValueError, op, ": parameter ", grads.size(), " is an undefined tensor");
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return zeros({});
  const Device device = grads[0].device();
  const DType dtype = grads[0].dtype();
  std::vector<Tensor> norms;
  for (const Tensor& g : grads) {
    TESSERA_CHECK(is_floating_point(g.dtype()), DTypeError, op, ": gradients must be floating point, got ",
                  dtype_name(g.dtype()), " (shape ", shape_str(g.shape()), ")");
    norms.push_back(vector_norm(g, norm_type).to(device, dtype));
  }
  const Tensor total = vector_norm(stack(norms), norm_type);
  if (error_if_nonfinite) {
    const double t = total.item<double>();
    TESSERA_CHECK(std::isfinite(t), ValueError, op, ": the total norm of order ", norm_type, " of the gradients of ",
                  grads.size(), " parameters is ", t,
                  ", so they cannot be clipped; pass error_if_nonfinite = false to scale them by it anyway");
  }
  // PyTorch multiplies by the clamped coefficient even when it is 1 (no host decision).
  const Tensor coef = clamp(div(scalar_tensor(max_norm, TensorOptions(dtype, device)), add(total, 1e-6)),
                            -std::numeric_limits<double>::infinity(), 1.0);
  for (Tensor g : grads) mul_(g, coef.to(g.device(), g.dtype()));
  return total;
}

}  // namespace tessera::nn::utils
