// conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d: forward against direct float64 loops
// written here, hand-worked cases, gradcheck of every input, and error messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/autograd/gradcheck.hpp"
#include "tessera/ops.hpp"
#include "tessera/random.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using tessera::testing::values_of;
using tessera::testing::random_tensor;

namespace {

using IntPair = std::pair<int64_t, int64_t>;

void require_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    REQUIRE(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
  }
}

// ---- direct references ----------------------------------------------------------------

struct ConvCase {
  Shape x, w;
  bool bias;
  IntPair stride, padding, dilation;
  int64_t groups;
};

/// out[n, o, i, j] = b[o] + sum_{c, ki, kj} x[n, g*Cg + c, i*s - p + ki*d, j*s - p + kj*d] * w[o, c, ki, kj].
std::vector<double> direct_conv2d(const std::vector<double>& x, const Shape& xs, const std::vector<double>& w,
                                  const Shape& ws, const std::vector<double>* b, const ConvCase& cc, Shape& os) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
  const int64_t O = ws[0], Cg = ws[1], kH = ws[2], kW = ws[3];
  const int64_t OH = (H + 2 * cc.padding.first - cc.dilation.first * (kH - 1) - 1) / cc.stride.first + 1;
  const int64_t OW = (W + 2 * cc.padding.second - cc.dilation.second * (kW - 1) - 1) / cc.stride.second + 1;
  os = Shape{N, O, OH, OW};
  const int64_t Og = O / cc.groups;
  std::vector<double> out(std::size_t(N * O * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          double s = b ? (*b)[std::size_t(o)] : 0.0;
          const int64_t g = o / Og;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t ki = 0; ki < kH; ++ki)
              for (int64_t kj = 0; kj < kW; ++kj) {
                const int64_t ih = i * cc.stride.first - cc.padding.first + ki * cc.dilation.first;
                const int64_t iw = j * cc.stride.second - cc.padding.second + kj * cc.dilation.second;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += x[std::size_t(((n * C + g * Cg + c) * H + ih) * W + iw)] *
                     w[std::size_t(((o * Cg + c) * kH + ki) * kW + kj)];
              }
          out[std::size_t(((n * O + o) * OH + i) * OW + j)] = s;
        }
  return out;
}

int64_t ref_pool_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const double span = double(in + 2 * p - d * (k - 1) - 1) / double(s);
  int64_t out = int64_t(ceil_mode ? std::ceil(span) : std::floor(span)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;  // last window must start inside
  return out;
}

struct PoolCase {
  Shape x;
  IntPair kernel, stride, padding, dilation;
  bool ceil_mode;
  bool count_include_pad;
};

std::vector<double> direct_max_pool(const std::vector<double>& x, const PoolCase& pc, Shape& os) {
  const int64_t N = pc.x[0], C = pc.x[1], H = pc.x[2], W = pc.x[3];
  const int64_t OH = ref_pool_size(H, pc.kernel.first, pc.stride.first, pc.padding.first, pc.dilation.first, pc.ceil_mode);
  const int64_t OW = ref_pool_size(W, pc.kernel.second, pc.stride.second, pc.padding.second, pc.dilation.second, pc.ceil_mode);
  os = Shape{N, C, OH, OW};
  std::vector<double> out;
  for (int64_t pl = 0; pl < N * C; ++pl)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t ki = 0; ki < pc.kernel.first; ++ki)
          for (int64_t kj = 0; kj < pc.kernel.second; ++kj) {
            const int64_t ih = i * pc.stride.first - pc.padding.first + ki * pc.dilation.first;
            const int64_t iw = j * pc.stride.second - pc.padding.second + kj * pc.dilation.second;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            m = std::max(m, x[std::size_t((pl * H + ih) * W + iw)]);
          }
        out.push_back(m);
      }
  return out;
}

std::vector<double> direct_avg_pool(const std::vector<double>& x, const PoolCase& pc, Shape& os) {
  const int64_t N = pc.x[0], C = pc.x[1], H = pc.x[2], W = pc.x[3];
  const int64_t OH = ref_pool_size(H, pc.kernel.first, pc.stride.first, pc.padding.first, 1, pc.ceil_mode);
  const int64_t OW = ref_pool_size(W, pc.kernel.second, pc.stride.second, pc.padding.second, 1, pc.ceil_mode);
  os = Shape{N, C, OH, OW};
  std::vector<double> out;
  for (int64_t pl = 0; pl < N * C; ++pl)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        double s = 0;
        int64_t inside = 0, in_padded = 0;
        for (int64_t ki = 0; ki < pc.kernel.first; ++ki)
          for (int64_t kj = 0; kj < pc.kernel.second; ++kj) {
            const int64_t ih = i * pc.stride.first - pc.padding.first + ki;
            const int64_t iw = j * pc.stride.second - pc.padding.second + kj;
            // Window cells past the right/bottom padding do not count (PyTorch).
            if (ih >= H + pc.padding.first || iw >= W + pc.padding.second) continue;
            ++in_padded;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            ++inside;
            s += x[std::size_t((pl * H + ih) * W + iw)];
          }
        out.push_back(s / double(pc.count_include_pad ? in_padded : inside));
      }
  return out;
}

std::vector<double> direct_adaptive_avg(const std::vector<double>& x, const Shape& xs, int64_t OH, int64_t OW) {
  const int64_t P = xs[0] * xs[1], H = xs[2], W = xs[3];
  std::vector<double> out;
  for (int64_t pl = 0; pl < P; ++pl)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        const int64_t h0 = int64_t(std::floor(double(i * H) / double(OH)));
        const int64_t h1 = int64_t(std::ceil(double((i + 1) * H) / double(OH)));
        const int64_t w0 = int64_t(std::floor(double(j * W) / double(OW)));
        const int64_t w1 = int64_t(std::ceil(double((j + 1) * W) / double(OW)));
        double s = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += x[std::size_t((pl * H + ih) * W + iw)];
        out.push_back(s / double((h1 - h0) * (w1 - w0)));
      }
  return out;
}

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases = {
      {{2, 3, 7, 7}, {4, 3, 3, 3}, true, {1, 1}, {0, 0}, {1, 1}, 1},    // plain 3x3
      {{2, 3, 8, 9}, {5, 3, 3, 3}, true, {2, 2}, {1, 1}, {1, 1}, 1},    // stride 2, padding
      {{1, 2, 9, 8}, {3, 2, 3, 3}, true, {1, 1}, {2, 2}, {2, 2}, 1},    // dilation 2
      {{2, 4, 6, 6}, {6, 2, 3, 3}, true, {1, 1}, {1, 1}, {1, 1}, 2},    // groups 2
      {{2, 3, 5, 5}, {4, 3, 1, 1}, false, {1, 1}, {0, 0}, {1, 1}, 1},   // 1x1, no bias
      {{2, 3, 7, 10}, {4, 3, 2, 4}, true, {2, 1}, {1, 0}, {1, 2}, 1},   // non-square everything
      {{3, 2, 6, 7}, {3, 2, 1, 1}, true, {2, 2}, {0, 0}, {1, 1}, 1},    // 1x1 with stride 2
      {{1, 3, 5, 5}, {3, 1, 3, 3}, false, {1, 1}, {1, 1}, {1, 1}, 3},   // depthwise, batch 1
      {{2, 2, 4, 4}, {2, 1, 3, 3}, true, {3, 3}, {2, 2}, {1, 1}, 2},    // stride > kernel reach
      {{2, 4, 9, 8}, {4, 2, 3, 3}, false, {1, 1}, {0, 0}, {2, 2}, 2},   // stride 1, no padding, groups, dilation
      {{1, 3, 6, 9}, {2, 3, 2, 4}, true, {1, 1}, {0, 0}, {1, 1}, 1},    // stride 1, no padding, non-square
  };
  return cases;
}

std::string case_name(const ConvCase& c) {
  return detail::str_cat("x ", shape_str(c.x), " w ", shape_str(c.w), " bias ", c.bias, " stride (", c.stride.first,
                         ",", c.stride.second, ") pad (", c.padding.first, ",", c.padding.second, ") dil (",
                         c.dilation.first, ",", c.dilation.second, ") groups ", c.groups);
}

}  // namespace

// ---- conv2d ----------------------------------------------------------------------------

TEST_CASE("conv2d forward matches a direct convolution", "[nn][conv]") {
  manual_seed(11);
  for (DType dt : {kFloat64, kFloat32}) {
    for (const ConvCase& cc : conv_cases()) {
      INFO(case_name(cc) << " dtype " << dtype_name(dt));
      const Tensor x = random_tensor(cc.x, dt), w = random_tensor(cc.w, dt);
      const Tensor b = cc.bias ? random_tensor({cc.w[0]}, dt) : Tensor();
      const Tensor y = conv2d(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
      const std::vector<double> bv = cc.bias ? values_of(b) : std::vector<double>();
      Shape os;
      const std::vector<double> want =
          direct_conv2d(values_of(x), cc.x, values_of(w), cc.w, cc.bias ? &bv : nullptr, cc, os);
      REQUIRE(y.shape() == os);
      REQUIRE(y.dtype() == dt);
      require_close(values_of(y), want, dt == kFloat64 ? 1e-12 : 1e-5);
    }
  }
}

TEST_CASE("conv2d hand-worked values and gradients", "[nn][conv]") {
  const Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  // w = [[1, 0], [0, -1]]: out[i, j] = x[i, j] - x[i+1, j+1] = -4 everywhere, +0.5 bias.
  const Tensor w = from_vector<double>({1, 0, 0, -1}, {1, 1, 2, 2});
  const Tensor b = from_vector<double>({0.5}, {1});
  REQUIRE(values_of(conv2d(x, w, b)) == std::vector<double>{-3.5, -3.5, -3.5, -3.5});

  // 3x3 ones with padding 1: neighbourhood sums.
  const Tensor ones3 = ones({1, 1, 3, 3}, TensorOptions(kFloat64));
  REQUIRE(values_of(conv2d(x, ones3, Tensor(), {1, 1}, {1, 1})) ==
          std::vector<double>{12, 21, 16, 27, 45, 33, 24, 39, 28});

  // Gradients of sum(conv2d(x, ones 2x2) + b).
  Tensor xg = x.clone();
  xg.requires_grad_(true);
  Tensor wg = ones({1, 1, 2, 2}, TensorOptions(kFloat64));
  wg.requires_grad_(true);
  Tensor bg = zeros({1}, TensorOptions(kFloat64));
  bg.requires_grad_(true);
  conv2d(xg, wg, bg).sum().backward();
  REQUIRE(values_of(xg.grad()) == std::vector<double>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  REQUIRE(values_of(wg.grad()) == std::vector<double>{12, 16, 24, 28});
  REQUIRE(values_of(bg.grad()) == std::vector<double>{4});

  // An inf in the input makes only the weight gradient that multiplies it non-finite:
  // x [3, 4], 3x3 kernel, outputs (0, 0) and (0, 1); x[1][3] meets only w[1][2].
  std::vector<double> xv(12);
  for (std::size_t i = 0; i < xv.size(); ++i) xv[i] = 0.1 * double(i);
  xv[1 * 4 + 3] = std::numeric_limits<double>::infinity();
  Tensor wi = ones({1, 1, 3, 3}, TensorOptions(kFloat64));
  wi.requires_grad_(true);
  conv2d(from_vector<double>(xv, {1, 1, 3, 4}), wi).sum().backward();
  const auto gwi = values_of(wi.grad());
  for (std::size_t i = 0; i < gwi.size(); ++i) {
    INFO("grad_w element " << i << " = " << gwi[i]);
    REQUIRE(std::isfinite(gwi[i]) == (i != 1 * 3 + 2));
  }
}

TEST_CASE("conv2d gradcheck for input, weight and bias", "[nn][conv][gradcheck]") {
  manual_seed(12);
  for (const ConvCase& cc : conv_cases()) {
    INFO(case_name(cc));
    std::vector<Tensor> in{random_tensor(cc.x, kFloat64, true), random_tensor(cc.w, kFloat64, true)};
    if (cc.bias) in.push_back(random_tensor({cc.w[0]}, kFloat64, true));
    const ConvCase c = cc;
    REQUIRE(gradcheck(
        [c](const std::vector<Tensor>& v) {
          return conv2d(v[0], v[1], c.bias ? v[2] : Tensor(), c.stride, c.padding, c.dilation, c.groups);
        },
        in));
  }
}

TEST_CASE("conv2d float32 gradients agree with float64", "[nn][conv]") {
  manual_seed(13);
  for (const ConvCase& cc : conv_cases()) {
    INFO(case_name(cc));
    const Tensor x64 = random_tensor(cc.x, kFloat64), w64 = random_tensor(cc.w, kFloat64);
    const Tensor b64 = random_tensor({cc.w[0]}, kFloat64);
    std::vector<std::vector<double>> grads[2];
    int k = 0;
    for (DType dt : {kFloat64, kFloat32}) {
      Tensor x = x64.detach().to(dt), w = w64.detach().to(dt), b = b64.detach().to(dt);
      x.requires_grad_(true);
      w.requires_grad_(true);
      b.requires_grad_(true);
      const Tensor y = conv2d(x, w, cc.bias ? b : Tensor(), cc.stride, cc.padding, cc.dilation, cc.groups);
      // Weighted sum so every output position carries a different gradient.
      const Tensor r = arange(0, double(y.numel()), 1, TensorOptions(dt)).reshape(y.shape()) * 0.01;
      (y * r).sum().backward();
      grads[k].push_back(values_of(x.grad()));
      grads[k].push_back(values_of(w.grad()));
      if (cc.bias) grads[k].push_back(values_of(b.grad()));
      ++k;
    }
    for (std::size_t i = 0; i < grads[0].size(); ++i) require_close(grads[1][i], grads[0][i], 1e-4);
  }
}

TEST_CASE("conv2d batch of the MNIST net's second layer matches the direct loops", "[nn][conv]") {
  manual_seed(14);
  const ConvCase cc{{5, 32, 26, 26}, {64, 32, 3, 3}, true, {1, 1}, {0, 0}, {1, 1}, 1};
  const Tensor x = random_tensor(cc.x, kFloat32), w = random_tensor(cc.w, kFloat32) * 0.1,
               b = random_tensor({64}, kFloat32);
  const std::vector<double> bv = values_of(b);
  Shape os;
  const auto want = direct_conv2d(values_of(x), cc.x, values_of(w), cc.w, &bv, cc, os);
  require_close(values_of(conv2d(x, w, b)), want, 1e-4);
}

TEST_CASE("conv2d rejects bad arguments with clear errors", "[nn][conv][errors]") {
  const Tensor x = randn({1, 3, 5, 5}), w = randn({4, 3, 3, 3});
  REQUIRE_THROWS_AS(conv2d(randn({3, 5, 5}), w), ShapeError);
  REQUIRE_THROWS_WITH(conv2d(randn({3, 5, 5}), w), Contains("conv2d") && Contains("[3, 5, 5]"));
  REQUIRE_THROWS_AS(conv2d(x, randn({4, 3, 3})), ShapeError);
  // Channel mismatch: the weight expects 2 input channels.
  REQUIRE_THROWS_AS(conv2d(x, randn({4, 2, 3, 3})), ShapeError);
  REQUIRE_THROWS_WITH(conv2d(x, randn({4, 2, 3, 3})),
                      Contains("C_in=3") && Contains("[4, 2, 3, 3]") && Contains("expects 2"));
  // groups=3 does not divide C_in=4.
  REQUIRE_THROWS_AS(conv2d(randn({1, 4, 5, 5}), randn({6, 1, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 3),
                    ValueError);
  REQUIRE_THROWS_WITH(conv2d(randn({1, 4, 5, 5}), randn({6, 1, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 3),
                      Contains("groups=3") && Contains("C_in=4"));
  // Kernel larger than the padded input.
  REQUIRE_THROWS_AS(conv2d(randn({1, 1, 3, 3}), randn({1, 1, 5, 5})), ShapeError);
  REQUIRE_THROWS_WITH(conv2d(randn({1, 1, 3, 3}), randn({1, 1, 5, 5})),
                      Contains("larger than the padded input 3x3"));
  REQUIRE_NOTHROW(conv2d(randn({1, 1, 3, 3}), randn({1, 1, 5, 5}), Tensor(), {1, 1}, {1, 1}));
  // Dilation makes a 3x3 kernel span 5x5.
  REQUIRE_THROWS_AS(conv2d(randn({1, 1, 4, 4}), randn({1, 1, 3, 3}), Tensor(), {1, 1}, {0, 0}, {2, 2}), ShapeError);
  // dtype mismatch.
  REQUIRE_THROWS_AS(conv2d(x, w.to(kFloat64)), DTypeError);
  REQUIRE_THROWS_WITH(conv2d(x, w.to(kFloat64)), Contains("conv2d") && Contains("float64") && Contains("float32"));
  REQUIRE_THROWS_AS(conv2d(x.to(kInt64), w.to(kInt64)), DTypeError);
  // bias of the wrong size or dtype.
  REQUIRE_THROWS_AS(conv2d(x, w, randn({3})), ShapeError);
  REQUIRE_THROWS_WITH(conv2d(x, w, randn({3})), Contains("bias") && Contains("[4]"));
  REQUIRE_THROWS_AS(conv2d(x, w, randn({4}, TensorOptions(kFloat64))), DTypeError);
  // Bad hyper-parameters.
  REQUIRE_THROWS_AS(conv2d(x, w, Tensor(), {0, 1}), ValueError);
  REQUIRE_THROWS_AS(conv2d(x, w, Tensor(), {1, 1}, {-1, 0}), ValueError);
  REQUIRE_THROWS_AS(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {0, 1}), ValueError);
  REQUIRE_THROWS_AS(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, 1}, 0), ValueError);
  REQUIRE_THROWS_AS(conv2d(Tensor(), w), ValueError);
}

TEST_CASE("conv2d rejects tensors on different devices", "[nn][conv][errors]") {
  Backend* cuda = find_backend(DeviceType::CUDA);
  if (!cuda || !cuda->is_available()) {
    SUCCEED("no CUDA device: nothing to mix");
    return;
  }
  const Tensor x = randn({1, 3, 5, 5}), w = randn({4, 3, 3, 3});
  REQUIRE_THROWS_AS(conv2d(x, w.to(Device::cuda(0))), DeviceError);
  REQUIRE_THROWS_WITH(conv2d(x, w.to(Device::cuda(0))), Contains("cpu") && Contains("cuda:0"));
}

// ---- max_pool2d ------------------------------------------------------------------------

namespace {
const std::vector<PoolCase>& max_pool_cases() {
  static const std::vector<PoolCase> cases = {
      {{2, 3, 8, 8}, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, true},
      {{2, 2, 9, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, true},
      {{1, 2, 9, 9}, {3, 3}, {1, 1}, {0, 0}, {2, 2}, false, true},   // dilation 2
      {{1, 2, 8, 8}, {3, 3}, {2, 2}, {0, 0}, {1, 1}, true, true},    // ceil_mode: 4x4 (floor gives 3x3)
      {{1, 1, 5, 5}, {2, 2}, {2, 2}, {1, 1}, {1, 1}, true, true},    // ceil_mode, last window dropped
      {{2, 2, 6, 9}, {2, 3}, {1, 2}, {1, 1}, {1, 1}, false, true},   // non-square
      {{1, 3, 7, 6}, {3, 2}, {2, 1}, {1, 0}, {2, 1}, true, true},    // everything at once
  };
  return cases;
}

std::string pool_name(const PoolCase& c) {
  return detail::str_cat("x ", shape_str(c.x), " k (", c.kernel.first, ",", c.kernel.second, ") s (", c.stride.first,
                         ",", c.stride.second, ") p (", c.padding.first, ",", c.padding.second, ") d (",
                         c.dilation.first, ",", c.dilation.second, ") ceil ", c.ceil_mode, " include_pad ",
                         c.count_include_pad);
}
}  // namespace

TEST_CASE("max_pool2d forward matches direct loops", "[nn][pool]") {
  manual_seed(21);
  for (DType dt : {kFloat64, kFloat32}) {
    for (const PoolCase& pc : max_pool_cases()) {
      INFO(pool_name(pc) << " dtype " << dtype_name(dt));
      const Tensor x = random_tensor(pc.x, dt);
      const Tensor y = max_pool2d(x, pc.kernel, pc.stride, pc.padding, pc.dilation, pc.ceil_mode);
      Shape os;
      const auto want = direct_max_pool(values_of(x), pc, os);
      REQUIRE(y.shape() == os);
      require_close(values_of(y), want, 0.0);
    }
  }
}

TEST_CASE("max_pool2d output sizes follow PyTorch's ceil_mode rule", "[nn][pool]") {
  const Tensor x8 = randn({1, 1, 8, 8}), x5 = randn({1, 1, 5, 5});
  REQUIRE(max_pool2d(x8, {3, 3}, {2, 2}).shape() == Shape{1, 1, 3, 3});
  REQUIRE(max_pool2d(x8, {3, 3}, {2, 2}, {0, 0}, {1, 1}, true).shape() == Shape{1, 1, 4, 4});
  REQUIRE(max_pool2d(x5, {2, 2}, {2, 2}, {0, 0}, {1, 1}, true).shape() == Shape{1, 1, 3, 3});
  // (5 + 2 - 2 + 1) / 2 + 1 = 4, but the 4th window would start in the right padding.
  REQUIRE(max_pool2d(x5, {2, 2}, {2, 2}, {1, 1}, {1, 1}, true).shape() == Shape{1, 1, 3, 3});
  // Default stride is the kernel size; 3-D input is one image.
  REQUIRE(max_pool2d(x8, {2, 2}).shape() == Shape{1, 1, 4, 4});
  REQUIRE(max_pool2d(randn({2, 8, 8}), {2, 2}).shape() == Shape{2, 4, 4});
}

TEST_CASE("max_pool2d hand-worked values, NaN and tie-breaking gradient", "[nn][pool]") {
  const Tensor x = from_vector<double>({1, 7, 3, 0, 7, 2, 5, 5, 4, 4, 9, 1, 4, 4, 1, 9}, {1, 1, 4, 4});
  // windows: [[1,7],[7,2]] -> 7 (first at (0,1)); [[3,0],[5,5]] -> 5 (first at (1,2));
  //          [[4,4],[4,4]] -> 4 (first at (2,0)); [[9,1],[1,9]] -> 9 (first at (2,2)).
  Tensor xg = x.clone();
  xg.requires_grad_(true);
  const Tensor y = max_pool2d(xg, {2, 2});
  REQUIRE(values_of(y) == std::vector<double>{7, 5, 4, 9});
  y.backward(from_vector<double>({1, 2, 3, 4}, {1, 1, 2, 2}));
  REQUIRE(values_of(xg.grad()) == std::vector<double>{0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0, 0});

  // Overlapping windows (stride 1) send each window's gradient to its own first max.
  Tensor z = from_vector<double>({5, 5, 5, 5, 5, 5, 5, 5, 5}, {1, 1, 3, 3});
  z.requires_grad_(true);
  max_pool2d(z, {2, 2}, {1, 1}).sum().backward();
  REQUIRE(values_of(z.grad()) == std::vector<double>{1, 1, 0, 1, 1, 0, 0, 0, 0});

  // NaN propagates and takes the gradient.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : {kFloat64, kFloat32}) {
    // Window 1 holds two NaNs (the first, flat index 1, takes the gradient); window 2's max is 7.
    Tensor n = from_vector<double>({1, nan, 3, 2, nan, 9, 0, 7}, {1, 1, 2, 4}).to(dt);
    n.requires_grad_(true);
    const Tensor yn = max_pool2d(n, {2, 2});
    const auto v = values_of(yn);
    REQUIRE(std::isnan(v[0]));
    REQUIRE(v[1] == 7);
    yn.sum().backward();
    REQUIRE(values_of(n.grad()) == std::vector<double>{0, 1, 0, 0, 0, 0, 0, 1});
  }
  // Padding never wins: all-negative input with padding 1.
  const Tensor neg = from_vector<double>({-5, -6, -7, -8}, {1, 1, 2, 2});
  REQUIRE(values_of(max_pool2d(neg, {2, 2}, {1, 1}, {1, 1})) ==
          std::vector<double>{-5, -5, -6, -5, -5, -6, -7, -7, -8});
}

TEST_CASE("max_pool2d 2x2 stride 2: many ties and NaNs, values and first-max gradient", "[nn][pool]") {
  // The 2x2 / stride 2 window has its own vectorisable path; small integers make ties common
  // and a few NaNs test NaN propagation. Reference: direct loops over each window in float64.
  manual_seed(7);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : {kFloat32, kFloat64}) {
    for (const Shape& shape : {Shape{2, 3, 6, 8}, Shape{1, 2, 7, 9}, Shape{3, 1, 4, 2}}) {
      for (const bool ceil_mode : {false, true}) {
        INFO(dtype_name(dt) << " " << shape_str(shape) << " ceil_mode " << ceil_mode);
        std::vector<double> v = values_of(randint(0, 3, shape).to(kFloat64));
        for (size_t i = 0; i < v.size(); i += 11) v[i] = nan;
        Tensor x = from_vector<double>(v, shape).to(dt);
        x.requires_grad_(true);
        const Tensor y = max_pool2d(x, {2, 2}, {2, 2}, {0, 0}, {1, 1}, ceil_mode);
        const int64_t H = shape[2], W = shape[3], OH = y.size(2), OW = y.size(3);
        std::vector<double> want_y, want_g(v.size(), 0.0);
        for (int64_t pl = 0; pl < shape[0] * shape[1]; ++pl) {
          for (int64_t oh = 0; oh < OH; ++oh) {
            for (int64_t ow = 0; ow < OW; ++ow) {
              int64_t best = -1;
              for (int64_t i = 2 * oh; i < std::min(2 * oh + 2, H); ++i) {
                for (int64_t j = 2 * ow; j < std::min(2 * ow + 2, W); ++j) {
                  const int64_t k = pl * H * W + i * W + j;
                  const bool best_nan = best >= 0 && std::isnan(v[size_t(best)]);
                  if (best < 0 || (!best_nan && (std::isnan(v[size_t(k)]) || v[size_t(k)] > v[size_t(best)]))) best = k;
                }
              }
              want_y.push_back(v[size_t(best)]);
              want_g[size_t(best)] += 1.0;
            }
          }
        }
        const std::vector<double> got = values_of(y);
        REQUIRE(got.size() == want_y.size());
        for (size_t i = 0; i < got.size(); ++i) {
          INFO("output " << i);
          if (std::isnan(want_y[i])) CHECK(std::isnan(got[i]));
          else CHECK(got[i] == want_y[i]);
        }
        y.sum().backward();
        CHECK(values_of(x.grad()) == want_g);
      }
    }
  }
}

TEST_CASE("max_pool2d gradcheck", "[nn][pool][gradcheck]") {
  manual_seed(22);
  for (const PoolCase& pc : max_pool_cases()) {
    INFO(pool_name(pc));
    const PoolCase c = pc;
    REQUIRE(gradcheck(
        [c](const std::vector<Tensor>& v) {
          return max_pool2d(v[0], c.kernel, c.stride, c.padding, c.dilation, c.ceil_mode);
        },
        {random_tensor(pc.x, kFloat64, true)}));
  }
}

TEST_CASE("max_pool2d rejects bad arguments", "[nn][pool][errors]") {
  const Tensor x = randn({1, 1, 4, 4});
  REQUIRE_THROWS_AS(max_pool2d(randn({4, 4}), {2, 2}), ShapeError);
  REQUIRE_THROWS_WITH(max_pool2d(randn({4, 4}), {2, 2}), Contains("max_pool2d") && Contains("[4, 4]"));
  REQUIRE_THROWS_AS(max_pool2d(x, {2, 2}, {2, 2}, {2, 2}), ValueError);
  REQUIRE_THROWS_WITH(max_pool2d(x, {2, 2}, {2, 2}, {2, 2}), Contains("half of kernel_size"));
  REQUIRE_THROWS_AS(max_pool2d(x, {5, 5}), ShapeError);
  REQUIRE_THROWS_WITH(max_pool2d(x, {5, 5}), Contains("too small") && Contains("[1, 1, 4, 4]"));
  REQUIRE_THROWS_AS(max_pool2d(x, {0, 2}), ValueError);
  REQUIRE_THROWS_AS(max_pool2d(x, {2, 2}, {-1, 1}), ValueError);
  REQUIRE_THROWS_AS(max_pool2d(x.to(kInt64), {2, 2}), DTypeError);
}

// ---- avg_pool2d ------------------------------------------------------------------------

TEST_CASE("avg_pool2d forward matches direct loops", "[nn][pool]") {
  manual_seed(31);
  const std::vector<PoolCase> cases = {
      {{2, 3, 8, 8}, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, true},
      {{2, 2, 7, 9}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, true},
      {{2, 2, 7, 9}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, false},
      {{1, 2, 8, 8}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true, true},
      {{1, 2, 8, 8}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true, false},
      {{1, 1, 5, 5}, {2, 2}, {2, 2}, {0, 0}, {1, 1}, true, true},
      {{2, 2, 6, 9}, {2, 3}, {1, 2}, {1, 1}, {1, 1}, true, false},
  };
  for (DType dt : {kFloat64, kFloat32}) {
    for (const PoolCase& pc : cases) {
      INFO(pool_name(pc) << " dtype " << dtype_name(dt));
      const Tensor x = random_tensor(pc.x, dt);
      const Tensor y = avg_pool2d(x, pc.kernel, pc.stride, pc.padding, pc.ceil_mode, pc.count_include_pad);
      Shape os;
      const auto want = direct_avg_pool(values_of(x), pc, os);
      REQUIRE(y.shape() == os);
      require_close(values_of(y), want, dt == kFloat64 ? 1e-14 : 1e-6);
      const PoolCase c = pc;
      if (dt == kFloat64) {
        REQUIRE(gradcheck(
            [c](const std::vector<Tensor>& v) {
              return avg_pool2d(v[0], c.kernel, c.stride, c.padding, c.ceil_mode, c.count_include_pad);
            },
            {random_tensor(pc.x, kFloat64, true)}));
      }
    }
  }
}

TEST_CASE("avg_pool2d hand-worked divisors", "[nn][pool]") {
  const Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  REQUIRE(values_of(avg_pool2d(x, {2, 2}, {1, 1})) == std::vector<double>{3, 4, 6, 7});
  // Corner of a 3x3 window with padding 1: (1+2+4+5) over 9 cells, or over the 4 real ones.
  REQUIRE(values_of(avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, false, true))[0] == Approx(12.0 / 9.0));
  REQUIRE(values_of(avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, false, false))[0] == Approx(3.0));
  // ceil_mode: the last window of a 5x5 input with kernel 2 holds only x[4][4] -> divisor 1.
  const Tensor x5 = arange(0, 25, 1, TensorOptions(kFloat64)).reshape({1, 1, 5, 5});
  const auto v = values_of(avg_pool2d(x5, {2, 2}, {2, 2}, {0, 0}, true));
  REQUIRE(v.size() == 9);
  REQUIRE(v[8] == 24.0);
  REQUIRE(v[0] == (0 + 1 + 5 + 6) / 4.0);
  // Gradient: each cell receives 1/4 from every window holding it.
  Tensor xg = x.clone();
  xg.requires_grad_(true);
  avg_pool2d(xg, {2, 2}, {1, 1}).sum().backward();
  REQUIRE(values_of(xg.grad()) == std::vector<double>{0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25});
}

// ---- adaptive_avg_pool2d ---------------------------------------------------------------

TEST_CASE("adaptive_avg_pool2d matches PyTorch's window rule", "[nn][pool]") {
  manual_seed(41);
  struct Case {
    Shape x;
    int64_t oh, ow;
  };
  for (const Case& c : std::vector<Case>{{{2, 3, 7, 7}, 3, 3},
                                         {{2, 2, 8, 6}, 4, 3},
                                         {{1, 2, 5, 7}, 2, 4},
                                         {{1, 1, 3, 3}, 5, 5},
                                         {{2, 3, 6, 6}, 1, 1}}) {
    INFO("x " << shape_str(c.x) << " -> " << c.oh << "x" << c.ow);
    for (DType dt : {kFloat64, kFloat32}) {
      const Tensor x = random_tensor(c.x, dt);
      const Tensor y = adaptive_avg_pool2d(x, {c.oh, c.ow});
      REQUIRE(y.shape() == Shape{c.x[0], c.x[1], c.oh, c.ow});
      REQUIRE(y.dtype() == dt);
      require_close(values_of(y), direct_adaptive_avg(values_of(x), c.x, c.oh, c.ow), dt == kFloat64 ? 1e-12 : 1e-5);
    }
    const int64_t oh = c.oh, ow = c.ow;
    REQUIRE(gradcheck([oh, ow](const std::vector<Tensor>& v) { return adaptive_avg_pool2d(v[0], {oh, ow}); },
                      {random_tensor(c.x, kFloat64, true)}));
  }
  REQUIRE_THROWS_AS(adaptive_avg_pool2d(randn({1, 1, 4, 4}), {0, 2}), ValueError);
  REQUIRE_THROWS_AS(adaptive_avg_pool2d(randn({4, 4}), {2, 2}), ShapeError);
}

// ---- a small network end to end ---------------------------------------------------------

TEST_CASE("gradcheck through conv2d, relu, max_pool2d and linear", "[nn][gradcheck]") {
  manual_seed(51);
  const std::vector<Tensor> in{random_tensor({2, 2, 6, 6}, kFloat64, true), random_tensor({3, 2, 3, 3}, kFloat64, true),
                               random_tensor({3}, kFloat64, true), random_tensor({4, 12}, kFloat64, true),
                               random_tensor({4}, kFloat64, true)};
  REQUIRE(gradcheck(
      [](const std::vector<Tensor>& v) {
        Tensor h = relu(conv2d(v[0], v[1], v[2]));
        h = max_pool2d(h, {2, 2}).flatten(1);
        return log_softmax(linear(h, v[3], v[4]), 1);
      },
      in));
}

TEST_CASE("gradcheck reports the input and element that disagree", "[nn][gradcheck]") {
  manual_seed(52);
  Tensor x = random_tensor({3, 4}, kFloat64, true);
  // A function whose backward is wrong: detach() hides the x*x term from autograd.
  auto wrong = [](const std::vector<Tensor>& v) { return v[0] + v[0].detach() * v[0].detach(); };
  REQUIRE_FALSE(autograd::gradcheck(wrong, {x}, 1e-6, 1e-5, 1e-3, false));
  const auto r = autograd::check_gradients(wrong, {x});
  REQUIRE_FALSE(r.ok);
  REQUIRE_THAT(r.message, Contains("input 0") && Contains("element 0") && Contains("numerical") &&
                              Contains("analytical") && Contains("12 of 12"));
  REQUIRE_THROWS_AS(gradcheck(wrong, {x}), autograd::GradcheckError);
  REQUIRE(gradcheck([](const std::vector<Tensor>& v) { return v[0] * v[0]; }, {x}));
  REQUIRE_THROWS_AS(gradcheck([](const std::vector<Tensor>& v) { return v[0]; }, {randn({2}).requires_grad_()}),
                    DTypeError);
}
