// The standard layers (see layers.hpp).
#include "tessera/nn/layers.hpp"

#include <cmath>
#include <sstream>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"
#include "tessera/nn/init.hpp"
#include "tessera/ops.hpp"

namespace tessera::nn {

namespace {
std::string pair_str(IntPair p) {
  std::ostringstream os;
  os << '(' << p.first << ", " << p.second << ')';
  return os.str();
}
bool positive(IntPair p) { return p.first > 0 && p.second > 0; }
bool non_negative(IntPair p) { return p.first >= 0 && p.second >= 0; }
}  // namespace

// ---- Linear ------------------------------------------------------------------------------

LinearImpl::LinearImpl(const LinearOptions& opts) : Module("Linear"), options(opts) {
  TESSERA_CHECK(opts.in_features_ > 0 && opts.out_features_ > 0, ValueError,
                "Linear: in_features and out_features must be positive, got ", opts.in_features_, " and ",
                opts.out_features_);
  weight = register_parameter("weight", empty({opts.out_features_, opts.in_features_}));
  if (opts.bias_) bias = register_parameter("bias", empty({opts.out_features_}));
  reset_parameters();
}

void LinearImpl::reset_parameters() {
  // torch.nn.Linear.reset_parameters.
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    double bound = 1.0 / std::sqrt(double(options.in_features_));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor LinearImpl::forward(const Tensor& x) { return linear(x, weight, bias); }

std::string LinearImpl::extra_repr() const {
  std::ostringstream os;
  os << "in_features=" << options.in_features_ << ", out_features=" << options.out_features_
     << ", bias=" << (options.bias_ ? "true" : "false");
  return os.str();
}

// ---- Embedding -----------------------------------------------------------------------------

EmbeddingImpl::EmbeddingImpl(const EmbeddingOptions& opts) : Module("Embedding"), options(opts) {
  const int64_t V = opts.num_embeddings_, D = opts.embedding_dim_;
  TESSERA_CHECK(V > 0 && D > 0, ValueError, "Embedding: num_embeddings and embedding_dim must be positive, got ", V,
                " and ", D);
  if (opts.padding_idx_) {
    const int64_t p = *opts.padding_idx_;
    TESSERA_CHECK(p >= -V && p < V, ValueError, "Embedding: padding_idx ", p, " must be within [-", V, ", ", V,
                  ") for num_embeddings = ", V);
    options.padding_idx_ = p < 0 ? p + V : p;
  }
  weight = register_parameter("weight", empty({V, D}));
  reset_parameters();
}

void EmbeddingImpl::reset_parameters() {
  // torch.nn.Embedding.reset_parameters: normal_, then the padding row filled with 0.
  init::normal_(weight);
  if (options.padding_idx_) {
    NoGradGuard no_grad;
    weight.select(0, *options.padding_idx_).fill_(0.0);
  }
}

Tensor EmbeddingImpl::forward(const Tensor& indices) { return embedding(weight, indices, options.padding_idx_); }

std::string EmbeddingImpl::extra_repr() const {
  std::ostringstream os;
  os << options.num_embeddings_ << ", " << options.embedding_dim_;
  if (options.padding_idx_) os << ", padding_idx=" << *options.padding_idx_;
  return os.str();
}

// ---- Conv2d --------------------------------------------------------------------------------

Conv2dImpl::Conv2dImpl(const Conv2dOptions& opts) : Module("Conv2d"), options(opts) {
  TESSERA_CHECK(opts.in_channels_ > 0 && opts.out_channels_ > 0 && opts.groups_ > 0, ValueError,
                "Conv2d: in_channels, out_channels and groups must be positive, got ", opts.in_channels_, ", ",
                opts.out_channels_, ", ", opts.groups_);
  TESSERA_CHECK(opts.in_channels_ % opts.groups_ == 0 && opts.out_channels_ % opts.groups_ == 0, ValueError,
                "Conv2d: in_channels (", opts.in_channels_, ") and out_channels (", opts.out_channels_,
                ") must be divisible by groups (", opts.groups_, ")");
  TESSERA_CHECK(positive(opts.kernel_size_) && positive(opts.stride_) && positive(opts.dilation_) &&
                    non_negative(opts.padding_),
                ValueError, "Conv2d: kernel_size ", pair_str(opts.kernel_size_), ", stride ",
                pair_str(opts.stride_), " and dilation ", pair_str(opts.dilation_),
                " must be positive and padding ", pair_str(opts.padding_), " non-negative");
  weight = register_parameter("weight", empty({opts.out_channels_, opts.in_channels_ / opts.groups_,
                                               opts.kernel_size_.first, opts.kernel_size_.second}));
  if (opts.bias_) bias = register_parameter("bias", empty({opts.out_channels_}));
  reset_parameters();
}

void Conv2dImpl::reset_parameters() {
  // torch.nn.modules.conv._ConvNd.reset_parameters.
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    double bound = 1.0 / std::sqrt(double(fan_in));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Conv2dImpl::forward(const Tensor& x) {
  return conv2d(x, weight, bias, options.stride_, options.padding_, options.dilation_, options.groups_);
}

std::string Conv2dImpl::extra_repr() const {
  std::ostringstream os;
  os << options.in_channels_ << ", " << options.out_channels_ << ", kernel_size=" << pair_str(options.kernel_size_)
     << ", stride=" << pair_str(options.stride_);
  if (options.padding_.first || options.padding_.second) os << ", padding=" << pair_str(options.padding_);
  if (options.dilation_.first != 1 || options.dilation_.second != 1)
    os << ", dilation=" << pair_str(options.dilation_);
  if (options.groups_ != 1) os << ", groups=" << options.groups_;
  if (!options.bias_) os << ", bias=false";
  return os.str();
}

// ---- ConvTranspose2d -------------------------------------------------------------------------

ConvTranspose2dImpl::ConvTranspose2dImpl(const ConvTranspose2dOptions& opts) : Module("ConvTranspose2d"), options(opts) {
  TESSERA_CHECK(opts.in_channels_ > 0 && opts.out_channels_ > 0 && opts.groups_ > 0, ValueError,
                "ConvTranspose2d: in_channels, out_channels and groups must be positive, got ", opts.in_channels_, ", ",
                opts.out_channels_, ", ", opts.groups_);
  TESSERA_CHECK(opts.in_channels_ % opts.groups_ == 0 && opts.out_channels_ % opts.groups_ == 0, ValueError,
                "ConvTranspose2d: in_channels (", opts.in_channels_, ") and out_channels (", opts.out_channels_,
                ") must be divisible by groups (", opts.groups_, ")");
  TESSERA_CHECK(positive(opts.kernel_size_) && positive(opts.stride_) && positive(opts.dilation_) &&
                    non_negative(opts.padding_) && non_negative(opts.output_padding_),
                ValueError, "ConvTranspose2d: kernel_size ", pair_str(opts.kernel_size_), ", stride ",
                pair_str(opts.stride_), " and dilation ", pair_str(opts.dilation_), " must be positive, padding ",
                pair_str(opts.padding_), " and output_padding ", pair_str(opts.output_padding_), " non-negative");
  weight = register_parameter("weight", empty({opts.in_channels_, opts.out_channels_ / opts.groups_,
                                               opts.kernel_size_.first, opts.kernel_size_.second}));
  if (opts.bias_) bias = register_parameter("bias", empty({opts.out_channels_}));
  reset_parameters();
}

void ConvTranspose2dImpl::reset_parameters() {
  // torch.nn.modules.conv._ConvNd.reset_parameters (fan_in from weight.size(1) * kH * kW).
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    double bound = 1.0 / std::sqrt(double(fan_in));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor ConvTranspose2dImpl::forward(const Tensor& x) {
  return conv_transpose2d(x, weight, bias, options.stride_, options.padding_, options.output_padding_,
                          options.groups_, options.dilation_);
}

std::string ConvTranspose2dImpl::extra_repr() const {
  std::ostringstream os;
  os << options.in_channels_ << ", " << options.out_channels_ << ", kernel_size=" << pair_str(options.kernel_size_)
     << ", stride=" << pair_str(options.stride_);
  if (options.padding_.first || options.padding_.second) os << ", padding=" << pair_str(options.padding_);
  if (options.output_padding_.first || options.output_padding_.second)
    os << ", output_padding=" << pair_str(options.output_padding_);
  if (options.groups_ != 1) os << ", groups=" << options.groups_;
  if (!options.bias_) os << ", bias=false";
  return os.str();
}

// ---- pooling --------------------------------------------------------------------------------

Tensor MaxPool2dImpl::forward(const Tensor& x) {
  return max_pool2d(x, options.kernel_size_, options.stride_, options.padding_, options.dilation_,
                    options.ceil_mode_);
}

std::string MaxPool2dImpl::extra_repr() const {
  std::ostringstream os;
  os << "kernel_size=" << pair_str(options.kernel_size_) << ", stride=" << pair_str(options.stride_)
     << ", padding=" << pair_str(options.padding_) << ", dilation=" << pair_str(options.dilation_)
     << ", ceil_mode=" << (options.ceil_mode_ ? "true" : "false");
  return os.str();
}

Tensor AvgPool2dImpl::forward(const Tensor& x) {
  return avg_pool2d(x, options.kernel_size_, options.stride_, options.padding_, options.ceil_mode_,
                    options.count_include_pad_);
}

std::string AvgPool2dImpl::extra_repr() const {
  std::ostringstream os;
  os << "kernel_size=" << pair_str(options.kernel_size_) << ", stride=" << pair_str(options.stride_)
     << ", padding=" << pair_str(options.padding_);
  return os.str();
}

Tensor AdaptiveAvgPool2dImpl::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size); }

std::string AdaptiveAvgPool2dImpl::extra_repr() const { return "output_size=" + pair_str(output_size); }

// ---- activations, dropout, shape ------------------------------------------------------------------

Tensor ReLUImpl::forward(const Tensor& x) { return relu(x); }

DropoutImpl::DropoutImpl(double p_) : Module("Dropout"), p(p_) {
  TESSERA_CHECK(p_ >= 0.0 && p_ <= 1.0, ValueError, "Dropout: probability must be in [0, 1], got ", p_);
}

Tensor DropoutImpl::forward(const Tensor& x) { return dropout(x, p, is_training()); }

std::string DropoutImpl::extra_repr() const {
  std::ostringstream os;
  os << "p=" << p;
  return os.str();
}

Tensor FlattenImpl::forward(const Tensor& x) { return x.flatten(start_dim, end_dim); }

std::string FlattenImpl::extra_repr() const {
  std::ostringstream os;
  os << "start_dim=" << start_dim << ", end_dim=" << end_dim;
  return os.str();
}

Tensor LogSoftmaxImpl::forward(const Tensor& x) { return log_softmax(x, dim); }

Tensor SoftmaxImpl::forward(const Tensor& x) { return softmax(x, dim); }
std::string SoftmaxImpl::extra_repr() const { return "dim=" + std::to_string(dim); }

Tensor TanhImpl::forward(const Tensor& x) { return tanh(x); }
Tensor SigmoidImpl::forward(const Tensor& x) { return sigmoid(x); }
Tensor SiLUImpl::forward(const Tensor& x) { return silu(x); }

GELUImpl::GELUImpl(std::string approximate_) : Module("GELU"), approximate(std::move(approximate_)) {
  TESSERA_CHECK(approximate == "none" || approximate == "tanh", ValueError,
                "GELU: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
}
Tensor GELUImpl::forward(const Tensor& x) { return gelu(x, approximate); }
std::string GELUImpl::extra_repr() const { return approximate == "none" ? "" : "approximate='" + approximate + "'"; }

Tensor LeakyReLUImpl::forward(const Tensor& x) { return leaky_relu(x, negative_slope); }
std::string LeakyReLUImpl::extra_repr() const {
  std::ostringstream os;
  os << "negative_slope=" << negative_slope;
  return os.str();
}

Dropout2dImpl::Dropout2dImpl(double p_) : Module("Dropout2d"), p(p_) {
  TESSERA_CHECK(p_ >= 0.0 && p_ <= 1.0, ValueError, "Dropout2d: probability must be in [0, 1], got ", p_);
}
Tensor Dropout2dImpl::forward(const Tensor& x) { return dropout2d(x, p, is_training()); }
std::string Dropout2dImpl::extra_repr() const {
  std::ostringstream os;
  os << "p=" << p;
  return os.str();
}

Tensor UnflattenImpl::forward(const Tensor& x) { return unflatten(x, dim, sizes); }
std::string UnflattenImpl::extra_repr() const { return "dim=" + std::to_string(dim) + ", unflattened_size=" + shape_str(sizes); }

std::string LogSoftmaxImpl::extra_repr() const { return "dim=" + std::to_string(dim); }

// ---- resampling -------------------------------------------------------------------------------

Tensor UpsampleImpl::forward(const Tensor& x) {
  InterpolateOptions o;
  o.size_ = options.size_;
  o.scale_factor_ = options.scale_factor_;
  o.mode_ = options.mode_;
  o.align_corners_ = options.align_corners_;
  return interpolate(x, o);
}

std::string UpsampleImpl::extra_repr() const {
  std::ostringstream os;
  auto list = [&os](const auto& v) {
    os << "(";
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << ")";
  };
  if (options.size_) {
    os << "size=";
    list(*options.size_);
  } else if (options.scale_factor_) {
    os << "scale_factor=";
    list(*options.scale_factor_);
  }
  os << ", mode='" << interpolate_mode_name(options.mode_) << "'";
  if (options.align_corners_) os << ", align_corners=" << (*options.align_corners_ ? "true" : "false");
  return os.str();
}

}  // namespace tessera::nn
