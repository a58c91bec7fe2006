// Custom autograd functions (autograd::Function<T>, libtorch's API): the examples of
// libtorch's documentation (LinearFunction, MulConstant) against hand-derived gradients and
// gradcheck, and the checks on what backward returns.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "tessera/autograd/function.hpp"
#include "tessera/autograd/gradcheck.hpp"
#include "tessera/ops.hpp"
#include "tessera/random.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using autograd::AutogradContext;
using autograd::tensor_list;
using Catch::Matchers::Contains;
using tessera::testing::values;

namespace {

// torch/csrc/api docs, "Custom autograd functions": y = x W^T + b.
struct LinearFunction : autograd::Function<LinearFunction> {
  static Tensor forward(AutogradContext* ctx, Tensor input, Tensor weight, Tensor bias = Tensor()) {
    ctx->save_for_backward({input, weight, bias});
    Tensor output = input.mm(weight.t());
    if (bias.defined()) output = output.add(bias.unsqueeze(0).expand_as(output));
    return output;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    Tensor input = saved[0], weight = saved[1], bias = saved[2];
    Tensor g = grad_outputs[0];
    Tensor gi, gw, gb;
    if (ctx->needs_input_grad(0)) gi = g.mm(weight);
    if (ctx->needs_input_grad(1)) gw = g.t().mm(input);
    if (bias.defined() && ctx->needs_input_grad(2)) gb = g.sum(0);
    return {gi, gw, gb};
  }
};

struct MulConstant : autograd::Function<MulConstant> {
  static Tensor forward(AutogradContext* ctx, Tensor x, double c) {
    ctx->saved_data["c"] = c;
    return x.mul(c);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    return {grad_outputs[0].mul(ctx->saved_data["c"].toDouble()), Tensor()};
  }
};

int g_backward_calls = 0;

// Returns a gradient of the wrong shape, the wrong count, or a broadcastable one, on request.
struct Misbehaving : autograd::Function<Misbehaving> {
  static Tensor forward(AutogradContext* ctx, Tensor x, int64_t mode) {
    ctx->saved_data["mode"] = mode;
    ctx->saved_data["shape0"] = x.size(0);
    return x.mul(1.0);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    ++g_backward_calls;
    const int64_t mode = ctx->saved_data["mode"].toInt();
    if (mode == 0) return {grad_outputs[0]};                                      // too few
    if (mode == 1) return {ones({7}), Tensor()};                                  // wrong shape
    if (mode == 2) return {grad_outputs[0], ones({1})};                           // non-tensor argument
    if (mode == 3) return {ones({2, 3}, kFloat64), Tensor()};                     // broadcast [3], float64
    if (mode == 5) return {ones({1}), Tensor()};                                  // smaller than the input
    (void)ctx->saved_data["mode"].toTensor();                                     // wrong kind
    return {};
  }
};

struct Passthrough : autograd::Function<Passthrough> {
  static Tensor forward(AutogradContext*, Tensor x) { return x; }
  static tensor_list backward(AutogradContext*, tensor_list g) { return {g[0].mul(3.0)}; }
};

}  // namespace

TEST_CASE("Function: libtorch's LinearFunction matches hand-derived gradients and gradcheck", "[autograd][function]") {
  manual_seed(1);
  Tensor x = randn({4, 3}, kFloat64).requires_grad_(true);
  Tensor w = randn({2, 3}, kFloat64).requires_grad_(true);
  Tensor b = randn({2}, kFloat64).requires_grad_(true);
  Tensor y = LinearFunction::apply(x, w, b);
  CHECK(y.grad_fn()->name() == "LinearFunctionBackward");
  CHECK(values(y) == values(linear(x.detach(), w.detach(), b.detach())));
  Tensor c = randn({4, 2}, kFloat64);
  sum(mul(y, c)).backward();
  // dL/dx = c W, dL/dW = c^T x, dL/db = sum_n c.
  auto close = [](const std::vector<double>& a, const std::vector<double>& e) {
    REQUIRE(a.size() == e.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(e[i]).margin(1e-12));
  };
  close(values(x.grad()), values(matmul(c, w.detach())));
  close(values(w.grad()), values(matmul(c.t(), x.detach())));
  close(values(b.grad()), values(sum(c, {0})));
  CHECK(gradcheck([](const std::vector<Tensor>& v) { return LinearFunction::apply(v[0], v[1], v[2]); },
                  {randn({3, 4}, kFloat64).requires_grad_(true), randn({5, 4}, kFloat64).requires_grad_(true),
                   randn({5}, kFloat64).requires_grad_(true)}));
  // Without a bias argument (its default) and with only the weight needing grad.
  Tensor w2 = randn({2, 3}, kFloat64).requires_grad_(true);
  LinearFunction::apply(x.detach(), w2).sum().backward();
  CHECK(w2.grad().shape() == Shape{2, 3});
}

TEST_CASE("Function: saved_data, non-tensor arguments, no history when nothing needs grad", "[autograd][function]") {
  Tensor x = randn({3}, kFloat64).requires_grad_(true);
  Tensor y = MulConstant::apply(x, 2.5);
  y.sum().backward();
  CHECK(values(x.grad()) == std::vector<double>(3, 2.5));
  CHECK(gradcheck([](const std::vector<Tensor>& v) { return MulConstant::apply(v[0], -1.5); },
                  {randn({2, 3}, kFloat64).requires_grad_(true)}));
  Tensor plain = MulConstant::apply(randn({3}), 2.0);
  CHECK_FALSE(plain.requires_grad());
  {
    NoGradGuard no_grad;
    CHECK_FALSE(MulConstant::apply(x, 2.0).requires_grad());
  }
  // Freed after backward: a second backward through it is an error.
  Tensor z = MulConstant::apply(x, 2.0).sum();
  z.backward();
  CHECK_THROWS_AS(z.backward(), AutogradError);
}

TEST_CASE("Function: what backward returns is checked", "[autograd][function]") {
  auto run = [](int64_t mode) {
    Tensor x = randn({3}).requires_grad_(true);
    Misbehaving::apply(x, mode).sum().backward();
    return x.grad();
  };
  CHECK_THROWS_WITH(run(0), Contains("MisbehavingBackward") && Contains("returned 1 gradients, expected 2"));
  CHECK_THROWS_WITH(run(1), Contains("MisbehavingBackward") && Contains("[7]") && Contains("[3]"));
  CHECK_THROWS_WITH(run(2), Contains("argument 1") && Contains("not a tensor"));
  Tensor g = run(3);  // [2, 3] float64 for a [3] float32 input: summed down and converted
  CHECK(g.shape() == Shape{3});
  CHECK(g.dtype() == kFloat32);
  CHECK(values(g) == std::vector<double>{2, 2, 2});
  CHECK_THROWS_WITH(run(5), Contains("shape [1]") && Contains("of shape [3]"));
  CHECK_THROWS_WITH(run(4), Contains("asked for a Tensor") && Contains("holds a int"));
  CHECK(g_backward_calls == 6);
}

TEST_CASE("Function: a forward returning its input leaves the input's history alone", "[autograd][function]") {
  Tensor x = randn({2}).requires_grad_(true);
  Tensor y = Passthrough::apply(x);
  CHECK(x.is_leaf());
  CHECK_FALSE(y.is_leaf());
  y.sum().backward();
  CHECK(values(x.grad()) == std::vector<double>{3, 3});
}
