// Shapes and strides (64-bit), broadcasting and dim wrapping.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tessera {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

/// Product of sizes (1 for a 0-dim shape, 0 when any size is 0). Throws ValueError for a
/// negative size, or when the product of the sizes, counting 0 as 1, overflows int64 (so
/// the row-major strides of every accepted shape fit in int64, whatever the order).
int64_t shape_numel(const Shape& shape);
/// shape_numel without throwing: the number of elements, or nullopt when a size is negative
/// or the product of the sizes, counting 0 as 1, overflows int64. The one place that rule
/// is written; views, factories and the file readers all apply it.
std::optional<int64_t> try_shape_numel(const Shape& shape);
/// Row-major (C order) strides, in elements, for a contiguous tensor of this shape (a size
/// of 0 counts as 1). Throws ValueError when a stride overflows int64.
Strides contiguous_strides(const Shape& shape);
/// "[2, 3, 4]".
std::string shape_str(const Shape& shape);
/// Wraps a possibly negative dim into [0, ndim). Throws IndexError naming op if out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op = "dim");
/// NumPy/PyTorch broadcast of two shapes: align right; sizes must match or one be 1.
/// Throws ShapeError naming op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

}  // namespace tessera
