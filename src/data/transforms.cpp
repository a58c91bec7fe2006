// Normalize and Stack: the non-template parts of data::transforms.
#include "tessera/data/transforms.hpp"

#include <cmath>

#include "tessera/error.hpp"
#include "tessera/ops.hpp"
#include "tessera/shape.hpp"

namespace tessera::data::transforms {
namespace detail {

void check_normalize(const std::vector<double>& mean, const std::vector<double>& stddev) {
  TESSERA_CHECK(!mean.empty() && mean.size() == stddev.size(), ValueError,
                "Normalize: mean and stddev must have the same number of values (>= 1), got ", mean.size(), " and ",
                stddev.size());
  for (size_t c = 0; c < mean.size(); ++c) {
    TESSERA_CHECK(std::isfinite(mean[c]), ValueError, "Normalize: mean[", c, "] must be finite, got ", mean[c]);
    TESSERA_CHECK(std::isfinite(stddev[c]) && stddev[c] != 0.0, ValueError, "Normalize: stddev[", c,
                  "] must be finite and non-zero, got ", stddev[c]);
  }
}

Tensor normalize(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& stddev) {
  TESSERA_CHECK(x.defined(), ValueError, "Normalize: the data tensor is undefined");
  if (mean.size() == 1) return div(sub(x, mean[0]), stddev[0]);
  const int64_t c = int64_t(mean.size());
  TESSERA_CHECK(x.dim() >= 3 && x.size(-3) == c, ShapeError, "Normalize: per-channel mean and stddev of ", c,
                " values need data [..., ", c, ", H, W], got ", shape_str(x.shape()));
  // Float data keeps its dtype; integer data gives float32 (as the scalar overloads do).
  const DType dt = is_floating_point(x.dtype()) ? x.dtype() : kFloat32;
  Tensor m = from_vector<double>(mean, {c, 1, 1}).to(x.device(), dt);
  Tensor s = from_vector<double>(stddev, {c, 1, 1}).to(x.device(), dt);
  return div(sub(x.to(dt), m), s);
}

}  // namespace detail

Example<> Stack<Example<>>::apply_batch(std::vector<Example<>> examples) {
  TESSERA_CHECK(!examples.empty(), ValueError, "Stack: cannot collate an empty batch");
  std::vector<Tensor> data, target;
  data.reserve(examples.size());
  target.reserve(examples.size());
  const bool with_target = examples[0].target.defined();
  for (size_t i = 0; i < examples.size(); ++i) {
    TESSERA_CHECK(examples[i].target.defined() == with_target, ValueError, "Stack: example ", i, " has ",
                  with_target ? "no target" : "a target", " but example 0 has ", with_target ? "one" : "none");
    data.push_back(std::move(examples[i].data));
    if (with_target) target.push_back(std::move(examples[i].target));
  }
  return Example<>(stack(data), with_target ? stack(target) : Tensor());
}

TensorExample Stack<TensorExample>::apply_batch(std::vector<TensorExample> examples) {
  TESSERA_CHECK(!examples.empty(), ValueError, "Stack: cannot collate an empty batch");
  std::vector<Tensor> data;
  data.reserve(examples.size());
  for (auto& e : examples) data.push_back(std::move(e.data));
  return TensorExample(stack(data));
}

}  // namespace tessera::data::transforms
