// Tensor factories.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/backend.hpp"
#include "tessera/random.hpp"
#include "tessera/tensor.hpp"

namespace tessera {

namespace {
Tensor finish(Tensor t, const TensorOptions& opts) {
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}

/// shape_numel with the op's name in front of its message.
int64_t checked_numel(const Shape& shape, const char* op) {
  try {
    return shape_numel(shape);
  } catch (const ValueError& e) {
    throw ValueError(detail::str_cat(op, ": ", e.what()));
  }
}
}  // namespace

Tensor empty(const Shape& shape, TensorOptions opts) {
  for (int64_t s : shape)
    TESSERA_CHECK(s >= 0, ValueError, "empty: negative size in shape ", shape_str(shape));
  int64_t n = checked_numel(shape, "empty");
  // Byte counts and offsets are ptrdiff_t-sized everywhere (allocators round them up), so
  // a storage may hold at most PTRDIFF_MAX bytes.
  std::size_t bytes = 0;
  TESSERA_CHECK(!__builtin_mul_overflow(std::size_t(n), itemsize(opts.dtype), &bytes) &&
                    bytes <= std::size_t(PTRDIFF_MAX),
                ValueError, "empty: shape ", shape_str(shape), " of ", dtype_name(opts.dtype),
                " overflows the byte count (more than 2^63 - 1 bytes)");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(bytes, opts.device);
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opts.dtype;
  return finish(Tensor(std::move(impl)), opts);
}

Tensor full(const Shape& shape, double value, TensorOptions opts) {
  bool rg = opts.requires_grad;
  opts.requires_grad = false;
  Tensor t = empty(shape, opts);
  t.fill_(value);
  if (rg) t.requires_grad_(true);
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions opts) { return full(shape, 0.0, opts); }
Tensor ones(const Shape& shape, TensorOptions opts) { return full(shape, 1.0, opts); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), TensorOptions(t.dtype(), t.device())); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), TensorOptions(t.dtype(), t.device())); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), TensorOptions(t.dtype(), t.device())); }
Tensor full_like(const Tensor& t, double v) { return full(t.shape(), v, TensorOptions(t.dtype(), t.device())); }
Tensor scalar_tensor(double value, TensorOptions opts) { return full({}, value, opts); }

Tensor arange(double start, double end, double step, TensorOptions opts) {
  TESSERA_CHECK(step != 0 && std::isfinite(step), ValueError, "arange: step must be finite and non-zero, got ", step);
  TESSERA_CHECK(std::isfinite(start) && std::isfinite(end), ValueError, "arange: start and end must be finite");
  TESSERA_CHECK((end - start) / step >= 0 || start == end, ValueError, "arange: step ", step,
                " has the wrong sign for [", start, ", ", end, ")");
  const double count = std::ceil((end - start) / step);
  TESSERA_CHECK(count < 9223372036854775808.0, ValueError, "arange: [", start, ", ", end, ") with step ", step,
                " has ", count, " elements, more than 2^63 - 1");
  const int64_t n = count > 0 ? int64_t(count) : 0;
  Tensor t = empty({n}, TensorOptions(DType::Float64));
  double* p = t.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = start + double(i) * step;
  Tensor out = t.to(opts.device, opts.dtype);
  return finish(out, opts);
}
Tensor arange(double end, TensorOptions opts) { return arange(0, end, 1, opts); }
Tensor arange(double start, double end, double step) {
  auto integral = [](double v) { return std::isfinite(v) && v == std::floor(v); };
  DType dt = integral(start) && integral(end) && integral(step) ? DType::Int64 : DType::Float32;
  return arange(start, end, step, TensorOptions(dt));
}
Tensor arange(double end) { return arange(0, end, 1); }

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts) {
  const int64_t n = checked_numel(shape, "from_vector");
  TESSERA_CHECK(n == int64_t(values.size()), ShapeError, "from_vector: ", values.size(),
                " values do not fill shape ", shape_str(shape), " (", n, " elements)");
  Tensor t = empty(shape, TensorOptions(dtype_of_v<T>));
  if constexpr (std::is_same_v<T, bool>) {
    bool* p = t.data_ptr<bool>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  } else {
    if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  }
  bool rg = opts.requires_grad;
  Tensor out = t.to(opts.device, opts.dtype);
  if (rg) out.requires_grad_(true);
  return out;
}
#define TESSERA_FROM_VECTOR(E, T, N, C, K) template Tensor from_vector(const std::vector<T>&, const Shape&, TensorOptions);
TESSERA_FORALL_DTYPES(TESSERA_FROM_VECTOR)
#undef TESSERA_FROM_VECTOR

Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device, const Strides& strides) {
  return from_blob(data, shape, dtype, device, strides, nullptr);
}

Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device, const Strides& strides,
                 std::function<void(void*)> deleter) {
  const int64_t n = checked_numel(shape, "from_blob");
  TESSERA_CHECK(data != nullptr || n == 0, ValueError, "from_blob: null data pointer for shape ", shape_str(shape));
  TESSERA_CHECK(strides.empty() || strides.size() == shape.size(), ShapeError, "from_blob: ", strides.size(),
                " strides for shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  Strides st = strides.empty() ? contiguous_strides(shape) : strides;
  int64_t extent = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    TESSERA_CHECK(st[i] >= 0, ValueError, "from_blob: negative stride in ", shape_str(st));
    int64_t span = 0;
    TESSERA_CHECK(shape[i] == 0 || (!__builtin_mul_overflow(shape[i] - 1, st[i], &span) &&
                                    !__builtin_add_overflow(extent, span, &extent)),
                  ValueError, "from_blob: shape ", shape_str(shape), " with strides ", shape_str(st),
                  " reaches more than 2^63 - 1 elements past data");
  }
  if (n == 0) extent = 0;
  std::size_t bytes = 0;
  TESSERA_CHECK(!__builtin_mul_overflow(std::size_t(extent), itemsize(dtype), &bytes) &&
                    bytes <= std::size_t(PTRDIFF_MAX),
                ValueError, "from_blob: shape ", shape_str(shape), " with strides ", shape_str(st), " of ",
                dtype_name(dtype), " spans more than 2^63 - 1 bytes");
  impl->storage = std::make_shared<Storage>(data, bytes, device, std::move(deleter));
  impl->sizes = shape;
  impl->strides = st;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

namespace {
Tensor random_tensor(RandomKind kind, const Shape& shape, double a, double b, TensorOptions opts, const char* op) {
  bool rg = opts.requires_grad;
  opts.requires_grad = false;
  Tensor t = empty(shape, opts);
  Generator& g = default_generator();
  uint64_t offset = g.advance(uint64_t(t.numel()));
  if (t.numel() > 0) backend_for(t.device()).random(kind, t, g.seed(), offset, a, b);
  (void)op;
  if (rg) t.requires_grad_(true);
  return t;
}
}  // namespace

Tensor rand(const Shape& shape, TensorOptions opts) {
  TESSERA_CHECK(is_floating_point(opts.dtype), DTypeError, "rand: expects a float dtype, got ", dtype_name(opts.dtype));
  return random_tensor(RandomKind::Uniform, shape, 0.0, 1.0, opts, "rand");
}
Tensor uniform(const Shape& shape, double low, double high, TensorOptions opts) {
  TESSERA_CHECK(is_floating_point(opts.dtype), DTypeError, "uniform: expects a float dtype, got ",
                dtype_name(opts.dtype));
  TESSERA_CHECK(low <= high, ValueError, "uniform: low ", low, " > high ", high);
  return random_tensor(RandomKind::Uniform, shape, low, high, opts, "uniform");
}
Tensor randn(const Shape& shape, TensorOptions opts) {
  TESSERA_CHECK(is_floating_point(opts.dtype), DTypeError, "randn: expects a float dtype, got ", dtype_name(opts.dtype));
  return random_tensor(RandomKind::Normal, shape, 0.0, 1.0, opts, "randn");
}
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts) {
  TESSERA_CHECK(low < high, ValueError, "randint: low ", low, " must be < high ", high);
  return random_tensor(RandomKind::RandInt, shape, double(low), double(high), opts, "randint");
}

// ---- linspace, logspace, eye, randperm: built on the host, then moved ----------------------

namespace {
std::vector<double> values_of_linspace(double start, double end, int64_t steps) {
  std::vector<double> v(static_cast<std::size_t>(steps));
  if (steps == 1) v[0] = start;
  if (steps > 1) {
    const double step = (end - start) / double(steps - 1);
    const int64_t half = steps / 2;
    for (int64_t i = 0; i < steps; ++i)
      v[std::size_t(i)] = i < half ? start + step * double(i) : end - step * double(steps - 1 - i);
  }
  return v;
}

Tensor from_host(const std::vector<double>& v, const Shape& shape, const TensorOptions& opts) {
  Tensor t = from_vector<double>(v, shape).to(opts.device, opts.dtype);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}
}  // namespace

Tensor linspace(double start, double end, int64_t steps, TensorOptions opts) {
  TESSERA_CHECK(steps >= 0, ValueError, "linspace: number of steps must be non-negative, got ", steps);
  return from_host(values_of_linspace(start, end, steps), Shape{steps}, opts);
}

Tensor logspace(double start, double end, int64_t steps, double base, TensorOptions opts) {
  TESSERA_CHECK(steps >= 0, ValueError, "logspace: number of steps must be non-negative, got ", steps);
  std::vector<double> v = values_of_linspace(start, end, steps);
  for (double& e : v) e = std::pow(base, e);
  return from_host(v, Shape{steps}, opts);
}

Tensor eye(int64_t n, int64_t m, TensorOptions opts) {
  if (m < 0) m = n;
  TESSERA_CHECK(n >= 0, ValueError, "eye: n must be non-negative, got ", n);
  std::vector<double> v(static_cast<std::size_t>(n * m), 0.0);
  for (int64_t i = 0; i < std::min(n, m); ++i) v[std::size_t(i * m + i)] = 1.0;
  return from_host(v, Shape{n, m}, opts);
}

Tensor randperm(int64_t n, TensorOptions opts) {
  TESSERA_CHECK(n >= 0, ValueError, "randperm: n must be non-negative, got ", n);
  TESSERA_CHECK(n <= (int64_t(1) << 53), ValueError, "randperm: n = ", n, " is above 2^53");
  std::vector<double> v(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[std::size_t(i)] = double(i);
  Generator& g = default_generator();
  const uint64_t offset = g.advance(uint64_t(n));
  for (int64_t i = n - 1; i > 0; --i) {
    const Philox4x32 r = philox_block(g.seed(), offset, uint64_t(i));
    const uint64_t u = uint64_t(r.v[0]) << 32 | r.v[1];
    const auto j = int64_t((unsigned __int128)u * uint64_t(i + 1) >> 64);
    std::swap(v[std::size_t(i)], v[std::size_t(j)]);
  }
  return from_host(v, Shape{n}, opts);
}

}  // namespace tessera
