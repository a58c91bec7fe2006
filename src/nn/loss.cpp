// The loss modules (see loss.hpp).
#include "tessera/nn/loss.hpp"

#include <sstream>

namespace tessera::nn {

namespace {
const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
    case Reduction::BatchMean: return "batchmean";
  }
  return "?";
}
std::string reduction_repr(Reduction r) { return std::string("reduction=") + reduction_name(r); }
}  // namespace

std::string MSELossImpl::extra_repr() const { return reduction_repr(options.reduction_); }
std::string L1LossImpl::extra_repr() const { return reduction_repr(options.reduction_); }

std::string SmoothL1LossImpl::extra_repr() const {
  std::ostringstream os;
  os << reduction_repr(options.reduction_) << ", beta=" << options.beta_;
  return os.str();
}

std::string HuberLossImpl::extra_repr() const {
  std::ostringstream os;
  os << reduction_repr(options.reduction_) << ", delta=" << options.delta_;
  return os.str();
}

// The weights are buffers, as in torch.nn, so that to(device) moves them with the model.
BCELossImpl::BCELossImpl(const BCELossOptions& opts) : Module("BCELoss"), options(opts) {
  options.weight_ = register_buffer("weight", opts.weight_);
}
std::string BCELossImpl::extra_repr() const { return reduction_repr(options.reduction_); }

BCEWithLogitsLossImpl::BCEWithLogitsLossImpl(const BCEWithLogitsLossOptions& opts)
    : Module("BCEWithLogitsLoss"), options(opts) {
  options.weight_ = register_buffer("weight", opts.weight_);
  options.pos_weight_ = register_buffer("pos_weight", opts.pos_weight_);
}
std::string BCEWithLogitsLossImpl::extra_repr() const { return reduction_repr(options.reduction_); }

std::string KLDivLossImpl::extra_repr() const {
  return reduction_repr(options.reduction_) + (options.log_target_ ? ", log_target=true" : "");
}

std::string NLLLossImpl::extra_repr() const {
  std::ostringstream os;
  os << reduction_repr(options.reduction_);
  if (options.ignore_index_ != -100) os << ", ignore_index=" << options.ignore_index_;
  return os.str();
}

std::string CrossEntropyLossImpl::extra_repr() const {
  std::ostringstream os;
  os << reduction_repr(options.reduction_);
  if (options.ignore_index_ != -100) os << ", ignore_index=" << options.ignore_index_;
  if (options.label_smoothing_ != 0.0) os << ", label_smoothing=" << options.label_smoothing_;
  return os.str();
}

}  // namespace tessera::nn
