// The standard layers: Linear, Embedding, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
// the activations, Dropout, Dropout2d, Flatten, Unflatten, Identity, Softmax, LogSoftmax.
// Each wraps the function of the same name in ops.hpp; shapes, defaults and initialisation
// follow torch.nn. As in libtorch, `XImpl` is the module class and `X` its holder
// (module_holder.hpp): `nn::Linear fc(4, 8); fc(x); fc->weight;`. Containers: containers.hpp.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tessera/nn/containers.hpp"
#include "tessera/nn/module.hpp"
#include "tessera/nn/module_holder.hpp"
#include "tessera/ops.hpp"
#include "tessera/tensor.hpp"

namespace tessera::nn {

/// A pair of ints that an int expands into, as libtorch's ExpandingArray<2>:
/// `3` means (3, 3); `{2, 3}` means (2, 3).
struct IntPair {
  int64_t first = 0, second = 0;
  IntPair(int64_t v) : first(v), second(v) {}  // NOLINT(google-explicit-constructor)
  IntPair(int64_t a, int64_t b) : first(a), second(b) {}
  operator std::pair<int64_t, int64_t>() const { return {first, second}; }  // NOLINT
};

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  LinearOptions& bias(bool b) { bias_ = b; return *this; }
  int64_t in_features_, out_features_;
  bool bias_ = true;
};

/// y = x W^T + b. x [..., in_features] -> y [..., out_features]; weight [out, in], bias [out].
/// Initialisation as torch.nn.Linear: W ~ kaiming_uniform_(a = sqrt(5)), that is
/// U(-1/sqrt(in), 1/sqrt(in)); b ~ U(-1/sqrt(in), 1/sqrt(in)). Throws ValueError for
/// non-positive sizes.
class LinearImpl : public Module {
 public:
  explicit LinearImpl(const LinearOptions& options);
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true)
      : LinearImpl(LinearOptions(in_features, out_features).bias(bias)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  /// Draws weight and bias again from the default generator.
  void reset_parameters();

  LinearOptions options;
  Tensor weight;
  Tensor bias;  // undefined when options.bias_ is false
};
TESSERA_MODULE(Linear);

struct EmbeddingOptions {
  EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  EmbeddingOptions& padding_idx(std::optional<int64_t> p) { padding_idx_ = p; return *this; }
  int64_t num_embeddings_, embedding_dim_;
  std::optional<int64_t> padding_idx_;
};

/// A lookup table, torch.nn.Embedding: indices of any shape (int64 or int32) ->
/// [*indices.shape, embedding_dim]; weight [num_embeddings, embedding_dim]. Initialisation as
/// PyTorch: weight ~ N(0, 1) with the padding_idx row zeroed; that row gets no gradient, so it
/// stays as it is set. A negative padding_idx counts from the end (stored wrapped, as PyTorch).
/// Throws ValueError for non-positive sizes or padding_idx outside [-num_embeddings,
/// num_embeddings); an index out of range is an IndexError (see embedding in ops.hpp).
class EmbeddingImpl : public Module {
 public:
  explicit EmbeddingImpl(const EmbeddingOptions& options);
  EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt)
      : EmbeddingImpl(EmbeddingOptions(num_embeddings, embedding_dim).padding_idx(padding_idx)) {}
  Tensor forward(const Tensor& indices) override;
  std::string extra_repr() const override;
  /// Draws weight again from N(0, 1) (default generator) and zeroes the padding row.
  void reset_parameters();

  EmbeddingOptions options;
  Tensor weight;
};
TESSERA_MODULE(Embedding);

struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, IntPair kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  Conv2dOptions& stride(IntPair s) { stride_ = s; return *this; }
  Conv2dOptions& padding(IntPair p) { padding_ = p; return *this; }
  Conv2dOptions& dilation(IntPair d) { dilation_ = d; return *this; }
  Conv2dOptions& groups(int64_t g) { groups_ = g; return *this; }
  Conv2dOptions& bias(bool b) { bias_ = b; return *this; }
  int64_t in_channels_, out_channels_;
  IntPair kernel_size_;
  IntPair stride_ = 1, padding_ = 0, dilation_ = 1;
  int64_t groups_ = 1;
  bool bias_ = true;
};

/// 2-D convolution, NCHW: x [N, C_in, H, W] -> [N, C_out, OH, OW] with
/// OH = floor((H + 2p - d(k-1) - 1)/s) + 1. weight [C_out, C_in/groups, kH, kW], bias [C_out].
/// Initialisation as torch.nn.Conv2d: kaiming_uniform_(a = sqrt(5)) and bias
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in/groups * kH * kW.
/// Throws ValueError when the channels are not divisible by groups or a size is not positive.
class Conv2dImpl : public Module {
 public:
  explicit Conv2dImpl(const Conv2dOptions& options);
  Conv2dImpl(int64_t in_channels, int64_t out_channels, IntPair kernel_size)
      : Conv2dImpl(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  Conv2dOptions options;
  Tensor weight;
  Tensor bias;
};
TESSERA_MODULE(Conv2d);

struct ConvTranspose2dOptions {
  ConvTranspose2dOptions(int64_t in_channels, int64_t out_channels, IntPair kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  ConvTranspose2dOptions& stride(IntPair s) { stride_ = s; return *this; }
  ConvTranspose2dOptions& padding(IntPair p) { padding_ = p; return *this; }
  ConvTranspose2dOptions& output_padding(IntPair p) { output_padding_ = p; return *this; }
  ConvTranspose2dOptions& dilation(IntPair d) { dilation_ = d; return *this; }
  ConvTranspose2dOptions& groups(int64_t g) { groups_ = g; return *this; }
  ConvTranspose2dOptions& bias(bool b) { bias_ = b; return *this; }
  int64_t in_channels_, out_channels_;
  IntPair kernel_size_;
  IntPair stride_ = 1, padding_ = 0, output_padding_ = 0, dilation_ = 1;
  int64_t groups_ = 1;
  bool bias_ = true;
};

/// 2-D transposed convolution (conv_transpose2d in ops.hpp), torch.nn.ConvTranspose2d:
/// weight [C_in, C_out/groups, kH, kW], bias [C_out]; initialised as PyTorch's _ConvNd
/// (kaiming_uniform_(a = sqrt(5)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
/// fan_in = C_out/groups * kH * kW, computed from this weight layout as PyTorch does).
/// Throws ValueError when the channels are not divisible by groups or a size is not positive.
class ConvTranspose2dImpl : public Module {
 public:
  explicit ConvTranspose2dImpl(const ConvTranspose2dOptions& options);
  ConvTranspose2dImpl(int64_t in_channels, int64_t out_channels, IntPair kernel_size)
      : ConvTranspose2dImpl(ConvTranspose2dOptions(in_channels, out_channels, kernel_size)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  ConvTranspose2dOptions options;
  Tensor weight;
  Tensor bias;
};
TESSERA_MODULE(ConvTranspose2d);

struct MaxPool2dOptions {
  MaxPool2dOptions(IntPair kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  MaxPool2dOptions& stride(IntPair s) { stride_ = s; return *this; }
  MaxPool2dOptions& padding(IntPair p) { padding_ = p; return *this; }
  MaxPool2dOptions& dilation(IntPair d) { dilation_ = d; return *this; }
  MaxPool2dOptions& ceil_mode(bool c) { ceil_mode_ = c; return *this; }
  IntPair kernel_size_, stride_;
  IntPair padding_ = 0, dilation_ = 1;
  bool ceil_mode_ = false;
};

/// Max pooling over kH x kW windows (stride defaults to the kernel size, as in PyTorch).
class MaxPool2dImpl : public Module {
 public:
  explicit MaxPool2dImpl(const MaxPool2dOptions& options) : Module("MaxPool2d"), options(options) {}
  MaxPool2dImpl(IntPair kernel_size) : MaxPool2dImpl(MaxPool2dOptions(kernel_size)) {}  // NOLINT
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  MaxPool2dOptions options;
};
TESSERA_MODULE(MaxPool2d);

struct AvgPool2dOptions {
  AvgPool2dOptions(IntPair kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  AvgPool2dOptions& stride(IntPair s) { stride_ = s; return *this; }
  AvgPool2dOptions& padding(IntPair p) { padding_ = p; return *this; }
  AvgPool2dOptions& ceil_mode(bool c) { ceil_mode_ = c; return *this; }
  AvgPool2dOptions& count_include_pad(bool c) { count_include_pad_ = c; return *this; }
  IntPair kernel_size_, stride_;
  IntPair padding_ = 0;
  bool ceil_mode_ = false;
  bool count_include_pad_ = true;
};

/// Average pooling over kH x kW windows (stride defaults to the kernel size).
class AvgPool2dImpl : public Module {
 public:
  explicit AvgPool2dImpl(const AvgPool2dOptions& options) : Module("AvgPool2d"), options(options) {}
  AvgPool2dImpl(IntPair kernel_size) : AvgPool2dImpl(AvgPool2dOptions(kernel_size)) {}  // NOLINT
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  AvgPool2dOptions options;
};
TESSERA_MODULE(AvgPool2d);

/// Average pooling to a fixed output size [N, C, oH, oW].
class AdaptiveAvgPool2dImpl : public Module {
 public:
  AdaptiveAvgPool2dImpl(IntPair output_size) : Module("AdaptiveAvgPool2d"), output_size(output_size) {}  // NOLINT
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  IntPair output_size;
};
TESSERA_MODULE(AdaptiveAvgPool2d);

/// max(x, 0) elementwise.
class ReLUImpl : public Module {
 public:
  ReLUImpl() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};
TESSERA_MODULE(ReLU);

/// Inverted dropout with probability p in training mode; the identity in eval mode.
/// Throws ValueError unless 0 <= p <= 1.
class DropoutImpl : public Module {
 public:
  explicit DropoutImpl(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double p;
};
TESSERA_MODULE(Dropout);

/// Flattens dims start_dim..end_dim into one (defaults keep the batch dim: [N, ...] -> [N, -1]).
class FlattenImpl : public Module {
 public:
  explicit FlattenImpl(int64_t start_dim = 1, int64_t end_dim = -1)
      : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t start_dim, end_dim;
};
TESSERA_MODULE(Flatten);

/// log_softmax(x, dim).
class LogSoftmaxImpl : public Module {
 public:
  explicit LogSoftmaxImpl(int64_t dim = 1) : Module("LogSoftmax"), dim(dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t dim;
};
TESSERA_MODULE(LogSoftmax);

/// softmax(x, dim).
class SoftmaxImpl : public Module {
 public:
  explicit SoftmaxImpl(int64_t dim = 1) : Module("Softmax"), dim(dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t dim;
};
TESSERA_MODULE(Softmax);

/// tanh(x) elementwise.
class TanhImpl : public Module {
 public:
  TanhImpl() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override;
};
TESSERA_MODULE(Tanh);

/// 1 / (1 + exp(-x)) elementwise.
class SigmoidImpl : public Module {
 public:
  SigmoidImpl() : Module("Sigmoid") {}
  Tensor forward(const Tensor& x) override;
};
TESSERA_MODULE(Sigmoid);

/// x sigmoid(x) elementwise (silu in ops.hpp).
class SiLUImpl : public Module {
 public:
  SiLUImpl() : Module("SiLU") {}
  Tensor forward(const Tensor& x) override;
};
TESSERA_MODULE(SiLU);

/// gelu(x, approximate) with approximate "none" (erf) or "tanh". Throws ValueError otherwise.
class GELUImpl : public Module {
 public:
  explicit GELUImpl(std::string approximate = "none");
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  std::string approximate;
};
TESSERA_MODULE(GELU);

/// leaky_relu(x, negative_slope), PyTorch's default slope 0.01.
class LeakyReLUImpl : public Module {
 public:
  explicit LeakyReLUImpl(double negative_slope = 0.01) : Module("LeakyReLU"), negative_slope(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double negative_slope;
};
TESSERA_MODULE(LeakyReLU);

/// Returns its input (a placeholder, as torch.nn.Identity).
class IdentityImpl : public Module {
 public:
  IdentityImpl() : Module("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};
TESSERA_MODULE(Identity);

/// dropout2d(x, p, training): zeroes whole channels of [N, C, H, W] or [C, H, W] inputs in
/// training mode; the identity in eval mode. Throws ValueError unless 0 <= p <= 1.
class Dropout2dImpl : public Module {
 public:
  explicit Dropout2dImpl(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double p;
};
TESSERA_MODULE(Dropout2d);

/// unflatten(x, dim, sizes): [N, 12] with (1, {3, 4}) -> [N, 3, 4].
class UnflattenImpl : public Module {
 public:
  UnflattenImpl(int64_t dim, Shape sizes) : Module("Unflatten"), dim(dim), sizes(std::move(sizes)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t dim;
  Shape sizes;
};
TESSERA_MODULE(Unflatten);

/// torch::nn::UpsampleOptions: size or scale_factor (exactly one), mode (default kNearest),
/// align_corners (linear modes only).
struct UpsampleOptions {
  UpsampleOptions& size(std::vector<int64_t> s) { size_ = std::move(s); return *this; }
  UpsampleOptions& scale_factor(std::vector<double> f) { scale_factor_ = std::move(f); return *this; }
  UpsampleOptions& mode(InterpolateMode m) { mode_ = m; return *this; }
  UpsampleOptions& align_corners(bool a) { align_corners_ = a; return *this; }
  std::optional<std::vector<int64_t>> size_;
  std::optional<std::vector<double>> scale_factor_;
  InterpolateMode mode_ = InterpolateMode::Nearest;
  std::optional<bool> align_corners_;
};

/// interpolate(x, options) as a module (torch.nn.Upsample): [N, C, L], [N, C, H, W] or
/// [N, C, D, H, W] resampled by nearest, nearest-exact or (bi/tri)linear interpolation.
/// Errors as interpolate's, at forward.
class UpsampleImpl : public Module {
 public:
  explicit UpsampleImpl(const UpsampleOptions& options = {}) : Module("Upsample"), options(options) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  UpsampleOptions options;
};
TESSERA_MODULE(Upsample);

}  // namespace tessera::nn
