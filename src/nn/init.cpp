// torch.nn.init equivalents, drawing from the default generator.
#include "tessera/nn/init.hpp"

#include <cmath>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"
#include "tessera/ops.hpp"

namespace tessera::nn::init {

namespace {
void check_float(const Tensor& t, const char* op) {
  TESSERA_CHECK(t.defined(), ValueError, "nn::init::", op, ": undefined tensor");
  TESSERA_CHECK(is_floating_point(t.dtype()), DTypeError, "nn::init::", op,
                ": expected a floating-point tensor, got ", dtype_name(t.dtype()));
}

// Copies values into t's memory without recording history (t may be a leaf that requires grad).
void assign(Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  Tensor dst = t.detach();
  dst.copy_(values);
}
}  // namespace

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  TESSERA_CHECK(t.dim() >= 2, ShapeError,
                "nn::init: fan in and fan out need a tensor of at least 2 dims, got shape ", shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::Linear:
    case Nonlinearity::Conv2d:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::Tanh: return 5.0 / 3.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: return std::sqrt(2.0 / (1.0 + param * param));
  }
  return 1.0;
}

Tensor& uniform_(Tensor& t, double low, double high) {
  check_float(t, "uniform_");
  TESSERA_CHECK(low <= high, ValueError, "nn::init::uniform_: low (", low, ") > high (", high, ")");
  assign(t, uniform(t.shape(), low, high, TensorOptions(t.dtype(), t.device())));
  return t;
}

Tensor& normal_(Tensor& t, double mean, double std) {
  check_float(t, "normal_");
  TESSERA_CHECK(std >= 0, ValueError, "nn::init::normal_: std must be >= 0, got ", std);
  Tensor z = randn(t.shape(), TensorOptions(t.dtype(), t.device()));
  NoGradGuard no_grad;
  assign(t, add(mul(z, std), mean));
  return t;
}

Tensor& constant_(Tensor& t, double value) {
  TESSERA_CHECK(t.defined(), ValueError, "nn::init::constant_: undefined tensor");
  NoGradGuard no_grad;
  Tensor dst = t.detach();
  dst.fill_(value);
  return t;
}
Tensor& zeros_(Tensor& t) { return constant_(t, 0.0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1.0); }

namespace {
double kaiming_std(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  TESSERA_CHECK(fan > 0, ShapeError, "nn::init::kaiming: zero fan for shape ", shape_str(t.shape()));
  return calculate_gain(nonlinearity, a) / std::sqrt(double(fan));
}
}  // namespace

Tensor& kaiming_uniform_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
  check_float(t, "kaiming_uniform_");
  double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  return uniform_(t, -bound, bound);
}

Tensor& kaiming_normal_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
  check_float(t, "kaiming_normal_");
  return normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity));
}

Tensor& xavier_uniform_(Tensor& t, double gain) {
  check_float(t, "xavier_uniform_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  TESSERA_CHECK(fan_in + fan_out > 0, ShapeError, "nn::init::xavier_uniform_: zero fans for shape ",
                shape_str(t.shape()));
  double bound = gain * std::sqrt(6.0 / double(fan_in + fan_out));
  return uniform_(t, -bound, bound);
}

}  // namespace tessera::nn::init
