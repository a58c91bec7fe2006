// Dynamic loss scaling for float16 training, as torch.amp.GradScaler.
//
//   amp::GradScaler scaler;                       // init scale 2^16
//   for (...) {
//     optimizer.zero_grad();
//     Tensor loss;
//     { AutocastGuard autocast(DeviceType::CUDA, kFloat16); loss = cross_entropy(net(x), y); }
//     scaler.scale(loss).backward();
//     scaler.unscale_(optimizer);                 // optional: before clipping gradients
//     nn::utils::clip_grad_norm_(params, 1.0);
//     scaler.step(optimizer);                      // skipped if any gradient is inf or NaN
//     scaler.update();                             // backoff after a skip, growth after 2000 good steps
//   }
//
// Algorithm (PyTorch's _amp_update_scale_): a step whose unscaled gradients hold an inf or
// NaN is skipped and the scale is multiplied by backoff_factor (0.5) with the good-step count
// reset; after growth_interval (2000) consecutive good steps the scale is multiplied by
// growth_factor (2.0). The scale, the found-inf flag and the good-step count are float32
// tensors on the gradients' device; scale(), unscale_() and update() queue device work only.
// step() reads the found-inf flag on the host (one small synchronisation per step, as
// PyTorch's default, non-fused GradScaler.step) so that a skipped step leaves the parameters,
// the optimizer's moments and its step count exactly as they were.
// bfloat16 has float32's range and needs no scaling: GradScalerOptions().enabled(false)
// makes every call a pass-through.
#pragma once
#include <map>

#include "tessera/io/saved_state.hpp"
#include "tessera/optim/optimizer.hpp"
#include "tessera/tensor.hpp"

namespace tessera::amp {

struct GradScalerOptions {
  GradScalerOptions& init_scale(double v) { init_scale_ = v; return *this; }
  GradScalerOptions& growth_factor(double v) { growth_factor_ = v; return *this; }
  GradScalerOptions& backoff_factor(double v) { backoff_factor_ = v; return *this; }
  GradScalerOptions& growth_interval(int64_t v) { growth_interval_ = v; return *this; }
  GradScalerOptions& enabled(bool v) { enabled_ = v; return *this; }
  double init_scale_ = 65536.0, growth_factor_ = 2.0, backoff_factor_ = 0.5;
  int64_t growth_interval_ = 2000;
  bool enabled_ = true;
};

class GradScaler {
 public:
  /// ValueError for init_scale <= 0, growth_factor <= 1, backoff_factor outside (0, 1) or
  /// growth_interval < 1.
  explicit GradScaler(const GradScalerOptions& options = GradScalerOptions());

  /// loss * scale (same shape; float32 or wider). The scale tensor is made on loss's device
  /// at the first call.
  Tensor scale(const Tensor& loss);
  /// Divides every gradient of optimizer's parameters by the scale in place and records
  /// whether any is inf or NaN. At most once between step() calls (RuntimeError otherwise).
  void unscale_(optim::Optimizer& optimizer);
  /// unscale_ (if not done), then optimizer.step() unless a gradient was inf or NaN.
  /// Returns whether the step ran.
  bool step(optim::Optimizer& optimizer);
  /// Updates the scale from this iteration's found-inf flags (device work only).
  void update();

  /// The current scale (reads it from the device), or 1.0 when disabled.
  double get_scale() const;
  bool is_enabled() const { return options_.enabled_; }
  /// Steps skipped since construction (each skip counted when step() sees it).
  int64_t skipped_steps() const { return skipped_; }
  const GradScalerOptions& options() const { return options_; }

  /// PyTorch's keys: {"scale", "growth_factor", "backoff_factor", "growth_interval",
  /// "_growth_tracker"}.
  SavedState state_dict() const;
  /// ValueError naming the key when one is missing or invalid; nothing changes then.
  void load_state_dict(const SavedState& state);

 private:
  struct PerOptimizer {
    bool unscaled = false, stepped = false;
    Tensor found_inf;  // float32 [] on the gradients' device: 1 when any was inf/NaN
  };
  GradScalerOptions options_;
  Tensor scale_, growth_tracker_;  // float32 [] on the loss's device
  std::map<const optim::Optimizer*, PerOptimizer> per_optimizer_;
  int64_t skipped_ = 0;
  double loaded_scale_ = -1, loaded_tracker_ = 0;  // applied when the scale tensor is made
};

}  // namespace tessera::amp
