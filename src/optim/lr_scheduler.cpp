// torch.optim.lr_scheduler.StepLR.
#include "tessera/optim/lr_scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "tessera/error.hpp"

namespace tessera::optim {

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : optimizer_(optimizer), step_size_(step_size), gamma_(gamma), base_lr_(optimizer.lr()) {
  TESSERA_CHECK(step_size > 0, ValueError, "StepLR: step_size must be positive, got ", step_size);
  TESSERA_CHECK(std::isfinite(gamma) && gamma >= 0.0, ValueError, "StepLR: gamma must be finite and >= 0, got ",
                gamma);
}

void StepLR::step() {
  ++epoch_;
  optimizer_.set_lr(base_lr_ * std::pow(gamma_, double(epoch_ / step_size_)));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min)
    : optimizer_(optimizer), t_max_(t_max), eta_min_(eta_min), base_lr_(optimizer.lr()) {
  TESSERA_CHECK(t_max > 0, ValueError, "CosineAnnealingLR: t_max must be positive, got ", t_max);
  TESSERA_CHECK(std::isfinite(eta_min) && eta_min >= 0.0, ValueError,
                "CosineAnnealingLR: eta_min must be finite and >= 0, got ", eta_min);
}

void CosineAnnealingLR::step() {
  ++t_;
  const double pi = std::acos(-1.0);
  const double progress = double(std::min(t_, t_max_)) / double(t_max_);
  optimizer_.set_lr(eta_min_ + (base_lr_ - eta_min_) * (1.0 + std::cos(pi * progress)) / 2.0);
}

}  // namespace tessera::optim
