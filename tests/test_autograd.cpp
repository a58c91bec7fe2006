// Core autograd: every differentiable core op checked against float64 central differences
// (a checker written here, independent of the library's gradcheck), plus graph semantics:
// reuse of a tensor, distinct leaves of equal value, broadcast gradients reduced to the
// input's shape, accumulation over backward calls, NoGradGuard, detach, retain_graph and
// the errors for misuse.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"
#if __has_include("tessera/autograd/gradcheck.hpp")
#include "tessera/autograd/gradcheck.hpp"
#define TESSERA_TEST_HAS_GRADCHECK 1
#endif

using namespace tessera;
using Catch::Matchers::Contains;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Row-major values of any float tensor read through its strides.
std::vector<double> values(const Tensor& t) {
  Tensor c = t.detach();
  std::vector<double> out;
  const Shape& sh = c.shape();
  if (c.numel() == 0) return out;
  std::vector<int64_t> idx(sh.size(), 0);
  const char* base = static_cast<const char*>(c.storage()->data());
  while (true) {
    int64_t off = c.storage_offset();
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * c.strides()[d];
    if (c.dtype() == kFloat64) out.push_back(reinterpret_cast<const double*>(base)[off]);
    else if (c.dtype() == kFloat32) out.push_back(double(reinterpret_cast<const float*>(base)[off]));
    else FAIL("values: unexpected dtype " << dtype_name(c.dtype()));
    int64_t d = int64_t(sh.size()) - 1;
    while (d >= 0) {
      if (++idx[size_t(d)] < sh[size_t(d)]) break;
      idx[size_t(d)] = 0;
      --d;
    }
    if (d < 0) break;
  }
  return out;
}

Tensor rnd(const Shape& shape, double lo, double hi, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = dist(gen);
  return from_vector<double>(v, shape);
}

// Values in +-[0.2, 2]: away from the kinks of abs/relu/clamp at 0.
Tensor rnd_away(const Shape& shape, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(0.2, 2.0);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = (gen() & 1 ? 1 : -1) * dist(gen);
  return from_vector<double>(v, shape);
}

// L = sum_k y_k w_k with fixed pseudo-random w, computed here (not with library ops).
double weighted(const Tensor& y, const std::vector<double>& w) {
  std::vector<double> v = values(y);
  REQUIRE(v.size() == w.size());
  long double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += (long double)v[i] * w[i];
  return double(s);
}

// Central-difference check of d L / d inputs for L = sum(f(inputs) * w). `inputs` are float64;
// those in `diff` (all when empty) get requires_grad. Tolerance |a - n| <= tol (1 + |n|).
void check_grad(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs, std::vector<bool> diff = {},
                double eps = 1e-6, double tol = 1e-6) {
  INFO(name);
  if (diff.empty()) diff.assign(inputs.size(), true);
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor l = inputs[i].detach().clone();
    if (diff[i]) l.requires_grad_(true);
    leaves.push_back(l);
  }
  Tensor y = f(leaves);
  REQUIRE(y.requires_grad());
  std::mt19937_64 gen(99);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> w(static_cast<size_t>(y.numel()));
  for (double& x : w) x = dist(gen);
  Tensor wt = from_vector<double>(w, y.shape()).to(y.dtype());
  sum(mul(y, wt)).backward();

  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!diff[i]) continue;
    Tensor g = leaves[i].grad();
    REQUIRE(g.defined());
    CHECK(g.shape() == inputs[i].shape());
    CHECK(g.dtype() == inputs[i].dtype());
    std::vector<double> analytic = values(g);
    int bad = 0;
    for (int64_t j = 0; j < inputs[i].numel(); ++j) {
      std::vector<Tensor> plus, minus;
      for (size_t k = 0; k < inputs.size(); ++k) {
        plus.push_back(inputs[k].detach().contiguous().clone());
        minus.push_back(inputs[k].detach().contiguous().clone());
      }
      plus[i].data_ptr<double>()[j] += eps;
      minus[i].data_ptr<double>()[j] -= eps;
      double lp, lm;
      {
        NoGradGuard ng;
        lp = weighted(f(plus), w);
        lm = weighted(f(minus), w);
      }
      const double numeric = (lp - lm) / (2 * eps);
      const double a = analytic[size_t(j)];
      if (!(std::fabs(a - numeric) <= tol * (1 + std::fabs(numeric))) && bad++ < 3)
        FAIL_CHECK("input " << i << " element " << j << ": analytic " << a << ", numeric " << numeric);
    }
    CHECK(bad == 0);
  }
}

Fn unary(Tensor (*op)(const Tensor&)) {
  return [op](const std::vector<Tensor>& v) { return op(v[0]); };
}

}  // namespace

TEST_CASE("core autograd: unary ops match finite differences", "[core][autograd]") {
  Tensor any = rnd({3, 4}, -2, 2, 1), away = rnd_away({3, 4}, 2), pos = rnd({3, 4}, 0.2, 3, 3);
  check_grad("neg", unary(neg), {any});
  check_grad("operator-", [](const std::vector<Tensor>& v) { return -v[0]; }, {any});
  check_grad("abs", unary(abs), {away});
  check_grad("exp", unary(exp), {any});
  check_grad("log", unary(log), {pos});
  check_grad("log1p", unary(log1p), {rnd({3, 4}, -0.5, 3, 4)});
  check_grad("sqrt", unary(sqrt), {pos});
  check_grad("rsqrt", unary(rsqrt), {pos});
  check_grad("sin", unary(sin), {any});
  check_grad("cos", unary(cos), {any});
  check_grad("tanh", unary(tanh), {any});
  check_grad("sigmoid", unary(sigmoid), {rnd({3, 4}, -6, 6, 5)});
  check_grad("relu", unary(relu), {away});
  check_grad("gelu", unary(gelu), {rnd({3, 4}, -4, 4, 6)});
  check_grad("square", unary(square), {any});
  check_grad("clamp", [](const std::vector<Tensor>& v) { return clamp(v[0], -0.5, 1.0); },
             {from_vector<double>({-2, -0.7, -0.3, 0.1, 0.9, 1.2, 3}, {7})});
  check_grad("clamp lower only", [](const std::vector<Tensor>& v) { return clamp(v[0], 0.5); }, {away});
  check_grad("pow 3", [](const std::vector<Tensor>& v) { return pow(v[0], 3.0); }, {any});
  check_grad("pow 0.5", [](const std::vector<Tensor>& v) { return pow(v[0], 0.5); }, {pos});
  check_grad("pow -1.5", [](const std::vector<Tensor>& v) { return pow(v[0], -1.5); }, {pos});
  check_grad("pow 1", [](const std::vector<Tensor>& v) { return pow(v[0], 1.0); }, {any});
  check_grad("pow 0", [](const std::vector<Tensor>& v) { return pow(v[0], 0.0); }, {any});
  check_grad("method chain", [](const std::vector<Tensor>& v) { return v[0].abs().sqrt().exp().tanh().sigmoid().relu(); }, {away});
  // Non-contiguous input to a unary op.
  check_grad("exp of transposed", [](const std::vector<Tensor>& v) { return exp(v[0].t()); }, {any});
}

TEST_CASE("core autograd: binary ops with broadcasting match finite differences", "[core][autograd]") {
  Tensor a = rnd({3, 1, 4}, -2, 2, 11), b = rnd({2, 4}, -2, 2, 12);
  Tensor bpos = rnd({2, 4}, 0.5, 2, 13), apos = rnd({3, 1, 4}, 0.3, 2, 14);
  using V = const std::vector<Tensor>&;
  check_grad("add", [](V v) { return add(v[0], v[1]); }, {a, b});
  check_grad("add alpha", [](V v) { return add(v[0], v[1], -1.5); }, {a, b});
  check_grad("sub", [](V v) { return sub(v[0], v[1]); }, {a, b});
  check_grad("sub alpha", [](V v) { return sub(v[0], v[1], 2.5); }, {a, b});
  check_grad("mul", [](V v) { return mul(v[0], v[1]); }, {a, b});
  check_grad("div", [](V v) { return div(v[0], v[1]); }, {a, bpos});
  check_grad("pow", [](V v) { return pow(v[0], v[1]); }, {apos, b});
  check_grad("maximum", [](V v) { return maximum(v[0], v[1]); }, {a, b});
  check_grad("minimum", [](V v) { return minimum(v[0], v[1]); }, {a, b});
  check_grad("operators", [](V v) { return (v[0] + v[1]) * v[0] / (v[1] * v[1] + 1.0) - v[1]; }, {a, b});
  check_grad("scalar ops", [](V v) { return 2.0 - v[0] * 2.5 + v[0] / 3.0 + 1.0 + 2.0 / (v[0] * v[0] + 1.0); }, {a});
  check_grad("scalar maximum", [](V v) { return maximum(v[0], 0.1) + minimum(v[0], -0.1); }, {rnd_away({5}, 15)});
  check_grad("0-dim with matrix", [](V v) { return mul(v[0], v[1]); }, {rnd({}, -1, 1, 16), b});
  // Only one input requires grad.
  check_grad("mul, second constant", [](V v) { return mul(v[0], v[1]); }, {a, b}, {true, false});
  check_grad("div, first constant", [](V v) { return div(v[0], v[1]); }, {a, bpos}, {false, true});
  // where: gradient flows to the chosen side only.
  Tensor cond = from_vector<bool>({true, false, false, true}, {4});
  check_grad("where", [cond](V v) { return where(cond, v[0], v[1]); }, {rnd({2, 4}, -1, 1, 17), rnd({4}, -1, 1, 18)});
  check_grad("where scalar", [cond](V v) { return where(cond, v[0], 0.5); }, {rnd({3, 4}, -1, 1, 19)});
}

TEST_CASE("core autograd: reductions match finite differences", "[core][autograd]") {
  Tensor x = rnd({3, 4, 2}, -2, 2, 21);
  using V = const std::vector<Tensor>&;
  check_grad("sum all", [](V v) { return sum(v[0]); }, {x});
  check_grad("sum dims keepdim", [](V v) { return sum(v[0], {0, 2}, true); }, {x});
  check_grad("sum dim -1", [](V v) { return v[0].sum({-1}); }, {x});
  check_grad("mean all", [](V v) { return mean(v[0]); }, {x});
  check_grad("mean dims", [](V v) { return mean(v[0], {1}); }, {x});
  check_grad("prod all", [](V v) { return prod(v[0]); }, {rnd({2, 3}, 0.5, 1.5, 22)});
  check_grad("prod dim", [](V v) { return prod(v[0], {1}, true); }, {rnd({3, 4}, -1.5, 1.5, 23)});
  // prod is multilinear, so central differences are exact even through zeros.
  check_grad("prod with one zero", [](V v) { return prod(v[0], {1}); }, {from_vector<double>({1.5, 0, -2, 3, 0.5, 2}, {2, 3})});
  check_grad("prod with two zeros", [](V v) { return prod(v[0]); }, {from_vector<double>({1.5, 0, -2, 0}, {4})});
  check_grad("var", [](V v) { return var(v[0]); }, {x});
  check_grad("var dims correction 0", [](V v) { return var(v[0], {0, 2}, 0.0, true); }, {x});
  check_grad("std", [](V v) { return tessera::std(v[0], {1}); }, {x});
  check_grad("max all", [](V v) { return max(v[0]); }, {x});
  check_grad("min all", [](V v) { return min(v[0]); }, {x});
  check_grad("max dim", [](V v) { return max(v[0], 1).first; }, {x});
  check_grad("min dim keepdim", [](V v) { return min(v[0], -1, true).first; }, {x});
  check_grad("max of transposed", [](V v) { return max(v[0].transpose(0, 2), 0).first; }, {x});
  for (int64_t d = -3; d < 3; ++d) {
    check_grad("softmax dim " + std::to_string(d), [d](V v) { return softmax(v[0], d); }, {x});
    check_grad("log_softmax dim " + std::to_string(d), [d](V v) { return log_softmax(v[0], d); }, {x});
  }
  check_grad("log_softmax of permuted", [](V v) { return log_softmax(v[0].permute({2, 0, 1}), 1); }, {x});
  check_grad("softmax huge logits", [](V v) { return softmax(v[0], 0); }, {from_vector<double>({1000, 999.5, 998})});
}

TEST_CASE("core autograd: gradients at ties and kinks follow PyTorch", "[core][autograd]") {
  // maximum/minimum of equal values split the gradient evenly (PyTorch's derivatives.yaml).
  Tensor a = from_vector<double>({1.0, 2.0}).requires_grad_();
  Tensor b = from_vector<double>({1.0, 3.0}).requires_grad_();
  (maximum(a, b) + minimum(a, b) * 10.0).sum().backward();
  CHECK(values(a.grad()) == std::vector<double>{5.5, 10.0});
  CHECK(values(b.grad()) == std::vector<double>{5.5, 1.0});
  // relu'(0) = 0, abs'(0) = 0, clamp passes the gradient on its (inclusive) bounds.
  Tensor z = from_vector<double>({0.0, 0.0, 1.0, -1.0}).requires_grad_();
  (relu(z) + abs(z) * 2.0 + clamp(z, -1.0, 1.0) * 4.0).sum().backward();
  CHECK(values(z.grad()) == std::vector<double>{4.0, 4.0, 1.0 + 2.0 + 4.0, -2.0 + 4.0});
}

TEST_CASE("core autograd: max over ties splits or picks consistently", "[core][autograd]") {
  // Max over all elements: PyTorch splits the gradient evenly among the maxima.
  Tensor x = from_vector<double>({1, 3, 3, 2}).requires_grad_();
  max(x).backward();
  CHECK(values(x.grad()) == std::vector<double>{0, 0.5, 0.5, 0});
  // Max along a dim: the gradient goes to the returned index (the first maximum).
  Tensor y = from_vector<double>({1, 3, 3, 2}, {1, 4}).requires_grad_();
  max(y, 1).first.sum().backward();
  CHECK(values(y.grad()) == std::vector<double>{0, 1, 0, 0});
}

TEST_CASE("core autograd: matmul matches finite differences", "[core][autograd]") {
  using V = const std::vector<Tensor>&;
  check_grad("dot", [](V v) { return matmul(v[0], v[1]); }, {rnd({5}, -1, 1, 31), rnd({5}, -1, 1, 32)});
  check_grad("matrix-vector", [](V v) { return matmul(v[0], v[1]); }, {rnd({3, 5}, -1, 1, 33), rnd({5}, -1, 1, 34)});
  check_grad("vector-matrix", [](V v) { return matmul(v[0], v[1]); }, {rnd({5}, -1, 1, 35), rnd({5, 2}, -1, 1, 36)});
  check_grad("mm", [](V v) { return mm(v[0], v[1]); }, {rnd({3, 5}, -1, 1, 37), rnd({5, 2}, -1, 1, 38)});
  check_grad("matmul transposed", [](V v) { return matmul(v[0].t(), v[1].t()); }, {rnd({5, 3}, -1, 1, 39), rnd({2, 5}, -1, 1, 40)});
  check_grad("bmm", [](V v) { return bmm(v[0], v[1]); }, {rnd({2, 3, 4}, -1, 1, 41), rnd({2, 4, 2}, -1, 1, 42)});
  check_grad("batched broadcast", [](V v) { return matmul(v[0], v[1]); }, {rnd({2, 1, 3, 4}, -1, 1, 43), rnd({3, 4, 2}, -1, 1, 44)});
  check_grad("batched @ matrix", [](V v) { return matmul(v[0], v[1]); }, {rnd({2, 3, 4}, -1, 1, 45), rnd({4, 2}, -1, 1, 46)});
  check_grad("vector @ batched", [](V v) { return matmul(v[0], v[1]); }, {rnd({4}, -1, 1, 47), rnd({2, 4, 3}, -1, 1, 48)});
  check_grad("batched @ vector", [](V v) { return matmul(v[0], v[1]); }, {rnd({2, 3, 4}, -1, 1, 49), rnd({4}, -1, 1, 50)});
}

TEST_CASE("core autograd: views and copies match finite differences", "[core][autograd]") {
  Tensor x = rnd({2, 3, 4}, -2, 2, 51);
  using V = const std::vector<Tensor>&;
  // Multiplying by a fixed non-uniform tensor makes every output element's weight distinct.
  check_grad("view", [](V v) { return v[0].view({6, 4}); }, {x});
  check_grad("reshape of transposed (copy)", [](V v) { return v[0].transpose(0, 2).reshape({4, 6}); }, {x});
  check_grad("permute", [](V v) { return v[0].permute({1, 2, 0}); }, {x});
  check_grad("transpose", [](V v) { return v[0].transpose(-1, 0); }, {x});
  check_grad("t", [](V v) { return v[0].select(0, 1).t(); }, {x});
  check_grad("narrow", [](V v) { return v[0].narrow(2, 1, 2); }, {x});
  check_grad("slice with step", [](V v) { return v[0].slice(2, 0, 4, 3).slice(1, 1, 3); }, {x});
  check_grad("select", [](V v) { return v[0].select(1, -1); }, {x});
  check_grad("operator[]", [](V v) { return v[0][1]; }, {x});
  check_grad("squeeze", [](V v) { return v[0].squeeze(); }, {rnd({1, 3, 1, 2}, -1, 1, 52)});
  check_grad("squeeze dim", [](V v) { return v[0].squeeze(2); }, {rnd({1, 3, 1, 2}, -1, 1, 53)});
  check_grad("unsqueeze", [](V v) { return v[0].unsqueeze(1); }, {x});
  check_grad("expand", [](V v) { return v[0].expand({2, 3, 4}); }, {rnd({3, 1}, -1, 1, 54)});
  check_grad("flatten", [](V v) { return v[0].flatten(1); }, {x});
  check_grad("contiguous of transposed", [](V v) { return v[0].transpose(0, 1).contiguous(); }, {x});
  check_grad("clone", [](V v) { return v[0].clone(); }, {x});
  check_grad("cat", [](V v) { return cat({v[0], v[1]}, 1); }, {rnd({2, 3}, -1, 1, 55), rnd({2, 2}, -1, 1, 56)});
  check_grad("stack", [](V v) { return stack({v[0], v[1]}, -1); }, {rnd({2, 3}, -1, 1, 57), rnd({2, 3}, -1, 1, 58)});
  check_grad("view then op", [](V v) { return exp(v[0].view({-1})) * v[0].flatten(); }, {x});
  check_grad("same leaf through two views", [](V v) { return v[0].select(0, 0) * v[0].select(0, 1); }, {x});
}

TEST_CASE("core autograd: a tensor used twice accumulates both paths", "[core][autograd]") {
  Tensor x = from_vector<double>({1.5, -2.0, 0.5}).requires_grad_();
  Tensor a = from_vector<double>({2.0, 3.0, -1.0});
  Tensor y = x * a;  // used twice below
  Tensor z = (y * y).sum();
  z.backward();
  // dz/dx = 2 y a = 2 x a^2
  CHECK(values(x.grad()) == std::vector<double>{2 * 1.5 * 4, 2 * -2.0 * 9, 2 * 0.5 * 1});
  // x * x
  Tensor w = from_vector<double>({3.0, -1.0}).requires_grad_();
  mul(w, w).sum().backward();
  CHECK(values(w.grad()) == std::vector<double>{6.0, -2.0});
  // A diamond: a = exp(x); b = sin(x); c = a * b + a.
  Tensor d = from_vector<double>({0.3, -0.7}).requires_grad_();
  Tensor ea = exp(d), sb = sin(d);
  (ea * sb + ea).sum().backward();
  std::vector<double> g = values(d.grad());
  for (int i = 0; i < 2; ++i) {
    const double v = i == 0 ? 0.3 : -0.7;
    CHECK(g[size_t(i)] == Approx(std::exp(v) * std::sin(v) + std::exp(v) * std::cos(v) + std::exp(v)).epsilon(1e-14));
  }
  // A long chain (the engine must not recurse per node).
  Tensor c = from_vector<double>({1.0}).requires_grad_();
  Tensor h = c;
  for (int i = 0; i < 5000; ++i) h = h * 1.0001;
  h.sum().backward();
  CHECK(values(c.grad())[0] == Approx(std::pow(1.0001, 5000)).epsilon(1e-10));
}

TEST_CASE("core autograd: two distinct leaves of equal value get separate gradients", "[core][autograd]") {
  Tensor a = from_vector<double>({2.0}).requires_grad_();
  Tensor b = from_vector<double>({2.0}).requires_grad_();
  (a + b * 3.0).sum().backward();
  CHECK(values(a.grad()) == std::vector<double>{1.0});
  CHECK(values(b.grad()) == std::vector<double>{3.0});
  Tensor p = from_vector<double>({2.0, 5.0}).requires_grad_();
  Tensor q = from_vector<double>({2.0, 5.0}).requires_grad_();
  (p * q * q).sum().backward();
  CHECK(values(p.grad()) == std::vector<double>{4.0, 25.0});
  CHECK(values(q.grad()) == std::vector<double>{8.0, 50.0});
  // Their gradients are distinct tensors.
  CHECK_FALSE(p.grad().storage().get() == q.grad().storage().get());
}

TEST_CASE("core autograd: broadcast gradients are reduced to each input's shape", "[core][autograd]") {
  Tensor a = ones({3, 1}, kFloat64).requires_grad_();
  Tensor b = ones({4}, kFloat64).requires_grad_();
  Tensor s = ones({}, kFloat64).requires_grad_();
  Tensor e = ones({1, 1, 4}, kFloat64).requires_grad_();
  (((a + b) * s) + e).sum().backward();  // result [1, 3, 4]
  CHECK(a.grad().shape() == Shape{3, 1});
  CHECK(b.grad().shape() == Shape{4});
  CHECK(s.grad().shape() == Shape{});
  CHECK(e.grad().shape() == Shape{1, 1, 4});
  CHECK(values(a.grad()) == std::vector<double>{4, 4, 4});
  CHECK(values(b.grad()) == std::vector<double>{3, 3, 3, 3});
  CHECK(values(s.grad()) == std::vector<double>{24});
  CHECK(values(e.grad()) == std::vector<double>{3, 3, 3, 3});
  // Broadcasting against a 0-size dim gives a zero gradient of the input's shape.
  Tensor z = ones({1, 3}, kFloat64).requires_grad_();
  (z + zeros({0, 3}, kFloat64)).sum().backward();
  CHECK(z.grad().shape() == Shape{1, 3});
  CHECK(values(z.grad()) == std::vector<double>{0, 0, 0});
}

TEST_CASE("core autograd: gradients accumulate over backward calls and retain_graph keeps the graph", "[core][autograd]") {
  Tensor x = from_vector<double>({1.0, 2.0}).requires_grad_();
  (x * x).sum().backward();
  (x * x).sum().backward();
  CHECK(values(x.grad()) == std::vector<double>{4.0, 8.0});
  // Resetting the gradient.
  x.set_grad(Tensor());
  (x * 3.0).sum().backward();
  CHECK(values(x.grad()) == std::vector<double>{3.0, 3.0});

  Tensor y = from_vector<double>({1.0, -1.0}).requires_grad_();
  Tensor l = exp(y).sum();
  l.backward(Tensor(), /*retain_graph=*/true);
  l.backward();
  CHECK(values(y.grad())[0] == Approx(2 * std::exp(1.0)).epsilon(1e-15));
  CHECK_THROWS_AS(l.backward(), AutogradError);  // the graph was freed by the second call

  // Backward on a non-scalar with an explicit gradient.
  Tensor v = from_vector<double>({1.0, 2.0, 3.0}).requires_grad_();
  Tensor out = v * v;
  out.backward(from_vector<double>({1.0, 0.5, -1.0}));
  CHECK(values(v.grad()) == std::vector<double>{2.0, 2.0, -6.0});
  // float32 leaves get float32 gradients even through float64 ops.
  Tensor f = ones({2}).requires_grad_();
  (f * from_vector<double>({2.0, 3.0})).sum().backward();
  CHECK(f.grad().dtype() == kFloat32);
  CHECK(values(f.grad()) == std::vector<double>{2.0, 3.0});
  // Backward from a leaf itself.
  Tensor leaf = from_vector<double>({5.0}).requires_grad_();
  leaf.backward();
  CHECK(values(leaf.grad()) == std::vector<double>{1.0});
}

TEST_CASE("core autograd: NoGradGuard and detach stop recording", "[core][autograd]") {
  Tensor x = ones({2}, kFloat64).requires_grad_();
  CHECK(autograd::grad_mode_enabled());
  {
    NoGradGuard ng;
    CHECK_FALSE(autograd::grad_mode_enabled());
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    {
      NoGradGuard inner;
      CHECK_FALSE(autograd::grad_mode_enabled());
    }
    CHECK_FALSE(autograd::grad_mode_enabled());
  }
  CHECK(autograd::grad_mode_enabled());
  Tensor y = x * 2.0;
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  CHECK(y.grad_fn() != nullptr);
  CHECK(x.is_leaf());

  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.storage().get() == y.storage().get());
  // Gradient flows through y, not through the detached branch.
  (y * d).sum().backward();  // d/dx (2x * const 2) = 4
  CHECK(values(x.grad()) == std::vector<double>{4.0, 4.0});
  // The non-leaf keeps no .grad.
  CHECK_FALSE(y.grad().defined());
  // Exception safety: the guard restores the mode when unwinding.
  try {
    NoGradGuard ng;
    throw std::runtime_error("x");
  } catch (const std::runtime_error&) {
  }
  CHECK(autograd::grad_mode_enabled());
}

TEST_CASE("core autograd: misuse raises AutogradError", "[core][autograd][errors]") {
  Tensor x = ones({3}, kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_THROWS_AS(y.backward(), AutogradError);  // non-scalar without a gradient
  CHECK_THROWS_WITH(y.backward(), Contains("[3]"));
  CHECK_THROWS_AS(y.backward(ones({2}, kFloat64)), Error);  // gradient of the wrong shape
  CHECK_THROWS_AS(ones({1}).backward(), AutogradError);     // does not require grad
  CHECK_THROWS_AS(ones({2}, kInt64).requires_grad_(), AutogradError);
  CHECK_THROWS_AS(y.requires_grad_(false), AutogradError);  // not a leaf
  CHECK_THROWS_AS(zeros({2}, kBool).requires_grad_(), AutogradError);
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("core autograd: to(dtype) passes the gradient back in the source dtype", "[core][autograd]") {
  Tensor x = from_vector<double>({1.0, -2.0, 0.5}).requires_grad_();
  Tensor y = x.to(kFloat32);
  CHECK(y.requires_grad());
  (y * from_vector<float>({2.0f, 3.0f, 4.0f})).sum().backward();
  CHECK(x.grad().dtype() == kFloat64);
  CHECK(values(x.grad()) == std::vector<double>{2.0, 3.0, 4.0});
  CHECK(x.detach().to(kInt64).dtype() == kInt64);
  {
    NoGradGuard ng;
    CHECK(x.to(kInt64).dtype() == kInt64);
  }
  // PyTorch: x.to(torch.int64) of a tensor that requires grad is a plain integer tensor
  // without history (it cannot carry a gradient, but converting is not an error).
  Tensor xi = x.to(kInt64);
  CHECK(xi.dtype() == kInt64);
  CHECK_FALSE(xi.requires_grad());
  CHECK(values(xi.to(kFloat64)) == std::vector<double>{1.0, -2.0, 0.0});
}

TEST_CASE("core autograd: reading values of a tensor that requires grad", "[core][autograd]") {
  // item<T>() and printing read data; they must not fail because the tensor has history
  // (PyTorch's loss.item() works on any dtype request).
  Tensor x = from_vector<float>({2.75f}).requires_grad_();
  Tensor y = x * 2.0;
  CHECK(y.item<float>() == 5.5f);
  CHECK(y.item<double>() == 5.5);
  CHECK(y.item<int64_t>() == 5);
  CHECK(y.item<bool>());
  CHECK_THAT(y.str(), Contains("5.5000"));
  CHECK_THAT(y.str(), Contains("requires_grad"));
}

#ifdef TESSERA_TEST_HAS_GRADCHECK
TEST_CASE("core autograd: the library gradcheck agrees on a composite function", "[core][autograd]") {
  Tensor a = rnd({3, 4}, -1, 1, 61).requires_grad_();
  Tensor b = rnd({4, 2}, -1, 1, 62).requires_grad_();
  CHECK(gradcheck([](const std::vector<Tensor>& v) { return log_softmax(matmul(tanh(v[0]), v[1]), 1); }, {a, b}));
}
#endif
