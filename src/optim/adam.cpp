// torch.optim.Adam and AdamW (their documented algorithms, amsgrad included).
#include <cmath>

#include "tessera/autograd/autograd.hpp"
#include "tessera/backend.hpp"
#include "tessera/error.hpp"
#include "tessera/ops.hpp"
#include "tessera/optim/optimizer.hpp"

namespace tessera::optim {

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options) : Adam(std::move(params), options, false) {}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled)
    : Optimizer(std::move(params), options.lr_), options_(options), decoupled_(decoupled) {
  const char* name = decoupled ? "AdamW" : "Adam";
  TESSERA_CHECK(options.eps_ >= 0.0, ValueError, name, ": invalid eps ", options.eps_);
  TESSERA_CHECK(options.beta1_ >= 0.0 && options.beta1_ < 1.0 && options.beta2_ >= 0.0 && options.beta2_ < 1.0,
                ValueError, name, ": betas must be in [0, 1), got (", options.beta1_, ", ", options.beta2_, ")");
  TESSERA_CHECK(options.weight_decay_ >= 0.0, ValueError, name, ": invalid weight_decay ", options.weight_decay_);
  exp_avg_.resize(params_.size());
  exp_avg_sq_.resize(params_.size());
  max_exp_avg_sq_.resize(params_.size());
  steps_.assign(params_.size(), 0);
}

void Adam::step() {
  NoGradGuard no_grad;
  const double lr = lr_, b1 = options_.beta1_, b2 = options_.beta2_, eps = options_.eps_,
               wd = options_.weight_decay_;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Tensor grad = params_[i].grad();
    if (!grad.defined()) continue;
    Tensor w = params_[i].detach();
    Tensor& m = exp_avg_[i];
    Tensor& v = exp_avg_sq_[i];
    if (!m.defined() || m.device() != w.device() || m.dtype() != w.dtype()) {
      // First step for this parameter (or it moved): fresh state on its device.
      m = zeros_like(w);
      v = zeros_like(w);
      if (options_.amsgrad_) max_exp_avg_sq_[i] = zeros_like(w);
    }
    const int64_t t = ++steps_[i];
    const double bias_correction1 = 1.0 - std::pow(b1, double(t));
    const double bias_correction2 = 1.0 - std::pow(b2, double(t));

    if (fusable(w, grad)) {  // one pass over the parameter and its state (Backend::adam_step)
      AdamStepParams a;
      a.lr = lr;
      a.beta1 = b1;
      a.beta2 = b2;
      a.eps = eps;
      a.weight_decay = wd;
      a.bias_correction1 = bias_correction1;
      a.bias_correction2 = bias_correction2;
      a.decoupled = decoupled_;
      a.amsgrad = options_.amsgrad_;
      backend_for(w.device()).adam_step(w, grad.contiguous(), m, v, a.amsgrad ? max_exp_avg_sq_[i] : Tensor(), a);
      continue;
    }

    // The same update with tensor ops, for parameters the fused step does not take.
    Tensor g = grad;
    if (wd != 0.0) {
      if (decoupled_) w.mul_(1.0 - lr * wd);
      else g = add(grad, w, wd);
    }
    m.mul_(b1).add_(g, 1.0 - b1);
    v.mul_(b2).add_(mul(g, g), 1.0 - b2);

    Tensor second = v;
    if (options_.amsgrad_) {
      Tensor& vmax = max_exp_avg_sq_[i];
      vmax.copy_(maximum(vmax, v));
      second = vmax;
    }
    Tensor denom = sqrt(second);
    denom.div_(std::sqrt(bias_correction2)).add_(eps);
    w.add_(div(m, denom), -lr / bias_correction1);
  }
  ++step_count_;
}

}  // namespace tessera::optim
