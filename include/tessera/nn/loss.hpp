// The loss modules of torch.nn, each calling the function of the same name in ops.hpp with
// its options: `nn::CrossEntropyLoss ce(nn::CrossEntropyLossOptions().label_smoothing(0.1));
// Tensor loss = ce(logits, target);`. Options are spelled as libtorch's.
#pragma once
#include <cstdint>
#include <string>

#include "tessera/nn/module.hpp"
#include "tessera/nn/module_holder.hpp"
#include "tessera/ops.hpp"
#include "tessera/tensor.hpp"

namespace tessera::nn {

/// Options with only a reduction (Mean by default).
struct LossOptions {
  LossOptions(Reduction r = Reduction::Mean) : reduction_(r) {}  // NOLINT(google-explicit-constructor)
  LossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  Reduction reduction_;
};
using MSELossOptions = LossOptions;
using L1LossOptions = LossOptions;

/// mse_loss(input, target, reduction).
class MSELossImpl : public Module {
 public:
  explicit MSELossImpl(const MSELossOptions& options = {}) : Module("MSELoss"), options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) { return mse_loss(input, target, options.reduction_); }
  std::string extra_repr() const override;
  MSELossOptions options;
};
TESSERA_MODULE(MSELoss);

/// l1_loss(input, target, reduction).
class L1LossImpl : public Module {
 public:
  explicit L1LossImpl(const L1LossOptions& options = {}) : Module("L1Loss"), options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) { return l1_loss(input, target, options.reduction_); }
  std::string extra_repr() const override;
  L1LossOptions options;
};
TESSERA_MODULE(L1Loss);

struct SmoothL1LossOptions {
  SmoothL1LossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  SmoothL1LossOptions& beta(double b) { beta_ = b; return *this; }
  Reduction reduction_ = Reduction::Mean;
  double beta_ = 1.0;
};

/// smooth_l1_loss(input, target, reduction, beta). Throws ValueError for beta < 0 on forward.
class SmoothL1LossImpl : public Module {
 public:
  explicit SmoothL1LossImpl(const SmoothL1LossOptions& options = {}) : Module("SmoothL1Loss"), options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) {
    return smooth_l1_loss(input, target, options.reduction_, options.beta_);
  }
  std::string extra_repr() const override;
  SmoothL1LossOptions options;
};
TESSERA_MODULE(SmoothL1Loss);

struct HuberLossOptions {
  HuberLossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  HuberLossOptions& delta(double d) { delta_ = d; return *this; }
  Reduction reduction_ = Reduction::Mean;
  double delta_ = 1.0;
};

/// huber_loss(input, target, reduction, delta).
class HuberLossImpl : public Module {
 public:
  explicit HuberLossImpl(const HuberLossOptions& options = {}) : Module("HuberLoss"), options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) {
    return huber_loss(input, target, options.reduction_, options.delta_);
  }
  std::string extra_repr() const override;
  HuberLossOptions options;
};
TESSERA_MODULE(HuberLoss);

struct BCELossOptions {
  BCELossOptions& weight(const Tensor& w) { weight_ = w; return *this; }
  BCELossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  Tensor weight_;
  Reduction reduction_ = Reduction::Mean;
};

/// binary_cross_entropy(input, target, weight, reduction): input holds probabilities.
class BCELossImpl : public Module {
 public:
  explicit BCELossImpl(const BCELossOptions& options = {});
  Tensor forward(const Tensor& input, const Tensor& target) {
    return binary_cross_entropy(input, target, options.weight_, options.reduction_);
  }
  std::string extra_repr() const override;
  BCELossOptions options;
};
TESSERA_MODULE(BCELoss);

struct BCEWithLogitsLossOptions {
  BCEWithLogitsLossOptions& weight(const Tensor& w) { weight_ = w; return *this; }
  BCEWithLogitsLossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  BCEWithLogitsLossOptions& pos_weight(const Tensor& p) { pos_weight_ = p; return *this; }
  Tensor weight_;
  Reduction reduction_ = Reduction::Mean;
  Tensor pos_weight_;
};

/// binary_cross_entropy_with_logits(input, target, weight, reduction, pos_weight).
class BCEWithLogitsLossImpl : public Module {
 public:
  explicit BCEWithLogitsLossImpl(const BCEWithLogitsLossOptions& options = {});
  Tensor forward(const Tensor& input, const Tensor& target) {
    return binary_cross_entropy_with_logits(input, target, options.weight_, options.reduction_, options.pos_weight_);
  }
  std::string extra_repr() const override;
  BCEWithLogitsLossOptions options;
};
TESSERA_MODULE(BCEWithLogitsLoss);

struct KLDivLossOptions {
  KLDivLossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  KLDivLossOptions& log_target(bool b) { log_target_ = b; return *this; }
  Reduction reduction_ = Reduction::Mean;
  bool log_target_ = false;
};

/// kl_div(input, target, reduction, log_target); input holds log-probabilities.
class KLDivLossImpl : public Module {
 public:
  explicit KLDivLossImpl(const KLDivLossOptions& options = {}) : Module("KLDivLoss"), options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) {
    return kl_div(input, target, options.reduction_, options.log_target_);
  }
  std::string extra_repr() const override;
  KLDivLossOptions options;
};
TESSERA_MODULE(KLDivLoss);

struct NLLLossOptions {
  NLLLossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  NLLLossOptions& ignore_index(int64_t i) { ignore_index_ = i; return *this; }
  Reduction reduction_ = Reduction::Mean;
  int64_t ignore_index_ = -100;
};

/// nll_loss(input, target, reduction, ignore_index); input holds log-probabilities.
class NLLLossImpl : public Module {
 public:
  explicit NLLLossImpl(const NLLLossOptions& options = {}) : Module("NLLLoss"), options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) {
    return nll_loss(input, target, options.reduction_, options.ignore_index_);
  }
  std::string extra_repr() const override;
  NLLLossOptions options;
};
TESSERA_MODULE(NLLLoss);

struct CrossEntropyLossOptions {
  CrossEntropyLossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  CrossEntropyLossOptions& ignore_index(int64_t i) { ignore_index_ = i; return *this; }
  CrossEntropyLossOptions& label_smoothing(double e) { label_smoothing_ = e; return *this; }
  Reduction reduction_ = Reduction::Mean;
  int64_t ignore_index_ = -100;
  double label_smoothing_ = 0.0;
};

/// cross_entropy(input, target, reduction, ignore_index, label_smoothing); input holds logits.
class CrossEntropyLossImpl : public Module {
 public:
  explicit CrossEntropyLossImpl(const CrossEntropyLossOptions& options = {})
      : Module("CrossEntropyLoss"), options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) {
    return cross_entropy(input, target, options.reduction_, options.ignore_index_, options.label_smoothing_);
  }
  std::string extra_repr() const override;
  CrossEntropyLossOptions options;
};
TESSERA_MODULE(CrossEntropyLoss);

}  // namespace tessera::nn
