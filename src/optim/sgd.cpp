// torch.optim.SGD (its documented algorithm, including the first-step momentum buffer).
#include <cmath>

#include "tessera/autograd/autograd.hpp"
#include "tessera/backend.hpp"
#include "tessera/error.hpp"
#include "tessera/ops.hpp"
#include "tessera/optim/optimizer.hpp"

namespace tessera::optim {

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : Optimizer(std::move(params), options.lr_), options_(options) {
  TESSERA_CHECK(options.momentum_ >= 0.0, ValueError, "SGD: invalid momentum ", options.momentum_);
  TESSERA_CHECK(options.weight_decay_ >= 0.0, ValueError, "SGD: invalid weight_decay ", options.weight_decay_);
  TESSERA_CHECK(!options.nesterov_ || (options.momentum_ > 0.0 && options.dampening_ == 0.0), ValueError,
                "SGD: nesterov momentum requires momentum > 0 and dampening = 0, got momentum ",
                options.momentum_, " and dampening ", options.dampening_);
  momentum_buffer_.resize(params_.size());
}

void SGD::step() {
  NoGradGuard no_grad;
  const double lr = lr_, mom = options_.momentum_, damp = options_.dampening_, wd = options_.weight_decay_;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Tensor grad = params_[i].grad();
    if (!grad.defined()) continue;
    Tensor w = params_[i].detach();
    if (fusable(w, grad)) {  // one pass over the parameter and its buffer (Backend::sgd_step)
      SgdStepParams s;
      s.lr = lr;
      s.momentum = mom;
      s.dampening = damp;
      s.weight_decay = wd;
      s.nesterov = options_.nesterov_;
      Tensor& buf = momentum_buffer_[i];
      if (mom != 0.0 && (!buf.defined() || buf.device() != w.device() || buf.dtype() != w.dtype())) {
        buf = empty_like(w);
        s.first = true;
      }
      backend_for(w.device()).sgd_step(w, grad.contiguous(), mom != 0.0 ? buf : Tensor(), s);
      continue;
    }
    // The same update with tensor ops, for parameters the fused step does not take.
    Tensor g = wd != 0.0 ? add(grad, w, wd) : grad;
    if (mom != 0.0) {
      Tensor& buf = momentum_buffer_[i];
      if (!buf.defined() || buf.device() != w.device() || buf.dtype() != w.dtype()) {
        buf = g.detach().to(w.device(), w.dtype()).clone();
      } else {
        buf.mul_(mom).add_(g, 1.0 - damp);
      }
      g = options_.nesterov_ ? add(g, buf, mom) : buf;
    }
    w.add_(g, -lr);
  }
  ++step_count_;
}

}  // namespace tessera::optim
