// data::Example: one (data, target) pair, as libtorch's torch::data::Example
// (torch/csrc/api/include/torch/data/example.h).
#pragma once
#include <utility>

#include "tessera/tensor.hpp"

namespace tessera::data {

/// One example of a dataset: `data` and `target` (e.g. an image [C, H, W] and its int64
/// class label, a 0-d tensor). Either may be an undefined Tensor (TensorDataset built from a
/// single tensor leaves target undefined). Follows libtorch's Example<Data, Target>.
template <typename Data = Tensor, typename Target = Tensor>
struct Example {
  using DataType = Data;
  using TargetType = Target;

  Example() = default;
  Example(Data data, Target target) : data(std::move(data)), target(std::move(target)) {}

  Data data;
  Target target;
};

namespace example {
/// Marks an Example without a target: Example<Tensor, NoTarget> holds only `data`.
using NoTarget = void;
}  // namespace example

/// An example with data only (libtorch's Example<Data, example::NoTarget>).
template <typename Data>
struct Example<Data, example::NoTarget> {
  using DataType = Data;
  using TargetType = example::NoTarget;

  Example() = default;
  /* implicit */ Example(Data data) : data(std::move(data)) {}
  /// Implicit conversion to the data, as libtorch's.
  operator Data&() { return data; }
  operator const Data&() const { return data; }

  Data data;
};

/// libtorch's TensorExample: one tensor, no target.
using TensorExample = Example<Tensor, example::NoTarget>;

}  // namespace tessera::data
