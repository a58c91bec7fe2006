#include "tessera/shape.hpp"

#include <algorithm>

#include "tessera/error.hpp"

namespace tessera {

std::optional<int64_t> try_shape_numel(const Shape& shape) {
  // Every size is checked, whatever its position: [0, -1] is as invalid as [-1, 0], and
  // [2^62, 2^62, 0] is rejected like [0, 2^62, 2^62] (its row-major strides overflow).
  int64_t span = 1;
  bool empty = false;
  for (int64_t s : shape) {
    if (s < 0 || __builtin_mul_overflow(span, std::max<int64_t>(s, 1), &span)) return std::nullopt;
    if (s == 0) empty = true;
  }
  return empty ? 0 : span;
}

int64_t shape_numel(const Shape& shape) {
  for (int64_t s : shape) TESSERA_CHECK(s >= 0, ValueError, "negative size in shape ", shape_str(shape));
  const auto n = try_shape_numel(shape);
  TESSERA_CHECK(n, ValueError, "shape ", shape_str(shape),
                " has more than 2^63 elements (the product of its sizes overflows int64)");
  return *n;
}

Strides contiguous_strides(const Shape& shape) {
  Strides st(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    if (i > 0)
      TESSERA_CHECK(!__builtin_mul_overflow(s, std::max<int64_t>(shape[i], 1), &s), ValueError, "shape ",
                    shape_str(shape), " has more than 2^63 elements (its strides overflow int64)");
  }
  return st;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  TESSERA_CHECK(dim >= lo && dim <= hi, IndexError, op, ": dim ", dim, " out of range for a tensor of ",
                ndim, " dims (expected ", lo, " to ", hi, ")");
  if (dim < 0) dim += std::max<int64_t>(ndim, 1);
  return dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TESSERA_CHECK(sa == sb || sa == 1 || sb == 1, ShapeError, op, ": shapes ", shape_str(a), " and ",
                  shape_str(b), " cannot be broadcast (dim ", i, ": ", sa, " vs ", sb,
                  "; sizes must match or one be 1)");
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

}  // namespace tessera
