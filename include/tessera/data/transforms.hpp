// data::transforms: what a MapDataset applies to the batches of its source, as libtorch's
// torch::data::transforms (torch/data/transforms/{base,lambda,collate,stack,tensor}.h).
#pragma once
#include <functional>
#include <utility>
#include <vector>

#include "tessera/data/example.hpp"
#include "tessera/tensor.hpp"

namespace tessera::data::transforms {

/// Maps a whole batch to another batch (e.g. a collation, vector<Example> -> Example).
template <typename InputBatch, typename OutputBatch>
class BatchTransform {
 public:
  using InputBatchType = InputBatch;
  using OutputBatchType = OutputBatch;
  virtual ~BatchTransform() = default;
  /// The transformed batch.
  virtual OutputBatch apply_batch(InputBatch input_batch) = 0;
};

/// Maps each example of a batch on its own: apply_batch(v) is {apply(v[0]), apply(v[1]), ...}.
template <typename Input, typename Output>
class Transform : public BatchTransform<std::vector<Input>, std::vector<Output>> {
 public:
  using InputType = Input;
  using OutputType = Output;
  /// The transformed example.
  virtual Output apply(Input input) = 0;
  std::vector<Output> apply_batch(std::vector<Input> input_batch) override {
    std::vector<Output> out;
    out.reserve(input_batch.size());
    for (auto& in : input_batch) out.push_back(apply(std::move(in)));
    return out;
  }
};

/// A BatchTransform from a function (libtorch's BatchLambda).
template <typename Input, typename Output = Input>
class BatchLambda : public BatchTransform<Input, Output> {
 public:
  using FunctionType = std::function<Output(Input)>;
  explicit BatchLambda(FunctionType function) : function_(std::move(function)) {}
  Output apply_batch(Input input_batch) override { return function_(std::move(input_batch)); }

 private:
  FunctionType function_;
};

/// A per-example Transform from a function (libtorch's Lambda):
///   ds.map(transforms::Lambda<Example<>>([](Example<> e) { e.data = e.data * 2; return e; }))
template <typename Input, typename Output = Input>
class Lambda : public Transform<Input, Output> {
 public:
  using FunctionType = std::function<Output(Input)>;
  explicit Lambda(FunctionType function) : function_(std::move(function)) {}
  Output apply(Input input) override { return function_(std::move(input)); }

 private:
  FunctionType function_;
};

/// A transform that turns a vector of examples into one batch (libtorch's Collation).
template <typename BatchType, typename T = std::vector<BatchType>>
using Collation = BatchTransform<T, BatchType>;
/// A Collation from a function (libtorch's Collate).
template <typename BatchType, typename T = std::vector<BatchType>>
using Collate = BatchLambda<T, BatchType>;

/// A transform of an example's data tensor only; the target passes through unchanged
/// (libtorch's TensorTransform).
template <typename Target = Tensor>
class TensorTransform : public Transform<Example<Tensor, Target>, Example<Tensor, Target>> {
 public:
  using E = Example<Tensor, Target>;
  /// The transformed data tensor.
  virtual Tensor operator()(Tensor input) = 0;
  E apply(E input) override {
    input.data = (*this)(std::move(input.data));
    return input;
  }
};

/// A TensorTransform from a function Tensor -> Tensor (libtorch's TensorLambda).
template <typename Target = Tensor>
class TensorLambda : public TensorTransform<Target> {
 public:
  using FunctionType = std::function<Tensor(Tensor)>;
  explicit TensorLambda(FunctionType function) : function_(std::move(function)) {}
  Tensor operator()(Tensor input) override { return function_(std::move(input)); }

 private:
  FunctionType function_;
};

namespace detail {
/// (x - mean) / stddev for Normalize; see there.
Tensor normalize(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& stddev);
/// Throws ValueError unless mean and stddev have the same count (>= 1), every value is
/// finite and every stddev is non-zero.
void check_normalize(const std::vector<double>& mean, const std::vector<double>& stddev);
}  // namespace detail

/// x = (x - mean) / stddev on the example's data, as libtorch's Normalize and
/// torchvision's transforms.Normalize. One value each: applied to every element, the shape
/// unchanged. C values each (per channel): the data must be [..., C, H, W] and channel c
/// uses mean[c], stddev[c] (libtorch reshapes them to [C, 1, 1] and broadcasts; a data
/// tensor whose dim -3 is not C throws ShapeError here rather than broadcasting oddly).
/// Float data keeps its dtype (the arithmetic is the library's sub/div, in that dtype);
/// integer data (uint8 pixels) gives float32. MNIST: (0.1307, 0.3081); Fashion-MNIST:
/// (0.2860, 0.3530).
/// Throws ValueError (at construction) for unequal or empty lists, non-finite values or a
/// zero stddev.
template <typename Target = Tensor>
class Normalize : public TensorTransform<Target> {
 public:
  Normalize(double mean, double stddev) : Normalize(std::vector<double>{mean}, std::vector<double>{stddev}) {}
  Normalize(std::vector<double> mean, std::vector<double> stddev) : mean(std::move(mean)), stddev(std::move(stddev)) {
    detail::check_normalize(this->mean, this->stddev);
  }
  Tensor operator()(Tensor input) override { return detail::normalize(input, mean, stddev); }

  std::vector<double> mean, stddev;
};

/// Collates a vector of examples into one batch by stacking (libtorch's Stack):
/// Stack<Example<>>: data [B, ...] = stack of the data, target [B, ...] = stack of the
/// targets (0-d int64 labels give [B]); undefined targets stay undefined.
/// Throws ValueError for an empty batch or when some targets are defined and others not,
/// and ShapeError from stack (naming the shapes) when the examples' shapes differ.
template <typename T = Example<>>
struct Stack;

template <>
struct Stack<Example<>> : public Collation<Example<>> {
  Example<> apply_batch(std::vector<Example<>> examples) override;
};

/// Stack<TensorExample>: stacks the data tensors, [B, ...].
template <>
struct Stack<TensorExample> : public Collation<TensorExample> {
  TensorExample apply_batch(std::vector<TensorExample> examples) override;
};

}  // namespace tessera::data::transforms
