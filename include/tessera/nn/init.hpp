// Parameter initialisation, as torch.nn.init. Every draw comes from the default generator
// (tessera::manual_seed), so a seeded program initialises the same weights on every run and
// on every device. The functions overwrite the tensor in place without recording autograd
// history, and return it.
#pragma once
#include <cstdint>
#include <string>
#include <utility>

#include "tessera/tensor.hpp"

namespace tessera::nn::init {

enum class FanMode { FanIn, FanOut };
enum class Nonlinearity { Linear, Conv2d, Sigmoid, Tanh, ReLU, LeakyReLU };

/// (fan_in, fan_out) of a weight of at least 2 dims: [out, in, k...] gives
/// (in * prod(k), out * prod(k)) (torch.nn.init._calculate_fan_in_and_fan_out).
/// Throws ShapeError for fewer than 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

/// The recommended gain of torch.nn.init.calculate_gain: 1 for linear/conv/sigmoid,
/// 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + a^2)) for leaky_relu with slope a.
double calculate_gain(Nonlinearity nonlinearity, double param = 0.01);

/// Fills t with U(low, high). Throws ValueError when low > high, DTypeError when t is not
/// floating point.
Tensor& uniform_(Tensor& t, double low = 0.0, double high = 1.0);
/// Fills t with N(mean, std^2).
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);

/// He et al. 2015 ("Delving Deep into Rectifiers"), uniform form:
/// U(-bound, bound), bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).
/// PyTorch's layers use a = sqrt(5) with leaky_relu, which gives bound = 1/sqrt(fan_in).
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                         Nonlinearity nonlinearity = Nonlinearity::LeakyReLU);
/// He et al. 2015, normal form: N(0, std^2), std = gain / sqrt(fan).
Tensor& kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                        Nonlinearity nonlinearity = Nonlinearity::LeakyReLU);
/// Glorot & Bengio 2010: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0);

}  // namespace tessera::nn::init
