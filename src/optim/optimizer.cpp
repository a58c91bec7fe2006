// Optimizer base: parameter validation, zero_grad, learning rate.
#include "tessera/optim/optimizer.hpp"

#include <cmath>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"

namespace tessera::optim {

Optimizer::Optimizer(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
  TESSERA_CHECK(!params_.empty(), ValueError, "optimizer got an empty parameter list");
  TESSERA_CHECK(std::isfinite(lr) && lr >= 0.0, ValueError, "optimizer: invalid learning rate ", lr,
                " (expected a finite value >= 0)");
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    TESSERA_CHECK(p.defined(), ValueError, "optimizer: parameter ", i, " is undefined");
    TESSERA_CHECK(is_floating_point(p.dtype()), ValueError, "optimizer: parameter ", i, " has dtype ",
                  dtype_name(p.dtype()), "; only floating-point tensors can be optimized");
    TESSERA_CHECK(p.is_leaf(), ValueError, "optimizer: parameter ", i,
                  " is not a leaf tensor (it has autograd history); pass the leaf, e.g. t.detach()");
    for (std::size_t j = 0; j < i; ++j)
      TESSERA_CHECK(!params_[j].is_same(p), ValueError, "optimizer: parameter ", i,
                    " appears twice in the parameter list (also at ", j, ")");
  }
}

bool Optimizer::fusable(const Tensor& param, const Tensor& grad) {
  return param.is_contiguous() && is_floating_point(param.dtype()) && grad.dtype() == param.dtype() &&
         grad.device() == param.device() && grad.shape() == param.shape();
}

void Optimizer::zero_grad(bool set_to_none) {
  for (const Tensor& p : params_) {
    auto& meta = p.impl().autograd;
    if (!meta || !meta->grad.defined()) continue;
    if (set_to_none) {
      meta->grad = Tensor();
    } else {
      NoGradGuard no_grad;
      meta->grad.zero_();
    }
  }
}

void Optimizer::set_lr(double lr) {
  TESSERA_CHECK(std::isfinite(lr) && lr >= 0.0, ValueError, "optimizer: invalid learning rate ", lr,
                " (expected a finite value >= 0)");
  lr_ = lr;
}

}  // namespace tessera::optim
