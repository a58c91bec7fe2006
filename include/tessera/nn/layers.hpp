// The standard layers: Sequential, Linear, Embedding, Conv2d, MaxPool2d, AvgPool2d,
// AdaptiveAvgPool2d, ReLU, Dropout, Flatten, LogSoftmax. Each wraps the function of the same name in ops.hpp;
// shapes, defaults and initialisation follow torch.nn.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tessera/nn/module.hpp"
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

/// An ordered chain of modules; forward feeds each module's output to the next.
/// Parameters are named by position: "0.weight", "2.bias".
///   auto net = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
///       std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::ReLU>()});
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  /// Appends module under the name of its position. Throws ValueError for a null module.
  Sequential& push_back(std::shared_ptr<Module> module);
  /// Appends module under the given name.
  Sequential& push_back(const std::string& name, std::shared_ptr<Module> module);
  Tensor forward(const Tensor& x) override;
  std::size_t size() const { return modules_.size(); }
  /// The i-th module. Throws IndexError when out of range.
  std::shared_ptr<Module> operator[](std::size_t i) const;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
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
class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options);
  Linear(int64_t in_features, int64_t out_features, bool bias = true)
      : Linear(LinearOptions(in_features, out_features).bias(bias)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  /// Draws weight and bias again from the default generator.
  void reset_parameters();

  LinearOptions options;
  Tensor weight;
  Tensor bias;  // undefined when options.bias_ is false
};

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
class Embedding : public Module {
 public:
  explicit Embedding(const EmbeddingOptions& options);
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt)
      : Embedding(EmbeddingOptions(num_embeddings, embedding_dim).padding_idx(padding_idx)) {}
  Tensor forward(const Tensor& indices) override;
  std::string extra_repr() const override;
  /// Draws weight again from N(0, 1) (default generator) and zeroes the padding row.
  void reset_parameters();

  EmbeddingOptions options;
  Tensor weight;
};

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
class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  Conv2d(int64_t in_channels, int64_t out_channels, IntPair kernel_size)
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  Conv2dOptions options;
  Tensor weight;
  Tensor bias;
};

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
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options) : Module("MaxPool2d"), options(options) {}
  MaxPool2d(IntPair kernel_size) : MaxPool2d(MaxPool2dOptions(kernel_size)) {}  // NOLINT
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  MaxPool2dOptions options;
};

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
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const AvgPool2dOptions& options) : Module("AvgPool2d"), options(options) {}
  AvgPool2d(IntPair kernel_size) : AvgPool2d(AvgPool2dOptions(kernel_size)) {}  // NOLINT
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  AvgPool2dOptions options;
};

/// Average pooling to a fixed output size [N, C, oH, oW].
class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(IntPair output_size) : Module("AdaptiveAvgPool2d"), output_size(output_size) {}  // NOLINT
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  IntPair output_size;
};

/// max(x, 0) elementwise.
class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

/// Inverted dropout with probability p in training mode; the identity in eval mode.
/// Throws ValueError unless 0 <= p <= 1.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double p;
};

/// Flattens dims start_dim..end_dim into one (defaults keep the batch dim: [N, ...] -> [N, -1]).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t start_dim, end_dim;
};

/// log_softmax(x, dim).
class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t dim = 1) : Module("LogSoftmax"), dim(dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t dim;
};

}  // namespace tessera::nn
