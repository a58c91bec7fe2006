// nll_loss, cross_entropy, linear and dropout: hand-worked values, float64 references
// computed here, gradcheck and error messages.
#include <catch2/catch.hpp>

#include <cmath>
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

Tensor targets(const std::vector<int64_t>& t) { return from_vector<int64_t>(t, {int64_t(t.size())}); }

}  // namespace

// ---- nll_loss ----------------------------------------------------------------------------

TEST_CASE("nll_loss hand-worked values for every reduction", "[nn][loss]") {
  for (DType dt : {kFloat64, kFloat32}) {
    const Tensor logp = from_vector<double>({-1, -2, -3, -0.5, -1.5, -2.5}, {2, 3}).to(dt);
    const Tensor t = targets({2, 0});
    const Tensor none = nll_loss(logp, t, Reduction::None);
    REQUIRE(none.shape() == Shape{2});
    REQUIRE(none.dtype() == dt);
    REQUIRE(values_of(none) == std::vector<double>{3, 0.5});
    REQUIRE(nll_loss(logp, t, Reduction::Sum).item<double>() == 3.5);
    REQUIRE(nll_loss(logp, t).item<double>() == 1.75);
    REQUIRE(nll_loss(logp, t).dim() == 0);
  }
  // Gradient of the mean: -1/N at each target.
  Tensor logp = from_vector<double>({-1, -2, -3, -0.5, -1.5, -2.5}, {2, 3});
  logp.requires_grad_(true);
  nll_loss(logp, targets({2, 0})).backward();
  REQUIRE(values_of(logp.grad()) == std::vector<double>{0, 0, -0.5, -0.5, 0, 0});
}

TEST_CASE("nll_loss gradcheck for each reduction", "[nn][loss][gradcheck]") {
  manual_seed(61);
  const Tensor t = targets({3, 0, 4, 4, 1});
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    REQUIRE(gradcheck([t, r](const std::vector<Tensor>& v) { return nll_loss(v[0], t, r); },
                      {random_tensor({5, 6}, kFloat64, true)}));
    // The target may also be passed as a (non-differentiable) input.
    REQUIRE(gradcheck([r](const std::vector<Tensor>& v) { return nll_loss(v[0], v[1], r); },
                      {random_tensor({5, 6}, kFloat64, true), t}));
  }
}

TEST_CASE("nll_loss rejects bad targets and shapes", "[nn][loss][errors]") {
  const Tensor logp = randn({4, 10});
  REQUIRE_THROWS_AS(nll_loss(logp, targets({1, 10, 2, 3})), IndexError);
  REQUIRE_THROWS_WITH(nll_loss(logp, targets({1, 10, 2, 3})),
                      Contains("nll_loss") && Contains("target 10") && Contains("C = 10"));
  REQUIRE_THROWS_AS(nll_loss(logp, targets({1, 2, -1, 3})), IndexError);
  REQUIRE_THROWS_WITH(nll_loss(logp, targets({1, 2, -1, 3})), Contains("target -1") && Contains("index 2"));
  REQUIRE_THROWS_AS(nll_loss(logp, targets({1, 2, 3})), ShapeError);
  REQUIRE_THROWS_WITH(nll_loss(logp, targets({1, 2, 3})), Contains("[3]") && Contains("[4, 10]"));
  REQUIRE_THROWS_AS(nll_loss(logp, from_vector<float>({1, 2, 3, 4})), DTypeError);
  REQUIRE_THROWS_WITH(nll_loss(logp, from_vector<float>({1, 2, 3, 4})), Contains("int64"));
  REQUIRE_THROWS_AS(nll_loss(randn({4}), targets({1, 2, 3, 4})), ShapeError);
  REQUIRE_THROWS_AS(nll_loss(logp.to(kInt64), targets({1, 2, 3, 4})), DTypeError);
}

// ---- cross_entropy ---------------------------------------------------------------------

TEST_CASE("cross_entropy is stable for huge logits", "[nn][loss]") {
  for (DType dt : {kFloat64, kFloat32}) {
    const Tensor logits = from_vector<double>({1e8, 1e8}, {1, 2}).to(dt);
    const double loss = cross_entropy(logits, targets({1})).item<double>();
    REQUIRE(loss == Approx(std::log(2.0)).epsilon(1e-6));
    // A huge gap: the wrong class costs the gap, the right one costs nothing.
    const Tensor gap = from_vector<double>({1e4, -1e4}, {1, 2}).to(dt);
    REQUIRE(cross_entropy(gap, targets({1})).item<double>() == Approx(2e4));
    REQUIRE(cross_entropy(gap, targets({0})).item<double>() == Approx(0.0).margin(1e-6));
  }
}

TEST_CASE("cross_entropy matches a log-sum-exp reference and gradcheck", "[nn][loss][gradcheck]") {
  manual_seed(62);
  const Tensor logits = random_tensor({6, 5}, kFloat64) * 3.0;
  const Tensor t = targets({0, 4, 2, 2, 1, 3});
  const auto lv = values_of(logits);
  std::vector<double> want;
  for (int64_t i = 0; i < 6; ++i) {
    double m = -INFINITY;
    for (int64_t j = 0; j < 5; ++j) m = std::max(m, lv[std::size_t(i * 5 + j)]);
    double s = 0;
    for (int64_t j = 0; j < 5; ++j) s += std::exp(lv[std::size_t(i * 5 + j)] - m);
    const int64_t ti = int64_t(values_of(t.to(kFloat64))[std::size_t(i)]);
    want.push_back(m + std::log(s) - lv[std::size_t(i * 5 + ti)]);
  }
  const auto got = values_of(cross_entropy(logits, t, Reduction::None));
  double total = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    REQUIRE(got[i] == Approx(want[i]).epsilon(1e-12));
    total += want[i];
  }
  REQUIRE(cross_entropy(logits, t).item<double>() == Approx(total / 6).epsilon(1e-12));
  REQUIRE(cross_entropy(logits, t, Reduction::Sum).item<double>() == Approx(total).epsilon(1e-12));

  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    REQUIRE(gradcheck([t, r](const std::vector<Tensor>& v) { return cross_entropy(v[0], t, r); },
                      {random_tensor({6, 5}, kFloat64, true)}));
  }
  // d(mean CE)/dlogits = (softmax - onehot) / N.
  Tensor x = logits.clone();
  x.requires_grad_(true);
  cross_entropy(x, t).backward();
  const auto g = values_of(x.grad());
  const auto sm = values_of(softmax(logits, 1));
  const auto tv = values_of(t.to(kFloat64));
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      const double want_g = (sm[std::size_t(i * 5 + j)] - (tv[std::size_t(i)] == double(j) ? 1.0 : 0.0)) / 6.0;
      REQUIRE(g[std::size_t(i * 5 + j)] == Approx(want_g).margin(1e-14));
    }
  REQUIRE_THROWS_AS(cross_entropy(logits, targets({0, 5, 0, 0, 0, 0})), IndexError);
  REQUIRE_THROWS_WITH(cross_entropy(logits, targets({0, 5, 0, 0, 0, 0})),
                      Contains("cross_entropy") && Contains("target 5"));
  REQUIRE_THROWS_AS(cross_entropy(randn({2, 3, 4}), targets({0, 1})), ShapeError);
}

// ---- linear ------------------------------------------------------------------------------

TEST_CASE("linear matches loops and gradcheck", "[nn][linear]") {
  manual_seed(71);
  for (DType dt : {kFloat64, kFloat32}) {
    const Tensor x = random_tensor({2, 3, 4}, dt), w = random_tensor({5, 4}, dt), b = random_tensor({5}, dt);
    const Tensor y = linear(x, w, b);
    REQUIRE(y.shape() == Shape{2, 3, 5});
    const auto xv = values_of(x), wv = values_of(w), bv = values_of(b), yv = values_of(y);
    const auto yn = values_of(linear(x, w));
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t o = 0; o < 5; ++o) {
        double s = 0;
        for (int64_t k = 0; k < 4; ++k) s += xv[std::size_t(r * 4 + k)] * wv[std::size_t(o * 4 + k)];
        const double tol = dt == kFloat64 ? 1e-12 : 1e-5;
        REQUIRE(yv[std::size_t(r * 5 + o)] == Approx(s + bv[std::size_t(o)]).margin(tol));
        REQUIRE(yn[std::size_t(r * 5 + o)] == Approx(s).margin(tol));
      }
  }
  REQUIRE(gradcheck([](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); },
                    {random_tensor({2, 3, 4}, kFloat64, true), random_tensor({5, 4}, kFloat64, true),
                     random_tensor({5}, kFloat64, true)}));
  REQUIRE(gradcheck([](const std::vector<Tensor>& v) { return linear(v[0], v[1]); },
                    {random_tensor({3, 4}, kFloat64, true), random_tensor({2, 4}, kFloat64, true)}));

  REQUIRE_THROWS_AS(linear(randn({3, 4}), randn({5, 3})), ShapeError);
  REQUIRE_THROWS_WITH(linear(randn({3, 4}), randn({5, 3})),
                      Contains("linear") && Contains("[3, 4]") && Contains("[5, 3]"));
  REQUIRE_THROWS_AS(linear(randn({3, 4}), randn({5, 4}), randn({4})), ShapeError);
  REQUIRE_THROWS_AS(linear(randn({3, 4}), randn({5, 4}, TensorOptions(kFloat64))), DTypeError);
  REQUIRE_THROWS_AS(linear(randn({3, 4}), randn({4})), ShapeError);
}

// ---- dropout -----------------------------------------------------------------------------

TEST_CASE("dropout zeroes a fraction p and scales the rest", "[nn][dropout]") {
  manual_seed(81);
  Tensor x = uniform({200, 500}, 1.0, 2.0, TensorOptions(kFloat64));
  x.requires_grad_(true);
  const double p = 0.3;
  const Tensor y = dropout(x, p, true);
  const auto xv = values_of(x), yv = values_of(y);
  int64_t zeros_count = 0;
  for (std::size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0) {
      ++zeros_count;
    } else {
      REQUIRE(yv[i] == Approx(xv[i] / (1 - p)).epsilon(1e-14));
    }
  }
  // 100000 Bernoulli(0.3) draws: standard deviation 145, so 0.3 +- 0.006 is > 4 sigma.
  const double frac = double(zeros_count) / double(xv.size());
  REQUIRE(frac == Approx(p).margin(0.006));
  // Gradient = mask / (1 - p) = y / x.
  y.sum().backward();
  const auto g = values_of(x.grad());
  for (std::size_t i = 0; i < xv.size(); i += 97) REQUIRE(g[i] == Approx(yv[i] / xv[i]).epsilon(1e-12));

  // Same seed, same mask; float32 too.
  manual_seed(5);
  const auto a = values_of(dropout(ones({1000}), 0.5, true));
  manual_seed(5);
  const auto b = values_of(dropout(ones({1000}), 0.5, true));
  REQUIRE(a == b);
  const auto c = values_of(dropout(ones({1000}), 0.5, true));
  REQUIRE(a != c);
}

TEST_CASE("dropout in eval mode, p = 0, p = 1 and bad p", "[nn][dropout][errors]") {
  const Tensor x = randn({4, 5});
  REQUIRE(values_of(dropout(x, 0.5, false)) == values_of(x));
  REQUIRE(values_of(dropout(x, 0.0, true)) == values_of(x));
  REQUIRE(values_of(dropout(x, 1.0, true)) == std::vector<double>(20, 0.0));
  REQUIRE_THROWS_AS(dropout(x, 1.5, true), ValueError);
  REQUIRE_THROWS_WITH(dropout(x, 1.5, true), Contains("dropout") && Contains("1.5"));
  REQUIRE_THROWS_AS(dropout(x, -0.1, false), ValueError);
}
