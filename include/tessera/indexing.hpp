// Multi-dimensional indexing as libtorch spells it (torch::indexing):
//
//   using namespace tessera::indexing;
//   x.index({Slice(1, None, 2), 0, Ellipsis, None})   // x[1::2, 0, ..., None]
//   x.index({idx})            // integer-tensor ("advanced") indexing: x[idx]
//   x.index({mask})           // boolean-mask indexing: x[mask]
//   x.index_put_({Slice(), 0}, 5.0)                   // x[:, 0] = 5
//   x.index_put_({idx}, values, /*accumulate=*/true)  // x[idx] += values, duplicates summed
//
// Semantics are PyTorch's (https://pytorch.org/cppdocs/notes/tensor_indexing.html and
// NumPy's indexing rules, which PyTorch follows):
// - An integer selects (removes the dim); a Slice narrows with Python's clamping; None inserts
//   a dim of size 1; Ellipsis ("...") stands for as many full slices as needed. Integers are
//   applied as select() while walking the list, as libtorch does, so they never count as
//   advanced indices: x[0, :, idx] on x [3, 4, 5] is [4, B] (NumPy gives [B, 4]). With only
//   these ("basic") indices the result is a view sharing x's memory.
// - true / false (and 0-dim bool tensors) insert a dim of size 1 / 0, as an advanced index
//   over that new dim, as libtorch does.
// - Integer tensors (int64 or int32, on any device) and boolean masks are "advanced" indices:
//   the index tensors broadcast together to a shape B and the result holds
//   x[..., i0[b], i1[b], ...] for each b in B (a copy, not a view). A mask of k dims stands for
//   the k index tensors of its nonzero() coordinates; its shape must match the k dims it
//   indexes. When the advanced indices are adjacent, B replaces their dims in place; when
//   something separates them, B comes first (NumPy's rule).
// - Negative integers count from the end, in integers and in index tensors alike.
//
// Errors: an index out of range is an IndexError naming the op, the index, its dim and the
// size ("index: index 5 is out of bounds for dim 1 with size 3"); too many indices, two
// ellipses, a mask whose shape does not match, index tensors that do not broadcast, or a
// non-integer index tensor are IndexError / ShapeError / DTypeError naming the shapes.
//
// Autograd: index() and index_put() record history (gradients flow to x and to values);
// index_put_ and the other in-place writes do not (as copy_, they refuse a tensor that
// requires grad while grad mode is on).
//
// Cost: advanced indexing and nonzero() read the indices on the host to check their range
// (on CUDA that is one synchronisation and, for masks, a copy of the mask to the host), as
// PyTorch's nonzero does.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "tessera/tensor.hpp"

namespace tessera::indexing {

/// "No value" in a Slice (Slice(1, None) is 1:) and, as an index, a new dim of size 1
/// (torch::indexing::None).
inline constexpr std::nullopt_t None = std::nullopt;

struct EllipsisIndexType {
  constexpr EllipsisIndexType() = default;
};
/// As many full slices as make the other indices reach the last dim (torch::indexing::Ellipsis;
/// the string "..." means the same).
inline constexpr EllipsisIndexType Ellipsis{};

/// Python's start:stop:step. Missing parts default as in Python: start 0, stop the dim's
/// size, step 1. Negative start / stop count from the end; both clamp to the dim. step must be
/// positive (PyTorch rejects negative steps too): a ValueError at use.
class Slice {
 public:
  Slice(std::optional<int64_t> start = std::nullopt, std::optional<int64_t> stop = std::nullopt,
        std::optional<int64_t> step = std::nullopt)
      : start_(start), stop_(stop), step_(step) {}
  int64_t start() const { return start_.value_or(0); }
  int64_t stop() const { return stop_.value_or(INT64_MAX); }
  int64_t step() const { return step_.value_or(1); }
  /// Python's text of the slice: "1:None:2".
  std::string str() const;

 private:
  std::optional<int64_t> start_, stop_, step_;
};

/// One entry of an index list: an integer, a Slice, None, Ellipsis, a bool, or a tensor
/// (integer indices or a boolean mask). Implicit from each, so brace lists read as Python's
/// subscripts (torch::indexing::TensorIndex).
class TensorIndex {
 public:
  enum class Kind { None, Ellipsis, Integer, Boolean, Slice, Tensor };

  TensorIndex(std::nullopt_t) : kind_(Kind::None) {}
  TensorIndex(EllipsisIndexType) : kind_(Kind::Ellipsis) {}
  /// "..." only; any other string is a ValueError.
  TensorIndex(const char* text);
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  TensorIndex(T integer) : kind_(Kind::Integer), integer_(int64_t(integer)) {}
  TensorIndex(bool value) : kind_(Kind::Boolean), boolean_(value) {}
  TensorIndex(Slice slice) : kind_(Kind::Slice), slice_(slice) {}
  TensorIndex(Tensor tensor) : kind_(Kind::Tensor), tensor_(std::move(tensor)) {}

  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_ellipsis() const { return kind_ == Kind::Ellipsis; }
  bool is_integer() const { return kind_ == Kind::Integer; }
  bool is_boolean() const { return kind_ == Kind::Boolean; }
  bool is_slice() const { return kind_ == Kind::Slice; }
  bool is_tensor() const { return kind_ == Kind::Tensor; }
  int64_t integer() const { return integer_; }
  bool boolean() const { return boolean_; }
  const Slice& slice() const { return slice_; }
  const Tensor& tensor() const { return tensor_; }
  /// Python's spelling of this entry: "0", "1:None:2", "None", "...", "True",
  /// "tensor(int64 [3])".
  std::string str() const;

 private:
  Kind kind_;
  int64_t integer_ = 0;
  bool boolean_ = false;
  Slice slice_;
  Tensor tensor_;
};

/// The whole list as Python writes it: "[1:None:2, 0, ..., None]".
std::string indices_str(const std::vector<TensorIndex>& indices);

}  // namespace tessera::indexing

namespace tessera {

/// x[indices] (torch::Tensor::index): see the top of this header for the rules. A view of x
/// when every index is basic (integer, Slice, None, Ellipsis), a new tensor otherwise.
/// Gradient: to x (index_add of the gradient at the indexed positions).
Tensor index(const Tensor& x, const std::vector<indexing::TensorIndex>& indices);

/// A copy of x with x[indices] = values (torch.index_put; accumulate: x[indices] += values).
/// values broadcasts to the shape of x.index(indices) and is cast to x's dtype and moved to
/// its device. Without accumulate, each position must be named at most once when values is a
/// tensor (ValueError otherwise: PyTorch leaves the result undefined; Tessera refuses);
/// with accumulate, duplicates add up. Gradients: to x (zero at the written positions unless
/// accumulate) and to values (the gradient gathered at the positions, summed over broadcast).
Tensor index_put(const Tensor& x, const std::vector<indexing::TensorIndex>& indices, const Tensor& values,
                 bool accumulate = false);
/// The same with one value for every indexed position (duplicates allowed).
Tensor index_put(const Tensor& x, const std::vector<indexing::TensorIndex>& indices, double value);

/// The 1-D tensor of x's elements where mask is true, in row-major order (torch.masked_select):
/// mask bool; x and mask broadcast together. Gradient: to x (scattered back).
Tensor masked_select(const Tensor& x, const Tensor& mask);

/// The coordinates of x's nonzero elements (true for bool), [n, x.dim()] int64, row-major
/// order (torch.nonzero). A 0-dim x gives [n, 0]. No gradient. Synchronises with the device.
Tensor nonzero(const Tensor& x);
/// torch.argwhere: the same as nonzero.
Tensor argwhere(const Tensor& x);

}  // namespace tessera
