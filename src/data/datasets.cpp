// TensorDataset and MNIST (data::datasets).
#include "tessera/data/datasets.hpp"

#include "tessera/error.hpp"
#include "tessera/shape.hpp"

namespace tessera::data::datasets {

TensorDataset::TensorDataset(Tensor data, Tensor target) : data_(std::move(data)), target_(std::move(target)) {
  TESSERA_CHECK(data_.defined() && data_.dim() >= 1, ValueError,
                "TensorDataset: data must be a defined tensor with at least one dim [N, ...], got ",
                data_.defined() ? shape_str(data_.shape()) : std::string("an undefined tensor"));
  if (target_.defined()) {
    TESSERA_CHECK(target_.dim() >= 1 && target_.size(0) == data_.size(0), ShapeError,
                  "TensorDataset: data and target must have the same size in dim 0, got data ",
                  shape_str(data_.shape()), " and target ", shape_str(target_.shape()));
  }
}

TensorDataset::TensorDataset(Tensor data) : TensorDataset(std::move(data), Tensor()) {}

Example<> TensorDataset::get(size_t index) {
  const int64_t n = data_.size(0);
  TESSERA_CHECK(index < size_t(n), IndexError, "TensorDataset::get: index ", index,
                " is out of range for a dataset of ", n, " examples");
  const int64_t i = int64_t(index);
  return Example<>(data_[i], target_.defined() ? target_[i] : Tensor());
}

MNIST::MNIST(const std::string& root, Mode mode)
    : dataset_(MnistDataset::from_dir(root, mode == Mode::kTrain)), train_(mode == Mode::kTrain) {}

MNIST::MNIST(MnistDataset dataset, bool train) : dataset_(std::move(dataset)), train_(train) {}

Example<> MNIST::get(size_t index) {
  const int64_t n = dataset_.size(), rows = dataset_.rows(), cols = dataset_.cols();
  TESSERA_CHECK(index < size_t(n), IndexError, "MNIST::get: index ", index, " is out of range for a dataset of ",
                n, " examples");
  const int64_t pixels = rows * cols;
  Tensor data = empty(Shape{1, rows, cols}, TensorOptions(kFloat32));
  float* dst = data.data_ptr<float>();
  const uint8_t* src = dataset_.images().data_ptr<uint8_t>() + int64_t(index) * pixels;
  for (int64_t k = 0; k < pixels; ++k) dst[k] = float(src[k]) / 255.0f;
  Tensor target = scalar_tensor(double(dataset_.labels().data_ptr<int64_t>()[index]), TensorOptions(kInt64));
  return Example<>(data, target);
}

}  // namespace tessera::data::datasets
