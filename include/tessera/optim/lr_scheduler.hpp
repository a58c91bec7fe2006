// Learning-rate schedules, as torch.optim.lr_scheduler.
#pragma once
#include <cstdint>

#include "tessera/optim/optimizer.hpp"

namespace tessera::optim {

/// Multiplies the learning rate by gamma every step_size epochs (torch.optim.lr_scheduler.StepLR):
/// lr(epoch) = base_lr * gamma^floor(epoch / step_size), where base_lr is the optimizer's lr
/// when the scheduler is made. Call step() once per epoch, after the optimizer's steps.
/// The optimizer must outlive the scheduler. Throws ValueError for step_size <= 0 or gamma < 0.
class StepLR {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  /// Advances one epoch and sets the optimizer's learning rate.
  void step();
  /// The learning rate set by the last step() (the base rate before any).
  double get_last_lr() const { return optimizer_.lr(); }
  int64_t last_epoch() const { return epoch_; }

 private:
  Optimizer& optimizer_;
  int64_t step_size_;
  double gamma_;
  double base_lr_;
  int64_t epoch_ = 0;
};

/// Cosine annealing without restarts (Loshchilov & Hutter 2017, SGDR;
/// torch.optim.lr_scheduler.CosineAnnealingLR): after t steps
///   lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / t_max)) / 2,
/// reaching eta_min at t = t_max and staying there. Step it once per batch (t_max = total
/// batches) or once per epoch (t_max = epochs). Throws ValueError for t_max <= 0 or
/// eta_min < 0.
class CosineAnnealingLR {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min = 0.0);
  void step();
  double get_last_lr() const { return optimizer_.lr(); }
  int64_t last_epoch() const { return t_; }

 private:
  Optimizer& optimizer_;
  int64_t t_max_;
  double eta_min_;
  double base_lr_;
  int64_t t_ = 0;
};

}  // namespace tessera::optim
