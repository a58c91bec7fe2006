// data::datasets: the dataset interface (CRTP, as libtorch's torch/data/datasets/base.h),
// MapDataset (ds.map(transform)), TensorDataset and MNIST.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tessera/data/example.hpp"
#include "tessera/data/mnist.hpp"
#include "tessera/tensor.hpp"

namespace tessera::data::datasets {

template <typename SourceDataset, typename AppliedTransform>
class MapDataset;

/// A dataset that returns whole batches: get_batch(indices). Self is the derived class
/// (CRTP, so map() returns a MapDataset of the derived type). The loader calls get_batch on
/// worker threads when workers > 0; see StatelessDataLoader for what it may do there.
template <typename Self, typename Batch = std::vector<Example<>>, typename BatchRequest = std::vector<size_t>>
class BatchDataset {
 public:
  using SelfType = Self;
  using BatchType = Batch;
  using BatchRequestType = BatchRequest;

  virtual ~BatchDataset() = default;
  /// The batch of the given example indices (in that order).
  virtual Batch get_batch(BatchRequest request) = 0;
  /// Number of examples, or nullopt when unknown (then make_data_loader needs a sampler).
  virtual std::optional<size_t> size() const = 0;

  /// A dataset whose batches are transform.apply_batch(this->get_batch(indices)); copies
  /// this dataset (& overload) or moves it (&& overload). As libtorch's map().
  template <typename TransformType>
  MapDataset<Self, TransformType> map(TransformType transform) & {
    return MapDataset<Self, TransformType>(static_cast<Self&>(*this), std::move(transform));
  }
  template <typename TransformType>
  MapDataset<Self, TransformType> map(TransformType transform) && {
    return MapDataset<Self, TransformType>(std::move(static_cast<Self&>(*this)), std::move(transform));
  }
};

/// A dataset of single examples: get(index); get_batch(indices) is {get(i) for i in indices}.
/// Derive from it as in libtorch:  class MyData : public Dataset<MyData> { ... };
template <typename Self, typename SingleExample = Example<>>
class Dataset : public BatchDataset<Self, std::vector<SingleExample>> {
 public:
  using ExampleType = SingleExample;
  /// The example at index (in [0, size()); implementations throw IndexError otherwise).
  virtual ExampleType get(size_t index) = 0;
  std::vector<ExampleType> get_batch(std::vector<size_t> indices) override {
    std::vector<ExampleType> batch;
    batch.reserve(indices.size());
    for (size_t i : indices) batch.push_back(get(i));
    return batch;
  }
};

/// The source dataset with a transform applied to each of its batches (libtorch's
/// MapDataset). BatchType is the transform's output: vector<Example> for per-example
/// transforms (Normalize, Lambda), Example for a collation (Stack).
template <typename SourceDataset, typename AppliedTransform>
class MapDataset : public BatchDataset<MapDataset<SourceDataset, AppliedTransform>,
                                       typename AppliedTransform::OutputBatchType,
                                       typename SourceDataset::BatchRequestType> {
 public:
  using DatasetType = SourceDataset;
  using TransformType = AppliedTransform;
  using BatchRequestType = typename SourceDataset::BatchRequestType;
  using OutputBatchType = typename AppliedTransform::OutputBatchType;

  MapDataset(DatasetType dataset, TransformType transform)
      : dataset_(std::move(dataset)), transform_(std::move(transform)) {}

  OutputBatchType get_batch(BatchRequestType indices) override {
    return transform_.apply_batch(dataset_.get_batch(std::move(indices)));
  }
  std::optional<size_t> size() const override { return dataset_.size(); }

  const SourceDataset& dataset() const { return dataset_; }
  const AppliedTransform& transform() const { return transform_; }

 private:
  SourceDataset dataset_;
  AppliedTransform transform_;
};

/// ds.map(t) spelled as a function (libtorch's datasets::map).
template <typename DatasetType, typename TransformType>
MapDataset<DatasetType, TransformType> map(DatasetType dataset, TransformType transform) {
  return MapDataset<DatasetType, TransformType>(std::move(dataset), std::move(transform));
}

/// Examples from tensors in memory: example i is {data[i], target[i]} (views: they share
/// the tensors' memory). From one tensor, example i is {data[i], undefined}. libtorch's
/// TensorDataset holds one tensor and returns TensorExample; this one also takes targets,
/// as torch.utils.data.TensorDataset(x, y) does.
class TensorDataset : public Dataset<TensorDataset> {
 public:
  /// data: [N, ...], target: [N, ...] (same N, any device, any dtype).
  /// Throws ValueError for an undefined or 0-d data tensor and ShapeError naming both
  /// shapes when the first dims differ.
  TensorDataset(Tensor data, Tensor target);
  /// data: [N, ...]; targets undefined.
  explicit TensorDataset(Tensor data);

  /// {data[index], target[index]}. Throws IndexError naming index and size when index >= N.
  Example<> get(size_t index) override;
  std::optional<size_t> size() const override { return size_t(data_.size(0)); }

  const Tensor& data() const { return data_; }
  const Tensor& target() const { return target_; }

 private:
  Tensor data_, target_;
};

/// MNIST (or Fashion-MNIST, or any IDX set of that layout) as libtorch's datasets::MNIST:
/// example i is {data float32 [1, rows, cols] = pixel / 255, target int64 0-d label}.
/// The uint8 images stay in memory (an MnistDataset); each get() converts one image.
class MNIST : public Dataset<MNIST> {
 public:
  enum class Mode { kTrain, kTest };
  /// Reads {train|t10k}-{images-idx3,labels-idx1}-ubyte[.gz] from root (see
  /// MnistDataset::from_dir; no download). Throws IOError listing the paths looked for.
  explicit MNIST(const std::string& root, Mode mode = Mode::kTrain);
  /// Wraps a dataset already in memory (shares its tensors); is_train() is then `train`.
  explicit MNIST(MnistDataset dataset, bool train = true);

  /// {pixels / 255 as float32 [1, rows, cols], label int64 0-d}. Computed as float(p)/255.0f,
  /// bit for bit torchvision's ToTensor. Throws IndexError naming index and size.
  Example<> get(size_t index) override;
  std::optional<size_t> size() const override { return size_t(dataset_.size()); }
  bool is_train() const noexcept { return train_; }
  /// uint8 [N, rows, cols] (libtorch's images() are the float [N, 1, rows, cols]).
  const Tensor& images() const { return dataset_.images(); }
  /// int64 [N].
  const Tensor& targets() const { return dataset_.labels(); }
  const MnistDataset& mnist() const { return dataset_; }

 private:
  MnistDataset dataset_;
  bool train_ = true;
};

}  // namespace tessera::data::datasets
