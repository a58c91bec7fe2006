// Optimizers, as torch.optim: each holds a list of parameters (leaf tensors that require
// grad) and updates them in place from their .grad() in step(). A contiguous float parameter
// with a gradient of its dtype and device is updated by one fused pass of its backend
// (Backend::adam_step / sgd_step: one kernel per parameter on CUDA instead of about twenty);
// any other runs the same formulas as tensor ops under NoGradGuard.
// Parameters whose grad is undefined (not reached by backward) are skipped.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <tuple>
#include <vector>

#include "tessera/io/saved_state.hpp"
#include "tessera/tensor.hpp"

namespace tessera::optim {

class Optimizer {
 public:
  /// Throws ValueError for an empty list and for a parameter that is undefined, not
  /// floating point or not a leaf; ValueError for a negative learning rate.
  Optimizer(std::vector<Tensor> params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Clears every parameter's grad: set_to_none drops it (PyTorch 2's default), else zeroes it.
  void zero_grad(bool set_to_none = true);
  /// One update of every parameter that has a grad.
  virtual void step() = 0;

  double lr() const { return lr_; }
  /// Changes the learning rate (schedulers use it). Throws ValueError when negative.
  void set_lr(double lr);
  const std::vector<Tensor>& parameters() const { return params_; }
  /// Number of step() calls so far.
  int64_t step_count() const { return step_count_; }

  /// The optimizer's whole state in PyTorch's layout (torch.optim.Optimizer.state_dict):
  /// tensors "state.<i>.<name>" for parameter i (SGD: momentum_buffer; Adam/AdamW: exp_avg,
  /// exp_avg_sq, max_exp_avg_sq with amsgrad), absent before its first step; JSON
  /// {"type": "Adam", "step_count": n, "state": {"<i>": {"step": t}},
  ///  "param_groups": [{"lr": ..., <the options>, "params": [0, 1, ...]}]}.
  /// The tensors are copies: later steps do not change them.
  SavedState state_dict() const;
  /// Restores a state_dict() of the same optimizer type over the same parameters (same
  /// count, shapes): moments, step counts, learning rate and options. Everything is checked
  /// before anything changes, so a failed load leaves the optimizer as it was. Throws
  /// ValueError naming the optimizer and listing every problem (type, parameter count,
  /// missing, unexpected or mis-shaped tensors, bad JSON).
  void load_state_dict(const SavedState& state);
  /// The optimizer's name: "SGD", "Adam", "AdamW".
  virtual const char* type_name() const = 0;

 protected:
  /// One optimizer's specifics for state_dict: its per-parameter tensor slots (name ->
  /// element i belongs to parameter i), of which a parameter with state has the first
  /// `required` (the others are optional), and per-parameter step counters (or null).
  struct StateSlots {
    std::vector<std::pair<std::string, std::vector<Tensor>*>> tensors;
    std::size_t required = 0;
    std::vector<int64_t>* steps = nullptr;
  };
  virtual StateSlots state_slots() const = 0;
  /// Options as a JSON object's text (PyTorch's param_group keys, lr and params excluded).
  virtual std::string options_json() const = 0;
  /// Validates options_json() text (ValueError naming the key, nothing changed) and returns
  /// the function that applies it.
  virtual std::function<void()> prepare_options(const std::string& text) = 0;

 protected:
  /// Whether step() can update param from grad with the backend's fused update: param
  /// contiguous float32/float64, grad of the same dtype, device and shape (any layout).
  static bool fusable(const Tensor& param, const Tensor& grad);

  std::vector<Tensor> params_;
  double lr_;
  int64_t step_count_ = 0;
};

struct SGDOptions {
  SGDOptions(double lr) : lr_(lr) {}  // NOLINT: implicit, so SGD(params, 0.1) reads as libtorch's
  SGDOptions& momentum(double m) { momentum_ = m; return *this; }
  SGDOptions& dampening(double d) { dampening_ = d; return *this; }
  SGDOptions& weight_decay(double w) { weight_decay_ = w; return *this; }
  SGDOptions& nesterov(bool n) { nesterov_ = n; return *this; }
  double lr_;
  double momentum_ = 0.0, dampening_ = 0.0, weight_decay_ = 0.0;
  bool nesterov_ = false;
};

/// Stochastic gradient descent with momentum, as torch.optim.SGD:
///   g = grad + weight_decay * p
///   b = g on the first step, else momentum * b + (1 - dampening) * g   (when momentum != 0)
///   g = g + momentum * b (nesterov) or g = b
///   p = p - lr * g
/// (Sutskever et al. 2013 for the Nesterov form.) Throws ValueError for negative lr,
/// momentum or weight decay, and for nesterov without momentum or with dampening.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  void step() override;
  const SGDOptions& options() const { return options_; }
  const char* type_name() const override { return "SGD"; }

 protected:
  StateSlots state_slots() const override;
  std::string options_json() const override;
  std::function<void()> prepare_options(const std::string& text) override;

 private:
  SGDOptions options_;
  std::vector<Tensor> momentum_buffer_;
};

struct AdamOptions {
  AdamOptions(double lr = 1e-3) : lr_(lr) {}  // NOLINT: implicit, so Adam(params, 1e-3) reads as libtorch's
  AdamOptions& betas(double b1, double b2) { beta1_ = b1; beta2_ = b2; return *this; }
  /// libtorch's spelling: betas(std::make_tuple(0.9, 0.999)).
  AdamOptions& betas(const std::tuple<double, double>& b) { return betas(std::get<0>(b), std::get<1>(b)); }
  AdamOptions& eps(double e) { eps_ = e; return *this; }
  AdamOptions& weight_decay(double w) { weight_decay_ = w; return *this; }
  AdamOptions& amsgrad(bool a) { amsgrad_ = a; return *this; }
  double lr_;
  double beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8;
  double weight_decay_ = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled decay (default 1e-2)
  bool amsgrad_ = false;
};

/// Adam (Kingma & Ba 2015), bias-corrected, as torch.optim.Adam:
///   g = grad + weight_decay * p
///   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2   (v_max = max(v_max, v) if amsgrad)
///   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// Throws ValueError for negative lr/eps/weight_decay or betas outside [0, 1).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options = AdamOptions());
  void step() override;
  const AdamOptions& options() const { return options_; }
  const char* type_name() const override { return decoupled_ ? "AdamW" : "Adam"; }

 protected:
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled);
  StateSlots state_slots() const override;
  std::string options_json() const override;
  std::function<void()> prepare_options(const std::string& text) override;

 private:
  AdamOptions options_;
  bool decoupled_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
  std::vector<int64_t> steps_;
};

/// AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW: Adam without the L2 term in the
/// gradient, and p = p * (1 - lr * weight_decay) before the Adam update. The default
/// weight decay is PyTorch's 1e-2.
/// AdamW's options: AdamOptions with PyTorch's AdamW default weight_decay 1e-2.
struct AdamWOptions : AdamOptions {
  AdamWOptions(double lr = 1e-3) : AdamOptions(lr) { weight_decay_ = 1e-2; }  // NOLINT(google-explicit-constructor)
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamOptions& options = AdamWOptions())
      : Adam(std::move(params), options, true) {}
  /// AdamW(params, lr): PyTorch's defaults with this learning rate (weight_decay 1e-2).
  AdamW(std::vector<Tensor> params, double lr) : AdamW(std::move(params), AdamWOptions(lr)) {}
};

}  // namespace tessera::optim
