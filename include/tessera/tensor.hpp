// Tensor: shared storage + shape + strides + storage offset (all int64) + dtype, with
// optional autograd metadata. Copying a Tensor copies a handle (like torch::Tensor);
// clone() copies the data.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/device.hpp"
#include "tessera/dtype.hpp"
#include "tessera/error.hpp"
#include "tessera/shape.hpp"
#include "tessera/storage.hpp"

namespace tessera {

namespace autograd {
struct AutogradMeta;
struct Node;
}  // namespace autograd
namespace indexing {
class TensorIndex;
}  // namespace indexing

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Strides strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::Float32;
  std::shared_ptr<autograd::AutogradMeta> autograd;  // null when no grad is tracked
};

class Tensor {
 public:
  /// An undefined tensor (defined() == false), used for "no tensor" (e.g. no bias).
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }

  // ---- metadata ----------------------------------------------------------------
  const Shape& shape() const { return impl().sizes; }
  const Shape& sizes() const { return impl().sizes; }
  const Strides& strides() const { return impl().strides; }
  /// Size of dim (negative counts from the end). Throws IndexError.
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return int64_t(impl().sizes.size()); }
  int64_t ndim() const { return dim(); }
  int64_t numel() const { return shape_numel(impl().sizes); }
  int64_t storage_offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  std::size_t itemsize() const { return tessera::itemsize(dtype()); }
  std::size_t nbytes() const { return std::size_t(numel()) * itemsize(); }
  bool is_contiguous() const;
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  /// Address of element 0 (storage base + offset), on the tensor's device.
  void* raw_data() const {
    return static_cast<char*>(impl().storage->data()) + impl().offset * int64_t(itemsize());
  }
  /// Typed pointer to element 0 on the tensor's device. Throws DTypeError when T is not
  /// the tensor's dtype.
  template <typename T>
  T* data_ptr() const {
    TESSERA_CHECK(dtype_of_v<T> == dtype(), DTypeError, "data_ptr<", dtype_name(dtype_of_v<T>),
                  ">: tensor has dtype ", dtype_name(dtype()));
    return static_cast<T*>(raw_data());
  }
  /// The single value of a one-element tensor, converted to T (copies from the device).
  /// Throws ShapeError when numel() != 1.
  template <typename T>
  T item() const;
  TensorImpl& impl() const {
    TESSERA_CHECK(impl_ != nullptr, ValueError, "operation on an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- views (share storage) ------------------------------------------------------
  /// Same data, new shape; one dim may be -1. Throws ShapeError when numel differs, when the
  /// shape has more than 2^63 - 1 elements (product of its sizes, counting 0 as 1), or when
  /// the strides cannot express it without a copy (use reshape).
  Tensor view(const Shape& shape) const;
  /// view() when possible, else a contiguous copy. Throws ShapeError as view() does for
  /// a shape that does not fit.
  Tensor reshape(const Shape& shape) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  /// Transpose of a tensor with at most 2 dims.
  Tensor t() const;
  /// Elements [start, start+length) of dim (a negative start counts from the end). Throws
  /// IndexError when the range is not inside the dim.
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  /// Python-style x[start:end:step] along dim (clamped like Python; step > 0).
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  /// x[index] along dim, removing dim.
  Tensor select(int64_t dim, int64_t index) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  /// Broadcast view to shape (size-1 dims become stride 0; -1 keeps a size). Throws
  /// ShapeError when a size cannot be broadcast or the shape has more than 2^63 - 1 elements.
  Tensor expand(const Shape& shape) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor operator[](int64_t index) const { return select(0, index); }
  /// x[index] for an integer tensor or boolean mask (index({index}); see indexing.hpp).
  Tensor operator[](const Tensor& index) const;

  // ---- multi-dimensional indexing (indexing.hpp, torch::Tensor::index) -------------------
  /// x[indices]: x.index({Slice(1, None, 2), 0, Ellipsis, None}), x.index({idx}), x.index({mask}).
  Tensor index(const std::vector<indexing::TensorIndex>& indices) const;
  /// x[indices] = values in place (casting values to this dtype, broadcasting it), or
  /// x[indices] += values with accumulate. No history: refuses (AutogradError) a tensor that
  /// requires grad while grad mode is on; use index_put for the differentiable form.
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& values,
                     bool accumulate = false);
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, double value);
  /// The out-of-place, differentiable form (tessera::index_put).
  Tensor index_put(const std::vector<indexing::TensorIndex>& indices, const Tensor& values,
                   bool accumulate = false) const;
  Tensor masked_select(const Tensor& mask) const;
  Tensor nonzero() const;
  Tensor argwhere() const;

  // ---- copies and conversion -------------------------------------------------------
  /// This tensor if contiguous, else a contiguous copy.
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor to(Device device, DType dtype) const;
  Tensor cpu() const { return to(Device::cpu()); }
  /// Copies src into this tensor (broadcasting src, casting dtype, across devices).
  /// When the two overlap in memory, src is first copied to a temporary, so the result is
  /// the same as copying from a separate tensor. Refuses (ValueError) an expanded destination
  /// (several elements sharing one memory location).
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // ---- autograd ----------------------------------------------------------------------
  bool requires_grad() const;
  /// Marks a leaf as needing a gradient. Throws AutogradError on a non-leaf or integer dtype.
  Tensor& requires_grad_(bool requires = true);
  /// The accumulated gradient of a leaf (undefined until backward reaches it).
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  bool is_leaf() const;
  std::shared_ptr<autograd::Node> grad_fn() const;
  /// Reverse-mode differentiation from this tensor: gradient defaults to 1 for a scalar.
  /// Throws AutogradError when this tensor does not require grad or is not a scalar and
  /// no gradient is given.
  /// create_graph: the gradients get history of their own (see autograd::grad). As in
  /// PyTorch, a leaf's .grad then refers back to the leaf (a reference cycle): reset it with
  /// set_grad(Tensor()) when done, or prefer autograd::grad, which leaves .grad alone.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false, bool create_graph = false) const;
  /// Same data, no autograd history.
  Tensor detach() const;

  /// Detaches this tensor in place (torch's detach_): it becomes a leaf that does not require
  /// grad; its gradient, if any, is dropped. Other tensors sharing the data are unaffected.
  Tensor& detach_();

  // ---- methods mirroring ops.hpp ------------------------------------------------------
  // Each is the free function of the same name in ops.hpp with this tensor first (see there
  // for shapes, semantics and errors), as torch.Tensor's methods are. The one-dim overloads
  // of the reductions (x.sum(1), x.max(1)) take an integer; a brace list ({0, 1}) or nothing
  // picks the dims overload.
  Tensor sum(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor mean(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor prod(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor var(const std::vector<int64_t>& dims = {}, double correction = 1.0, bool keepdim = false) const;
  Tensor std(const std::vector<int64_t>& dims = {}, double correction = 1.0, bool keepdim = false) const;
  Tensor all(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor any(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  template <typename I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  Tensor sum(I dim, bool keepdim = false) const { return sum(std::vector<int64_t>{int64_t(dim)}, keepdim); }
  template <typename I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  Tensor mean(I dim, bool keepdim = false) const { return mean(std::vector<int64_t>{int64_t(dim)}, keepdim); }
  template <typename I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  Tensor prod(I dim, bool keepdim = false) const { return prod(std::vector<int64_t>{int64_t(dim)}, keepdim); }
  template <typename I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  Tensor var(I dim, double correction = 1.0, bool keepdim = false) const {
    return var(std::vector<int64_t>{int64_t(dim)}, correction, keepdim);
  }
  template <typename I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  Tensor std(I dim, double correction = 1.0, bool keepdim = false) const {
    return std(std::vector<int64_t>{int64_t(dim)}, correction, keepdim);
  }
  Tensor max() const;
  Tensor min() const;
  /// Values and int64 indices along dim: `auto [values, indices] = x.max(1);`.
  std::pair<Tensor, Tensor> max(int64_t dim, bool keepdim = false) const;
  std::pair<Tensor, Tensor> min(int64_t dim, bool keepdim = false) const;
  Tensor argmax() const;
  Tensor argmin() const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor argmin(int64_t dim, bool keepdim = false) const;
  Tensor matmul(const Tensor& other) const;
  Tensor mm(const Tensor& other) const;
  Tensor bmm(const Tensor& other) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor log1p() const;
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor abs() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor neg() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor square() const;
  Tensor clamp(double min, double max) const;
  Tensor clamp_min(double min) const;
  Tensor clamp_max(double max) const;
  Tensor pow(double exponent) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;
  Tensor add(const Tensor& other, double alpha = 1.0) const;
  Tensor add(double other) const;
  Tensor sub(const Tensor& other, double alpha = 1.0) const;
  Tensor sub(double other) const;
  Tensor mul(const Tensor& other) const;
  Tensor mul(double other) const;
  Tensor div(const Tensor& other) const;
  Tensor div(double other) const;
  Tensor maximum(const Tensor& other) const;
  Tensor minimum(const Tensor& other) const;
  Tensor eq(const Tensor& other) const;
  Tensor ne(const Tensor& other) const;
  Tensor lt(const Tensor& other) const;
  Tensor le(const Tensor& other) const;
  Tensor gt(const Tensor& other) const;
  Tensor ge(const Tensor& other) const;
  Tensor eq(double other) const;
  Tensor ne(double other) const;
  Tensor lt(double other) const;
  Tensor le(double other) const;
  Tensor gt(double other) const;
  Tensor ge(double other) const;
  Tensor logical_and(const Tensor& other) const;
  Tensor logical_or(const Tensor& other) const;
  /// torch.Tensor.where: condition ? this : other.
  Tensor where(const Tensor& condition, const Tensor& other) const;
  Tensor where(const Tensor& condition, double other) const;
  Tensor masked_fill(const Tensor& mask, double value) const;
  Tensor index_select(int64_t dim, const Tensor& index) const;
  Tensor gather(int64_t dim, const Tensor& index) const;
  Tensor scatter_add(int64_t dim, const Tensor& index, const Tensor& src) const;
  Tensor index_add(int64_t dim, const Tensor& index, const Tensor& src, double alpha = 1.0) const;
  Tensor tril(int64_t diagonal = 0) const;
  Tensor triu(int64_t diagonal = 0) const;
  std::pair<Tensor, Tensor> topk(int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true) const;
  Tensor unflatten(int64_t dim, const Shape& sizes) const;
  // The shape and dtype of another tensor.
  Tensor view_as(const Tensor& other) const { return view(other.shape()); }
  Tensor reshape_as(const Tensor& other) const { return reshape(other.shape()); }
  Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }
  Tensor type_as(const Tensor& other) const { return to(other.dtype()); }
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& add_(double value);
  Tensor& sub_(const Tensor& other);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double value);
  Tensor& div_(const Tensor& other);
  Tensor& div_(double value);

  /// PyTorch-style text: values (ellipsis beyond 1000 elements), dtype, device.
  std::string str() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

/// Whether a and b may refer to common bytes: same storage and intersecting address
/// ranges (numpy.may_share_memory). False when either is empty. Conservative: interleaved
/// views that never touch the same element still count.
bool may_share_memory(const Tensor& a, const Tensor& b);

// ---- factories (ops/factory.cpp) -----------------------------------------------------
struct TensorOptions {
  DType dtype = DType::Float32;
  Device device = Device::cpu();
  bool requires_grad = false;
  TensorOptions() = default;
  TensorOptions(DType d) : dtype(d) {}
  TensorOptions(Device dev) : device(dev) {}
  TensorOptions(DType d, Device dev) : dtype(d), device(dev) {}
  TensorOptions& with_requires_grad(bool r = true) { requires_grad = r; return *this; }
};

/// Uninitialised contiguous tensor. Throws ValueError for negative sizes.
Tensor empty(const Shape& shape, TensorOptions opts = {});
Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, double value, TensorOptions opts = {});
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
/// [start, end) with step, as torch.arange: int64 when start, end and step are all
/// integers, else float32. Throws ValueError for step 0 or of the wrong sign.
Tensor arange(double start, double end, double step = 1.0);
/// The same with an explicit dtype and device.
Tensor arange(double start, double end, double step, TensorOptions opts);
Tensor arange(double end);
Tensor arange(double end, TensorOptions opts);
/// steps values from start to end inclusive, evenly spaced, as torch.linspace: element i is
/// start + i * (end - start) / (steps - 1), computed from the nearer end so both ends are
/// exact (PyTorch's rule); steps = 1 gives [start]. Float32 by default; an integer dtype
/// truncates. Throws ValueError for steps < 0.
Tensor linspace(double start, double end, int64_t steps, TensorOptions opts = {});
/// base ** linspace(start, end, steps), as torch.logspace.
Tensor logspace(double start, double end, int64_t steps, double base = 10.0, TensorOptions opts = {});
/// The n x m identity (m = n when m < 0), as torch.eye. Throws ValueError for n < 0.
Tensor eye(int64_t n, int64_t m = -1, TensorOptions opts = {});
/// A random permutation of 0..n-1 (int64 by default), as torch.randperm: a Fisher-Yates
/// shuffle driven by the default generator (n Philox counters; index j for position i is
/// floor(u * (i + 1)) of a 64-bit uniform u, bias below 2^-32), so it is reproducible under
/// manual_seed and the same on every device. Throws ValueError for n < 0.
Tensor randperm(int64_t n, TensorOptions opts = {DType::Int64});
/// Copies values into a new CPU tensor of shape (numel must match) and moves it to opts.device.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts);
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  return from_vector(values, shape, TensorOptions(dtype_of_v<T>));
}
template <typename T>
Tensor from_vector(const std::vector<T>& values) {
  return from_vector(values, Shape{int64_t(values.size())});
}
/// A 0-dim tensor holding value.
Tensor scalar_tensor(double value, TensorOptions opts = {});
/// Wraps memory the caller owns (no copy). Lifetime: data must outlive every tensor and
/// view made from the result; Tessera never frees it. Strides default to contiguous.
Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device = Device::cpu(),
                 const Strides& strides = {});
/// The same, but Tessera owns the memory from then on: deleter(data) is called exactly once,
/// when the last tensor or view using it is destroyed (libtorch's from_blob with a deleter).
/// If from_blob throws, deleter is not called and the caller still owns data.
Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device, const Strides& strides,
                 std::function<void(void*)> deleter);
/// Uniform in [0, 1), from the default generator (Philox; same values on every device).
Tensor rand(const Shape& shape, TensorOptions opts = {});
/// Standard normal (Box-Muller on Philox output).
Tensor randn(const Shape& shape, TensorOptions opts = {});
/// Integers uniform in [low, high); dtype defaults to int64.
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts = {DType::Int64});
/// Uniform in [low, high).
Tensor uniform(const Shape& shape, double low, double high, TensorOptions opts = {});

}  // namespace tessera

// Tensor::index's argument type, so that x.index({...}) compiles with tensor.hpp alone.
#include "tessera/indexing.hpp"
