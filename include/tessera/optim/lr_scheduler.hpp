// Learning-rate schedules, as torch.optim.lr_scheduler.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "tessera/optim/optimizer.hpp"

namespace tessera::optim {

/// The base of every scheduler: step() sets the optimizer's learning rate; state_dict()
/// saves what step() depends on (PyTorch's scheduler state_dict: last_epoch, base_lrs and
/// the hyper-parameters), so a resumed run continues the same schedule.
class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances one epoch (or batch) and sets the optimizer's learning rate.
  virtual void step() = 0;
  /// The learning rate set by the last step() (the base rate before any).
  double get_last_lr() const { return optimizer_.lr(); }
  int64_t last_epoch() const { return epoch_; }
  /// "StepLR", "CosineAnnealingLR".
  virtual const char* type_name() const = 0;
  /// JSON {"type", "last_epoch", "base_lr", <hyper-parameters>}; no tensors.
  SavedState state_dict() const;
  /// Restores a state_dict() of the same scheduler type (hyper-parameters included, as
  /// PyTorch's load_state_dict does). Does not touch the optimizer: its learning rate is
  /// part of the optimizer's own state. Throws ValueError (nothing changed) for another
  /// type or a malformed state.
  void load_state_dict(const SavedState& state);

 protected:
  /// The hyper-parameters as JSON text, and the function that validates and applies them.
  virtual std::string hyper_json() const = 0;
  virtual std::function<void()> prepare_hyper(const std::string& text) = 0;

  Optimizer& optimizer_;
  double base_lr_;
  int64_t epoch_ = 0;
};

/// Multiplies the learning rate by gamma every step_size epochs (torch.optim.lr_scheduler.StepLR):
/// lr(epoch) = base_lr * gamma^floor(epoch / step_size), where base_lr is the optimizer's lr
/// when the scheduler is made. Call step() once per epoch, after the optimizer's steps.
/// The optimizer must outlive the scheduler. Throws ValueError for step_size <= 0 or gamma < 0.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  /// Advances one epoch and sets the optimizer's learning rate.
  void step() override;
  const char* type_name() const override { return "StepLR"; }

 protected:
  std::string hyper_json() const override;
  std::function<void()> prepare_hyper(const std::string& text) override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// Cosine annealing without restarts (Loshchilov & Hutter 2017, SGDR;
/// torch.optim.lr_scheduler.CosineAnnealingLR): after t steps
///   lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / t_max)) / 2,
/// reaching eta_min at t = t_max and staying there. Step it once per batch (t_max = total
/// batches) or once per epoch (t_max = epochs). Throws ValueError for t_max <= 0 or
/// eta_min < 0.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min = 0.0);
  void step() override;
  const char* type_name() const override { return "CosineAnnealingLR"; }

 protected:
  std::string hyper_json() const override;
  std::function<void()> prepare_hyper(const std::string& text) override;

 private:
  int64_t t_max_;
  double eta_min_;
};

}  // namespace tessera::optim
