// autograd::grad and create_graph (higher-order gradients): second derivatives worked out by
// hand, Hessian-vector products of a quadratic form, gradcheck of the gradient function
// (gradgradcheck) through each op family that supports it, and UnsupportedError for the rest.
#include <catch2/catch.hpp>

#include <functional>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/autograd/function.hpp"
#include "tessera/autograd/gradcheck.hpp"
#include "tessera/nn/nn.hpp"
#include "tessera/ops.hpp"
#include "tessera/random.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using tessera::testing::values;
using V = std::vector<Tensor>;

namespace {
Tensor leaf(const Shape& s, double lo = -1.5, double hi = 1.5) {
  return uniform(s, lo, hi, kFloat64).requires_grad_(true);
}

/// gradgradcheck: gradcheck of x -> d(sum(f(x) * w))/dx computed with create_graph, so the
/// second derivatives of f are compared with finite differences of its first derivatives.
bool gradgradcheck(const std::function<Tensor(const V&)>& f, const V& inputs) {
  return gradcheck(
      [f](const V& given) {
        // gradcheck evaluates its finite differences without grad mode and on plain copies:
        // take the first derivatives anyway (on fresh leaves there).
        autograd::EnableGradGuard enable_grad;
        V in = given;
        for (Tensor& t : in)
          if (!t.requires_grad()) t = t.detach().requires_grad_(true);
        Tensor y = f(in);
        Tensor w = cos(arange(0, double(y.numel()), 1.0, kFloat64)).reshape(y.shape());  // fixed weights
        V grads = autograd::grad({y}, in, {w}, std::nullopt, /*create_graph=*/true);
        Tensor total = zeros({}, kFloat64);
        for (std::size_t i = 0; i < grads.size(); ++i)
          total = add(total, sum(mul(grads[i], sin(arange(1, double(grads[i].numel()) + 1, 1.0, kFloat64)).reshape(grads[i].shape()))));
        return total;
      },
      inputs);
}
}  // namespace

TEST_CASE("autograd::grad: second derivatives by hand; .grad untouched; unused inputs", "[autograd][double]") {
  manual_seed(1);
  Tensor x = leaf({5});
  Tensor y = sum(pow(x, 3.0));
  Tensor g = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  CHECK(values(g) == values(mul(square(x.detach()), 3.0)));  // 3 x^2
  CHECK(g.requires_grad());
  Tensor h = autograd::grad({sum(g)}, {x})[0];                 // d/dx sum(3 x^2) = 6 x
  auto H = values(h), X = values(x);
  for (std::size_t i = 0; i < X.size(); ++i) CHECK(H[i] == Approx(6 * X[i]));
  CHECK_FALSE(x.grad().defined());

  Tensor unused = leaf({2});
  Tensor z = sum(mul(x, 2.0));
  CHECK_THROWS_WITH(autograd::grad({z}, {x, unused}, {}, true), Contains("input 1") && Contains("not used"));
  V both = autograd::grad({z}, {x, unused}, {}, true, false, /*allow_unused=*/true);
  CHECK(values(both[0]) == std::vector<double>(5, 2.0));
  CHECK_FALSE(both[1].defined());
  CHECK_THROWS_AS(autograd::grad({zeros({1})}, {x}), AutogradError);

  // Two outputs weighted by grad_outputs, and an intermediate (non-leaf) input.
  Tensor a = leaf({3});
  Tensor mid = mul(a, a);
  Tensor o1 = mul(mid, 2.0), o2 = sin(mid);
  Tensor w1 = from_vector<double>({1, 2, 3}), w2 = from_vector<double>({-1, 0.5, 2});
  V gm = autograd::grad({o1, o2}, {mid, a}, {w1, w2});
  auto M = values(mid), W1 = values(w1), W2 = values(w2), A = values(a), GM = values(gm[0]), GA = values(gm[1]);
  for (int i = 0; i < 3; ++i) {
    const double dmid = 2 * W1[i] + std::cos(M[i]) * W2[i];
    CHECK(GM[i] == Approx(dmid));
    CHECK(GA[i] == Approx(dmid * 2 * A[i]));
  }
}

TEST_CASE("create_graph: Hessian-vector products of a quadratic form, backward(create_graph)", "[autograd][double]") {
  manual_seed(2);
  Tensor A = randn({4, 4}, kFloat64), v = randn({4}, kFloat64);
  Tensor x = leaf({4});
  Tensor f = sum(mul(x, matmul(A, x)));  // x^T A x: gradient (A + A^T) x, Hessian A + A^T
  Tensor g = autograd::grad({f}, {x}, {}, std::nullopt, true)[0];
  Tensor hv = autograd::grad({sum(mul(g, v))}, {x})[0];
  auto HV = values(hv), ref = values(matmul(add(A, A.t()), v));
  for (int i = 0; i < 4; ++i) CHECK(HV[i] == Approx(ref[i]));

  Tensor y = leaf({3});
  sum(exp(y)).backward(Tensor(), false, /*create_graph=*/true);
  Tensor gy = y.grad();
  REQUIRE(gy.requires_grad());
  Tensor second = autograd::grad({sum(gy)}, {y})[0];  // d/dy exp(y) = exp(y)
  CHECK(values(second) == values(exp(y.detach())));
  y.set_grad(Tensor());  // y.grad's history refers to y: drop it, or the pair is never freed (as in PyTorch)
}

TEST_CASE("gradgradcheck through the elementwise, matmul, reduction, softmax and loss ops", "[autograd][double]") {
  manual_seed(3);
  CHECK(gradgradcheck([](const V& v) { return mul(sin(v[0]), exp(v[1])); }, {leaf({3}), leaf({3})}));
  CHECK(gradgradcheck([](const V& v) { return div(v[0], add(square(v[1]), 1.0)); }, {leaf({2, 3}), leaf({3})}));
  CHECK(gradgradcheck([](const V& v) { return add(tanh(v[0]), sigmoid(v[0])); }, {leaf({4})}));
  CHECK(gradgradcheck([](const V& v) { return add(sqrt(v[0]), add(rsqrt(v[0]), log(v[0]))); }, {leaf({4}, 0.5, 2.0)}));
  CHECK(gradgradcheck([](const V& v) { return pow(v[0], 2.5); }, {leaf({3}, 0.5, 2.0)}));
  CHECK(gradgradcheck([](const V& v) { return mul(log1p(square(v[0])), cos(v[0])); }, {leaf({3})}));
  CHECK(gradgradcheck([](const V& v) { return tanh(matmul(v[0], v[1])); }, {leaf({3, 4}), leaf({4, 2})}));
  CHECK(gradgradcheck([](const V& v) { return linear(v[0], v[1], v[2]).square(); },
                      {leaf({2, 3}), leaf({4, 3}), leaf({4})}));
  CHECK(gradgradcheck([](const V& v) { return mean(mul(v[0], v[0]), {1}); }, {leaf({3, 4})}));
  CHECK(gradgradcheck([](const V& v) { return softmax(v[0], 1); }, {leaf({2, 5})}));
  CHECK(gradgradcheck([](const V& v) { return log_softmax(v[0], 0); }, {leaf({4, 3})}));
  CHECK(gradgradcheck([](const V& v) { return mse_loss(tanh(v[0]), v[1]); }, {leaf({6}), leaf({6})}));
  CHECK(gradgradcheck([](const V& v) { return binary_cross_entropy_with_logits(v[0], sigmoid(v[1])); },
                      {leaf({5}), leaf({5})}));
  CHECK(gradgradcheck([](const V& v) { return kl_div(log_softmax(v[0], 0), softmax(v[1], 0), kBatchMean); },
                      {leaf({5}), leaf({5})}));
  CHECK(gradgradcheck([](const V& v) { return mul(v[0].t().reshape({6}).unsqueeze(0).expand({2, 6}), 1.5); },
                      {leaf({2, 3})}));
}

TEST_CASE("create_graph: a gradient penalty trains through an nn::Sequential", "[autograd][double]") {
  manual_seed(4);
  nn::Sequential net(nn::Linear(3, 8), nn::Tanh(), nn::Linear(8, 1));
  Tensor x = randn({16, 3}, kFloat64).requires_grad_(true);
  net->to(kFloat64);
  // WGAN-GP style: penalise (|d out / d x| - 1)^2, differentiate it with respect to the weights.
  Tensor out = net(x);
  Tensor gx = autograd::grad({out}, {x}, {ones_like(out)}, std::nullopt, true)[0];
  Tensor penalty = mean(square(sub(sqrt(sum(square(gx), {1})), 1.0)));
  penalty.backward();
  auto params = net->named_parameters();
  for (const auto& [name, p] : params) {
    if (name == "2.bias") {  // d out / d x does not depend on the last bias: no gradient (as PyTorch)
      CHECK_FALSE(p.grad().defined());
      continue;
    }
    REQUIRE(p.grad().defined());
    CHECK(values(p.grad()) != std::vector<double>(size_t(p.numel()), 0.0));
  }
}

TEST_CASE("create_graph through an op without double backward is an UnsupportedError naming it", "[autograd][double]") {
  Tensor x = leaf({4});
  CHECK_THROWS_WITH(autograd::grad({sum(gelu(x))}, {x}, {}, std::nullopt, true),
                    Contains("GeluBackward") && Contains("double backward"));
  Tensor img = uniform({1, 1, 4, 4}, -1, 1, kFloat64).requires_grad_(true);
  Tensor w = uniform({2, 1, 3, 3}, -1, 1, kFloat64).requires_grad_(true);
  CHECK_THROWS_WITH(autograd::grad({sum(conv2d(img, w))}, {img}, {}, std::nullopt, true), Contains("Conv2dBackward"));
  // Without create_graph the same ops are fine.
  CHECK(autograd::grad({sum(gelu(x))}, {x})[0].shape() == Shape{4});
}
