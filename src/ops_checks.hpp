// Internal to the ops (src/ops_*.cpp): argument checks whose messages name the op, and the
// autograd helpers the ops share.
#pragma once
#include <initializer_list>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"
#include "tessera/tensor.hpp"

namespace tessera::ops_detail {

inline bool needs_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }

/// Whether grad mode is on and any of the tensors requires grad.
inline bool recording(std::initializer_list<const Tensor*> ts) {
  if (!autograd::grad_mode_enabled()) return false;
  for (const Tensor* t : ts)
    if (needs_grad(*t)) return true;
  return false;
}

/// Same data without history, contiguous (a copy only when the input is strided).
inline Tensor plain(const Tensor& t) { return t.defined() ? t.detach().contiguous() : Tensor(); }

inline void check_defined(const Tensor& t, const char* op, const char* what) {
  TESSERA_CHECK(t.defined(), ValueError, op, ": ", what, " is an undefined tensor");
}

inline void check_float(const Tensor& t, const char* op, const char* what) {
  TESSERA_CHECK(is_floating_point(t.dtype()), DTypeError, op, ": ", what, " must be float32 or float64, got ",
                dtype_name(t.dtype()), " (shape ", shape_str(t.shape()), ")");
}

inline void check_same_dtype(const Tensor& x, const Tensor& other, const char* op, const char* what) {
  TESSERA_CHECK(other.dtype() == x.dtype(), DTypeError, op, ": ", what, " has dtype ", dtype_name(other.dtype()),
                " but input has dtype ", dtype_name(x.dtype()), " (input ", shape_str(x.shape()), ", ", what, " ",
                shape_str(other.shape()), ")");
}

inline void check_same_device(const Tensor& x, const Tensor& other, const char* op, const char* what) {
  TESSERA_CHECK(other.device() == x.device(), DeviceError, op, ": input is on ", x.device().str(), " but ", what,
                " is on ", other.device().str(), "; move both to one device with .to(device)");
}

}  // namespace tessera::ops_detail
