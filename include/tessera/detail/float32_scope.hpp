// For backend writers: runs a backend virtual that has no float16/bfloat16 kernel in float32
// and rounds each result once into its two-byte tensor.
//
//   if (is_reduced_floating_point(x.dtype())) {
//     detail::Float32Scope f;
//     conv2d_forward(f.in(x), f.in(w), f.in(bias), p, f.out(out));  // float32 kernel
//     return;                                                          // ~Float32Scope rounds out
//   }
//
// Elementwise, this gives the bits of computing each element in float and rounding once
// (what PyTorch's CPU kernels do through opmath_type); reductions, matmul and conv accumulate
// in float32 (or wider) and round the result once. Costs one float32 copy of each tensor.
#pragma once
#include <exception>
#include <initializer_list>
#include <utility>
#include <vector>

#include "tessera/backend.hpp"
#include "tessera/tensor.hpp"

namespace tessera::detail {

class Float32Scope {
 public:
  Float32Scope() = default;
  Float32Scope(const Float32Scope&) = delete;
  Float32Scope& operator=(const Float32Scope&) = delete;
  /// Writes every out()/inout() result back (rounding to its dtype), unless an exception is
  /// unwinding (then the targets keep their old values).
  ~Float32Scope() noexcept(false) {
    if (std::uncaught_exceptions() > uncaught_) return;
    for (auto& [f, target] : written_) backend_for(target.device()).copy(f, target);
  }

  /// A float32 copy of t when t is float16/bfloat16; t itself otherwise (also undefined t).
  Tensor in(const Tensor& t) {
    if (!t.defined() || !is_reduced_floating_point(t.dtype())) return t;
    Tensor f = empty_like_float32(t);
    backend_for(t.device()).copy(t, f);
    return f;
  }
  /// A contiguous float32 tensor of t's shape whose values are written into t at the end
  /// (t itself when not float16/bfloat16).
  Tensor out(const Tensor& t) {
    if (!t.defined() || !is_reduced_floating_point(t.dtype())) return t;
    Tensor f = empty_like_float32(t);
    written_.emplace_back(f, t);
    return f;
  }
  /// Both: read and updated in place (optimizer state).
  Tensor inout(const Tensor& t) {
    if (!t.defined() || !is_reduced_floating_point(t.dtype())) return t;
    Tensor f = in(t);
    written_.emplace_back(f, t);
    return f;
  }

 private:
  static Tensor empty_like_float32(const Tensor& t) {
    return empty(t.shape(), TensorOptions(DType::Float32, t.device()));
  }
  std::vector<std::pair<Tensor, Tensor>> written_;
  int uncaught_ = std::uncaught_exceptions();
};

/// Whether any defined tensor among ts is float16/bfloat16.
inline bool any_reduced(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->defined() && is_reduced_floating_point(t->dtype())) return true;
  return false;
}

}  // namespace tessera::detail
