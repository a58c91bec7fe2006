// Core elementwise ops: every unary and binary op against float64 std:: references on
// random inputs, broadcasting (size-1 and size-0 dims), non-contiguous inputs, type
// promotion and scalar overloads, in-place variants, comparisons, where, NaN propagation.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using namespace tessera::testing;  // elem, for_each_index, values

namespace {

std::vector<double> random_values(int64_t n, double lo, double hi, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = dist(gen);
  return v;
}

// A tensor of dtype dt with random values in [lo, hi) (rounded to dt first).
Tensor random_tensor(const Shape& shape, double lo, double hi, DType dt, unsigned seed) {
  std::vector<double> v = random_values(shape_numel(shape), lo, hi, seed);
  if (dt == kFloat32) {
    std::vector<float> f(v.begin(), v.end());
    return from_vector<float>(f, shape);
  }
  if (dt == kInt64 || dt == kInt32) {
    std::vector<int64_t> iv;
    for (double x : v) iv.push_back(int64_t(std::floor(x)));
    return from_vector<int64_t>(iv, shape).to(dt);
  }
  return from_vector<double>(v, shape).to(dt);
}

// |got - want| <= atol + rtol |want|, with NaN == NaN and equal infinities.
bool close(double got, double want, double rtol, double atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

double tol_for(DType dt) { return dt == kFloat32 ? 2e-6 : 1e-13; }

// Row-major multi-index -> index into a broadcast input of shape `in` (right-aligned).
std::vector<int64_t> broadcast_index(const std::vector<int64_t>& out_idx, const Shape& in) {
  std::vector<int64_t> r(in.size());
  const size_t lead = out_idx.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) r[d] = in[d] == 1 ? 0 : out_idx[lead + d];
  return r;
}

// Checks out == ref(a, b) elementwise with broadcasting, reading a and b through strides.
void check_binary(const Tensor& out, const Tensor& a, const Tensor& b, const std::function<double(double, double)>& ref,
                  double rtol, double atol) {
  REQUIRE(out.shape() == broadcast_shapes(a.shape(), b.shape()));
  int64_t bad = 0;
  for_each_index(out.shape(), [&](const std::vector<int64_t>& i) {
    const double x = elem(a, broadcast_index(i, a.shape())), y = elem(b, broadcast_index(i, b.shape()));
    const double want = ref(x, y), got = elem(out, i);
    if (!close(got, want, rtol, atol) && bad++ < 5) {
      FAIL_CHECK("at " << shape_str(i) << ": op(" << x << ", " << y << ") = " << got << ", expected " << want);
    }
  });
  CHECK(bad == 0);
}

void check_unary(const Tensor& out, const Tensor& x, const std::function<double(double)>& ref, double rtol,
                 double atol) {
  REQUIRE(out.shape() == x.shape());
  int64_t bad = 0;
  for_each_index(out.shape(), [&](const std::vector<int64_t>& i) {
    const double v = elem(x, i), want = ref(v), got = elem(out, i);
    if (!close(got, want, rtol, atol) && bad++ < 5)
      FAIL_CHECK("at " << shape_str(i) << ": f(" << v << ") = " << got << ", expected " << want);
  });
  CHECK(bad == 0);
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;
};

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double sigmoid_ref(double x) { return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x)); }

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double v) { return -v; }, -10, 10},
      {"operator-", [](const Tensor& x) { return -x; }, [](double v) { return -v; }, -10, 10},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double v) { return std::fabs(v); }, -10, 10},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }, -20, 20},
      {"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, 1e-3, 100},
      {"log1p", [](const Tensor& x) { return log1p(x); }, [](double v) { return std::log1p(v); }, -0.9, 10},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, 0, 100},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double v) { return 1.0 / std::sqrt(v); }, 1e-2, 100},
      {"sin", [](const Tensor& x) { return sin(x); }, [](double v) { return std::sin(v); }, -10, 10},
      {"cos", [](const Tensor& x) { return cos(x); }, [](double v) { return std::cos(v); }, -10, 10},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, -10, 10},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, sigmoid_ref, -30, 30},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; }, -10, 10},
      {"gelu", [](const Tensor& x) { return gelu(x); }, gelu_ref, -8, 8},
      {"clamp", [](const Tensor& x) { return clamp(x, -1.5, 2.25); },
       [](double v) { return std::min(std::max(v, -1.5), 2.25); }, -5, 5},
      {"clamp(lo)", [](const Tensor& x) { return clamp(x, 0.5); }, [](double v) { return std::max(v, 0.5); }, -5, 5},
      {"square", [](const Tensor& x) { return square(x); }, [](double v) { return v * v; }, -10, 10},
      {"pow 2", [](const Tensor& x) { return pow(x, 2.0); }, [](double v) { return v * v; }, -10, 10},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, [](double v) { return v * v * v; }, -10, 10},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); }, [](double v) { return std::sqrt(v); }, 0, 10},
      {"pow -1", [](const Tensor& x) { return pow(x, -1.0); }, [](double v) { return 1.0 / v; }, 0.1, 10},
      {"pow -2.5", [](const Tensor& x) { return pow(x, -2.5); }, [](double v) { return std::pow(v, -2.5); }, 0.1, 10},
      {"pow 0", [](const Tensor& x) { return pow(x, 0.0); }, [](double) { return 1.0; }, -10, 10},
      {"method exp", [](const Tensor& x) { return x.exp(); }, [](double v) { return std::exp(v); }, -5, 5},
      {"method pow", [](const Tensor& x) { return x.pow(1.5); }, [](double v) { return std::pow(v, 1.5); }, 0, 5},
  };
}

}  // namespace

TEST_CASE("core elementwise: every unary op matches a float64 reference", "[core][elementwise]") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (const UnaryCase& c : unary_cases()) {
      INFO(c.name << " " << dtype_name(dt));
      unsigned seed = 11;
      // Small contiguous, large contiguous (parallel path), transposed, sliced with step, expanded, 0-dim, empty.
      Tensor small = random_tensor({3, 7}, c.lo, c.hi, dt, seed++);
      Tensor large = random_tensor({70001}, c.lo, c.hi, dt, seed++);
      Tensor transposed = random_tensor({5, 9}, c.lo, c.hi, dt, seed++).t();
      Tensor stepped = random_tensor({6, 20}, c.lo, c.hi, dt, seed++).slice(1, 1, 20, 3).slice(0, 0, 6, 2);
      Tensor expanded = random_tensor({4, 1}, c.lo, c.hi, dt, seed++).expand({4, 6});
      Tensor scalar = random_tensor({}, c.lo, c.hi, dt, seed++);
      for (const Tensor& x : {small, large, transposed, stepped, expanded, scalar}) {
        Tensor y = c.op(x);
        CHECK(y.dtype() == dt);
        // References are evaluated on the input rounded to dt; the output is compared in float64.
        check_unary(y, x, c.ref, tol_for(dt), dt == kFloat32 ? 1e-6 : 1e-14);
      }
      Tensor e = c.op(zeros({0, 4}, dt));
      CHECK(e.shape() == Shape{0, 4});
    }
  }
}

TEST_CASE("core elementwise: exp, softmax and log_softmax where exp is subnormal or underflows", "[core][elementwise]") {
  // Eigen 3.4's AVX2 exp returned garbage here (exp(-1000.0) = 5.6e-309); std::exp is the reference.
  std::mt19937 rng(7);
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    const bool f32 = dt == kFloat32;
    const double lo = f32 ? -110 : -760, hi = f32 ? -80 : -700;
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<double> xs(1003);
    for (double& v : xs) v = f32 ? double(float(u(rng))) : u(rng);
    std::vector<double> got = values(exp(from_vector<double>(xs).to(dt)));
    for (size_t i = 0; i < xs.size(); ++i) {
      const double want = f32 ? double(std::exp(float(xs[i]))) : std::exp(xs[i]);
      INFO("x = " << xs[i]);
      const double tiny = f32 ? double(std::numeric_limits<float>::min()) : std::numeric_limits<double>::min();
      if (want < tiny) {
        CHECK(got[i] == want);  // subnormal or 0: exact (std::exp rounds them correctly)
      } else {
        // Normal results: within 4 ulp of exp computed in double (Eigen's AVX-512 float exp
        // is 2.5 ulp off near log(FLT_MIN), measured on a Zen 4 EPYC: 2.97e-7 relative).
        const double exact = std::exp(xs[i]);
        CHECK(got[i] == Approx(exact).epsilon(f32 ? 4.8e-7 : 5e-16));
      }
    }
    // A row whose other logits lie 1000 below the max: their probabilities are exactly 0
    // (float32 and float64 alike), log-probabilities exact, and the gradients finite.
    std::vector<double> row = {0.0, -1000.0, -1000.5, -2000.0, 3.0, -5000.0, -1200.0, -900.0, -1500.0};
    Tensor x = from_vector<double>(row).to(dt).reshape({1, 9}).requires_grad_();
    std::vector<double> p = values(softmax(x, 1));
    std::vector<double> lp = values(log_softmax(x, 1));
    CHECK(p[1] == 0);
    CHECK(p[3] == 0);
    CHECK(p[5] == 0);
    CHECK(lp[1] == Approx(-1000.0 - 3.0 - std::log1p(std::exp(-3.0))).epsilon(1e-6));
    Tensor g = log_softmax(x, 1).sum();
    g.backward();
    std::vector<double> gx = values(x.grad());
    CHECK(gx[1] == Approx(1.0).epsilon(1e-12));  // d/dx_j sum_i log_softmax_i = 1 - N softmax_j
    CHECK(gx[5] == Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("core elementwise: unary edge values (overflow, tiny arguments, NaN)", "[core][elementwise]") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    Tensor big = from_vector<double>({-1000, -100, 0, 100, 1000}).to(dt);
    std::vector<double> sg = values(sigmoid(big));
    CHECK(sg[0] == 0);
    CHECK((sg[1] >= 0 && sg[1] < 1e-30));
    CHECK(sg[2] == 0.5);
    CHECK(sg[3] == 1);
    CHECK(sg[4] == 1);
    CHECK(values(tanh(big)) == std::vector<double>{-1, -1, 0, 1, 1});
    std::vector<double> ex = values(exp(big));
    CHECK(ex[0] == 0);
    CHECK(std::isinf(ex[4]));
    CHECK(values(gelu(big)) == std::vector<double>{0, 0, 0, 100, 1000});
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Tensor n = from_vector<double>({nan, -1, 2}).to(dt);
    std::vector<double> r = values(relu(n));
    CHECK(std::isnan(r[0]));
    CHECK(r[1] == 0);
    CHECK(r[2] == 2);
    std::vector<double> c = values(clamp(n, 0, 1));
    CHECK(std::isnan(c[0]));
    CHECK(c[1] == 0);
    CHECK(c[2] == 1);
    CHECK(std::isnan(values(sqrt(from_vector<double>({-1}).to(dt)))[0]));
    CHECK(values(log(from_vector<double>({0}).to(dt)))[0] == -INFINITY);
    CHECK(values(abs(from_vector<double>({-0.0, -INFINITY}).to(dt))) == std::vector<double>{0, INFINITY});
  }
  // log1p keeps precision for tiny x (log(1 + 1e-10) would lose most digits).
  CHECK(values(log1p(from_vector<double>({1e-10})))[0] == Approx(std::log1p(1e-10)).epsilon(1e-14));
  CHECK(values(log1p(full({100}, 1e-10, kFloat64)))[50] == Approx(std::log1p(1e-10)).epsilon(1e-14));
  CHECK(values(log1p(from_vector<float>({1e-7f})))[0] == Approx(std::log1p(double(1e-7f))).epsilon(1e-6));
  CHECK_THROWS_AS(clamp(ones({2}), 2.0, 1.0), ValueError);
}

TEST_CASE("core elementwise: unary ops on integer and bool tensors", "[core][elementwise]") {
  Tensor i = from_vector<int64_t>({-3, 0, 5});
  CHECK(neg(i).dtype() == kInt64);
  CHECK(values(neg(i)) == std::vector<double>{3, 0, -5});
  CHECK(values(abs(i)) == std::vector<double>{3, 0, 5});
  CHECK(values(relu(i)) == std::vector<double>{0, 0, 5});
  CHECK(values(clamp(i, -1, 2)) == std::vector<double>{-1, 0, 2});
  CHECK(values(square(from_vector<int32_t>({-4, 3}))) == std::vector<double>{16, 9});
  // Float functions of integers give float32 (PyTorch).
  Tensor e = exp(from_vector<int32_t>({0, 1}));
  CHECK(e.dtype() == kFloat32);
  CHECK(values(e)[1] == Approx(std::exp(1.0)).epsilon(1e-6));
  CHECK(sqrt(from_vector<int64_t>({4})).dtype() == kFloat32);
  CHECK(values(sqrt(from_vector<int64_t>({4}))) == std::vector<double>{2});
  CHECK_THROWS_AS(neg(from_vector<bool>({true})), DTypeError);
}

// ---- binary ------------------------------------------------------------------------------

namespace {
struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
  double alo, ahi, blo, bhi;
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, [](double x, double y) { return x + y; }, -5, 5, -5, 5},
      {"add alpha", [](const Tensor& a, const Tensor& b) { return add(a, b, 2.5); }, [](double x, double y) { return x + 2.5 * y; }, -5, 5, -5, 5},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, [](double x, double y) { return x - y; }, -5, 5, -5, 5},
      {"sub alpha", [](const Tensor& a, const Tensor& b) { return sub(a, b, -0.5); }, [](double x, double y) { return x + 0.5 * y; }, -5, 5, -5, 5},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, [](double x, double y) { return x * y; }, -5, 5, -5, 5},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, [](double x, double y) { return x / y; }, -5, 5, 0.5, 5},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, [](double x, double y) { return std::pow(x, y); }, 0.1, 4, -3, 3},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }, [](double x, double y) { return std::max(x, y); }, -5, 5, -5, 5},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }, [](double x, double y) { return std::min(x, y); }, -5, 5, -5, 5},
      {"operator+", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double x, double y) { return x + y; }, -5, 5, -5, 5},
      {"operator-", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double x, double y) { return x - y; }, -5, 5, -5, 5},
      {"operator*", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double x, double y) { return x * y; }, -5, 5, -5, 5},
      {"operator/", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double x, double y) { return x / y; }, -5, 5, 0.5, 5},
  };
}

struct ShapePair {
  Shape a, b;
};
std::vector<ShapePair> broadcast_pairs() {
  return {
      {{3, 4}, {3, 4}},       {{2, 3, 4}, {4}},       {{2, 1, 4}, {3, 1}},   {{1}, {5}},
      {{}, {2, 3}},           {{2, 3}, {}},           {{5, 1, 1}, {1, 6, 2}}, {{0, 3}, {1, 3}},
      {{2, 0, 3}, {2, 1, 3}}, {{3, 1}, {1, 0}},       {{0}, {}},             {{1, 1}, {1}},
      {{70000}, {70000}},     {{300, 1}, {1, 250}},
  };
}
}  // namespace

TEST_CASE("core elementwise: every binary op matches a float64 reference with broadcasting", "[core][elementwise]") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (const BinaryCase& c : binary_cases()) {
      for (const ShapePair& sp : broadcast_pairs()) {
        INFO(c.name << " " << dtype_name(dt) << " " << shape_str(sp.a) << " with " << shape_str(sp.b));
        Tensor a = random_tensor(sp.a, c.alo, c.ahi, dt, 3);
        Tensor b = random_tensor(sp.b, c.blo, c.bhi, dt, 4);
        Tensor out = c.op(a, b);
        CHECK(out.dtype() == dt);
        CHECK(out.shape() == broadcast_shapes(sp.a, sp.b));
        check_binary(out, a, b, c.ref, tol_for(dt), dt == kFloat32 ? 1e-6 : 1e-14);
      }
    }
  }
}

TEST_CASE("core elementwise: binary ops on non-contiguous inputs", "[core][elementwise]") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (const BinaryCase& c : binary_cases()) {
      INFO(c.name << " " << dtype_name(dt));
      Tensor base_a = random_tensor({8, 10}, c.alo, c.ahi, dt, 5);
      Tensor base_b = random_tensor({10, 8}, c.blo, c.bhi, dt, 6);
      // transposed with contiguous
      Tensor a1 = base_a, b1 = base_b.t();
      check_binary(c.op(a1, b1), a1, b1, c.ref, tol_for(dt), 1e-6);
      // both transposed
      Tensor a2 = base_a.t(), b2 = base_b;
      check_binary(c.op(a2, b2), a2, b2, c.ref, tol_for(dt), 1e-6);
      // sliced with steps in both dims and broadcast against an expanded row
      Tensor a3 = base_a.slice(0, 1, 8, 2).slice(1, 0, 10, 3);                  // [4, 4]
      Tensor b3 = random_tensor({1, 4}, c.blo, c.bhi, dt, 7).expand({4, 4});  // stride 0 rows
      check_binary(c.op(a3, b3), a3, b3, c.ref, tol_for(dt), 1e-6);
      check_binary(c.op(b3, a3.abs() + 0.5), b3, a3.abs() + 0.5, c.ref, tol_for(dt), 1e-6);
      // a 3-D permuted tensor with a column
      Tensor a4 = random_tensor({3, 4, 5}, c.alo, c.ahi, dt, 8).permute({2, 0, 1});  // [5, 3, 4]
      Tensor b4 = random_tensor({5, 6}, c.blo, c.bhi, dt, 9).select(1, 2).unsqueeze(1).unsqueeze(2);  // [5, 1, 1]
      check_binary(c.op(a4, b4), a4, b4, c.ref, tol_for(dt), 1e-6);
      // large strided (parallel path)
      Tensor a5 = random_tensor({400, 300}, c.alo, c.ahi, dt, 10).t();
      Tensor b5 = random_tensor({300, 400}, c.blo, c.bhi, dt, 11);
      check_binary(c.op(a5, b5), a5, b5, c.ref, tol_for(dt), 1e-6);
    }
  }
}

TEST_CASE("core elementwise: type promotion between tensors", "[core][elementwise]") {
  Tensor i32 = from_vector<int32_t>({1, -2, 3});
  Tensor i64 = from_vector<int64_t>({4, 5, -6});
  Tensor u8 = from_vector<uint8_t>({1, 2, 250});
  Tensor b = from_vector<bool>({true, false, true});
  Tensor f32 = from_vector<float>({0.5f, 0.25f, -1.5f});
  Tensor f64 = from_vector<double>({0.1, 0.2, 0.3});
  CHECK((i32 + f32).dtype() == kFloat32);
  CHECK(values(i32 + f32) == std::vector<double>{1.5, -1.75, 1.5});
  CHECK((i64 * f32).dtype() == kFloat32);
  CHECK((f32 + f64).dtype() == kFloat64);
  CHECK(values(f32 + f64) == std::vector<double>{0.5 + 0.1, 0.25 + 0.2, -1.5 + 0.3});
  CHECK((i32 + i64).dtype() == kInt64);
  CHECK(values(i32 + i64) == std::vector<double>{5, 3, -3});
  CHECK((u8 + i32).dtype() == kInt32);
  CHECK(values(u8 + i32) == std::vector<double>{2, 0, 253});
  CHECK((b + i32).dtype() == kInt32);
  CHECK(values(b + i32) == std::vector<double>{2, -2, 4});
  CHECK((i64 - f64).dtype() == kFloat64);
  // True division of integers gives float32.
  Tensor q = from_vector<int64_t>({7, -7, 1}) / from_vector<int64_t>({2, 2, 0});
  CHECK(q.dtype() == kFloat32);
  CHECK(values(q) == std::vector<double>{3.5, -3.5, INFINITY});
  // pow of integers
  Tensor p = pow(from_vector<int64_t>({2, 3}), from_vector<int64_t>({10, 2}));
  CHECK(values(p) == std::vector<double>{1024, 9});
  // comparisons across dtypes compare values, not bits
  CHECK(values(eq(i32, from_vector<double>({1.0, -2.0, 3.5}))) == std::vector<double>{1, 1, 0});
  CHECK(values(lt(u8, i32)) == std::vector<double>{0, 0, 0});
}

TEST_CASE("core elementwise: scalar overloads keep PyTorch's dtype rules", "[core][elementwise]") {
  Tensor i = from_vector<int64_t>({1, 2, -3});
  Tensor ih = i * 2.5;
  CHECK(ih.dtype() == kFloat32);
  CHECK(values(ih) == std::vector<double>{2.5, 5, -7.5});
  CHECK((i + 2.0).dtype() == kInt64);
  CHECK(values(i + 2.0) == std::vector<double>{3, 4, -1});
  CHECK((i / 2.0).dtype() == kFloat32);
  CHECK(values(i / 2.0) == std::vector<double>{0.5, 1, -1.5});
  CHECK(values(i - 0.5) == std::vector<double>{0.5, 1.5, -3.5});

  Tensor f = from_vector<float>({1.0f, 2.0f, 3.0f});
  Tensor g = f + 0.1;  // double scalar: stays float32
  CHECK(g.dtype() == kFloat32);
  CHECK(values(g) == std::vector<double>{double(1.0f + 0.1f), double(2.0f + 0.1f), double(3.0f + 0.1f)});
  CHECK((f * 1e10).dtype() == kFloat32);
  CHECK((from_vector<double>({1.0}) + 0.1).dtype() == kFloat64);
  CHECK(values(from_vector<double>({1.0}) + 0.1) == std::vector<double>{1.1});

  // Reverse operators: 2 - x, 2 / x, 3 * x, 1 + x.
  Tensor d = from_vector<double>({0.5, 4.0, -2.0});
  CHECK(values(2.0 - d) == std::vector<double>{1.5, -2.0, 4.0});
  CHECK(values(2.0 / d) == std::vector<double>{4.0, 0.5, -1.0});
  CHECK(values(3.0 * d) == std::vector<double>{1.5, 12.0, -6.0});
  CHECK(values(1.0 + d) == std::vector<double>{1.5, 5.0, -1.0});
  CHECK(values(d - 1.0) == std::vector<double>{-0.5, 3.0, -3.0});
  CHECK(values(d / 4.0) == std::vector<double>{0.125, 1.0, -0.5});
  CHECK((2.0 / i).dtype() == kFloat32);
  CHECK(values(2.0 / i)[0] == 2.0);
  CHECK(values(maximum(d, 1.0)) == std::vector<double>{1.0, 4.0, 1.0});
  CHECK(values(minimum(d, 1.0)) == std::vector<double>{0.5, 1.0, -2.0});
  CHECK(values(sub(d, 1.0)) == std::vector<double>{-0.5, 3.0, -3.0});
  CHECK(values(mul(d, 2.0)) == std::vector<double>{1.0, 8.0, -4.0});
  CHECK(values(div(d, 2.0)) == std::vector<double>{0.25, 2.0, -1.0});
  CHECK(values(add(d, -1.0)) == std::vector<double>{-0.5, 3.0, -3.0});
}

TEST_CASE("core elementwise: non-finite or out-of-range scalars with integer tensors", "[core][elementwise]") {
  // A double scalar that the integer dtype cannot hold must not be cast to it (that cast is
  // undefined behaviour in C++); PyTorch gives a float result for a float scalar.
  Tensor big = add(from_vector<int32_t>({1}), 3e9);
  CHECK(values(big)[0] == Approx(3e9 + 1).epsilon(1e-6));
  Tensor inf = add(from_vector<int64_t>({1}), INFINITY);
  CHECK(values(inf)[0] == INFINITY);
}

TEST_CASE("core elementwise: scalar overloads on bool tensors promote like PyTorch", "[core][elementwise]") {
  // torch: bool + 1 -> int64, bool * 3 -> int64, bool + 0.5 -> float32. The result must not
  // depend on whether the scalar happens to be 0/1.
  Tensor b = from_vector<bool>({true, false});
  Tensor p1 = add(b, 1.0);
  CHECK(values(p1) == std::vector<double>{2, 1});
  Tensor p3 = add(b, 3.0);
  CHECK(values(p3) == std::vector<double>{4, 3});
  CHECK(p1.dtype() == p3.dtype());
  CHECK(values(mul(b, 3.0)) == std::vector<double>{3, 0});
  CHECK(values(add(b, 0.5)) == std::vector<double>{1.5, 0.5});
  CHECK(is_floating_point(add(b, 0.5).dtype()));
}

TEST_CASE("core elementwise: comparisons give bool", "[core][elementwise]") {
  Tensor a = from_vector<double>({1, 2, 3, NAN});
  Tensor b = from_vector<double>({3, 2, 1, NAN});
  struct C {
    const char* name;
    Tensor out;
    std::vector<double> want;
  };
  for (const C& c : std::vector<C>{{"eq", eq(a, b), {0, 1, 0, 0}},
                                   {"ne", ne(a, b), {1, 0, 1, 1}},
                                   {"lt", lt(a, b), {1, 0, 0, 0}},
                                   {"le", le(a, b), {1, 1, 0, 0}},
                                   {"gt", gt(a, b), {0, 0, 1, 0}},
                                   {"ge", ge(a, b), {0, 1, 1, 0}},
                                   {"==", a == b, {0, 1, 0, 0}},
                                   {"!=", a != b, {1, 0, 1, 1}},
                                   {"<", a < b, {1, 0, 0, 0}},
                                   {"<=", a <= b, {1, 1, 0, 0}},
                                   {">", a > b, {0, 0, 1, 0}},
                                   {">=", a >= b, {0, 1, 1, 0}},
                                   {"eq scalar", eq(a, 2.0), {0, 1, 0, 0}},
                                   {"ne scalar", ne(a, 2.0), {1, 0, 1, 1}},
                                   {"lt scalar", lt(a, 2.0), {1, 0, 0, 0}},
                                   {"le scalar", le(a, 2.0), {1, 1, 0, 0}},
                                   {"gt scalar", gt(a, 2.0), {0, 0, 1, 0}},
                                   {"ge scalar", ge(a, 2.0), {0, 1, 1, 0}}}) {
    INFO(c.name);
    CHECK(c.out.dtype() == kBool);
    CHECK(values(c.out) == c.want);
  }
  // Random, broadcast, strided, float32 vs reference.
  Tensor x = random_tensor({6, 5}, -1, 1, kFloat32, 21).t();
  Tensor y = random_tensor({6}, -1, 1, kFloat32, 22);
  check_binary(lt(x, y), x, y, [](double p, double q) { return p < q ? 1.0 : 0.0; }, 0, 0);
  check_binary(ge(x, y), x, y, [](double p, double q) { return p >= q ? 1.0 : 0.0; }, 0, 0);
  // Integer comparison with a fractional scalar compares the real values.
  CHECK(values(lt(from_vector<int64_t>({1, 2}), 1.5)) == std::vector<double>{1, 0});
  Tensor la = logical_and(from_vector<double>({0, 1, 2, 0}), from_vector<int64_t>({0, 0, 3, 5}));
  CHECK(la.dtype() == kBool);
  CHECK(values(la) == std::vector<double>{0, 0, 1, 0});
  Tensor lo = logical_or(from_vector<bool>({false, true, false}), from_vector<bool>({false, false, true}));
  CHECK(values(lo) == std::vector<double>{0, 1, 1});
  CHECK(eq(zeros({0, 2}), zeros({1, 2})).shape() == Shape{0, 2});
}

TEST_CASE("core elementwise: where broadcasts and promotes", "[core][elementwise]") {
  Tensor cond = from_vector<bool>({true, false, true}, {3, 1});
  Tensor a = from_vector<double>({1, 2}, {1, 2});
  Tensor b = from_vector<float>({-1.0f, -2.0f, -3.0f, -4.0f, -5.0f, -6.0f}, {3, 2});
  Tensor w = where(cond, a, b);
  CHECK(w.dtype() == kFloat64);
  CHECK(w.shape() == Shape{3, 2});
  CHECK(values(w) == std::vector<double>{1, 2, -3, -4, 1, 2});
  Tensor ws = where(cond, b, 0.5);
  CHECK(ws.dtype() == kFloat32);
  CHECK(values(ws) == std::vector<double>{-1, -2, 0.5, 0.5, -5, -6});
  // Strided condition and inputs.
  Tensor x = random_tensor({7, 4}, -1, 1, kFloat64, 31);
  Tensor c2 = gt(x, 0.0).t();
  Tensor xt = x.t();
  Tensor yt = random_tensor({4, 7}, -1, 1, kFloat64, 32);
  Tensor r = where(c2, xt, yt);
  for_each_index(r.shape(), [&](const std::vector<int64_t>& i) {
    CHECK(elem(r, i) == (elem(c2, i) != 0 ? elem(xt, i) : elem(yt, i)));
  });
  CHECK_THROWS_AS(where(from_vector<int64_t>({1}), a, b), DTypeError);
  CHECK_THROWS_AS(where(from_vector<bool>({true, false}), ones({3}), ones({3})), ShapeError);
  CHECK(where(from_vector<bool>({}), zeros({0}), 1.0).numel() == 0);
}

TEST_CASE("core elementwise: maximum, minimum, clamp and relu propagate NaN", "[core][elementwise]") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    Tensor a = from_vector<double>({NAN, 1.0, NAN, -2.0}).to(dt);
    Tensor b = from_vector<double>({1.0, NAN, NAN, 3.0}).to(dt);
    std::vector<double> mx = values(maximum(a, b)), mn = values(minimum(a, b));
    for (int k = 0; k < 3; ++k) {
      CHECK(std::isnan(mx[size_t(k)]));
      CHECK(std::isnan(mn[size_t(k)]));
    }
    CHECK(mx[3] == 3.0);
    CHECK(mn[3] == -2.0);
    CHECK(std::isnan(values(maximum(a, 0.0))[0]));
    CHECK(std::isnan(values(minimum(a, 0.0))[0]));
    CHECK(std::isnan(values(clamp(a, -1, 1))[0]));
    CHECK(std::isnan(values(clamp(a, -1))[0]));
    CHECK(std::isnan(values(relu(a))[0]));
    CHECK(values(maximum(from_vector<double>({-INFINITY}).to(dt), from_vector<double>({-1e30}).to(dt)))[0] < -1e29);
  }
  Tensor ia = from_vector<int64_t>({1, 5}), ib = from_vector<int64_t>({3, 2});
  CHECK(values(maximum(ia, ib)) == std::vector<double>{3, 5});
  CHECK(maximum(ia, ib).dtype() == kInt64);
}

// ---- in place ----------------------------------------------------------------------------

TEST_CASE("core elementwise: in-place ops match out-of-place and write through views", "[core][elementwise]") {
  Tensor a0 = random_tensor({4, 5}, -3, 3, kFloat32, 41);
  Tensor b = random_tensor({5}, 0.5, 3, kFloat32, 42);
  struct C {
    const char* name;
    std::function<void(Tensor&)> inplace;
    std::function<Tensor(const Tensor&)> ref;
  };
  std::vector<C> cases = {
      {"add_", [&](Tensor& t) { add_(t, b); }, [&](const Tensor& t) { return add(t, b); }},
      {"add_ alpha", [&](Tensor& t) { add_(t, b, -2.0); }, [&](const Tensor& t) { return add(t, b, -2.0); }},
      {"sub_", [&](Tensor& t) { sub_(t, b); }, [&](const Tensor& t) { return sub(t, b); }},
      {"mul_", [&](Tensor& t) { mul_(t, b); }, [&](const Tensor& t) { return mul(t, b); }},
      {"div_", [&](Tensor& t) { div_(t, b); }, [&](const Tensor& t) { return div(t, b); }},
      {"add_ scalar", [&](Tensor& t) { add_(t, 1.25); }, [&](const Tensor& t) { return add(t, 1.25); }},
      {"mul_ scalar", [&](Tensor& t) { mul_(t, -3.0); }, [&](const Tensor& t) { return mul(t, -3.0); }},
      {"div_ scalar", [&](Tensor& t) { div_(t, 4.0); }, [&](const Tensor& t) { return div(t, 4.0); }},
      {"clamp_", [&](Tensor& t) { clamp_(t, -1.0, 1.0); }, [&](const Tensor& t) { return clamp(t, -1.0, 1.0); }},
      {"+=", [&](Tensor& t) { t += b; }, [&](const Tensor& t) { return t + b; }},
      {"-=", [&](Tensor& t) { t -= b; }, [&](const Tensor& t) { return t - b; }},
      {"*=", [&](Tensor& t) { t *= b; }, [&](const Tensor& t) { return t * b; }},
      {"/=", [&](Tensor& t) { t /= b; }, [&](const Tensor& t) { return t / b; }},
      {"+= scalar", [&](Tensor& t) { t += 2.0; }, [&](const Tensor& t) { return t + 2.0; }},
      {"*= scalar", [&](Tensor& t) { t *= 0.5; }, [&](const Tensor& t) { return t * 0.5; }},
      {"method add_", [&](Tensor& t) { t.add_(b, 3.0); }, [&](const Tensor& t) { return add(t, b, 3.0); }},
      {"method mul_", [&](Tensor& t) { t.mul_(b); }, [&](const Tensor& t) { return mul(t, b); }},
      {"method div_", [&](Tensor& t) { t.div_(2.0); }, [&](const Tensor& t) { return div(t, 2.0); }},
      {"method sub_", [&](Tensor& t) { t.sub_(b); }, [&](const Tensor& t) { return sub(t, b); }},
  };
  for (const C& c : cases) {
    INFO(c.name);
    Tensor t = a0.clone();
    const void* before = t.raw_data();
    Tensor want = c.ref(t);
    c.inplace(t);
    CHECK(t.raw_data() == before);
    CHECK(values(t) == values(want));
    // On a strided view: [5, 4] base, transposed to [4, 5]; the base sees the result.
    Tensor base = a0.t().contiguous();
    Tensor view = base.t();
    Tensor want_v = c.ref(view);
    c.inplace(view);
    CHECK(values(view) == values(want_v));
    CHECK(values(base.t()) == values(want_v));
  }
  // x += x (same view) doubles.
  Tensor x = from_vector<double>({1, 2, 3});
  x += x;
  CHECK(values(x) == std::vector<double>{2, 4, 6});
  // int tensor in place with an int tensor stays int.
  Tensor i = from_vector<int64_t>({1, 2});
  i += from_vector<int32_t>({10, 20});
  CHECK(values(i) == std::vector<double>{11, 22});
  CHECK(i.dtype() == kInt64);
  // float32 destination, float32 source in place: 0-size is fine.
  Tensor z = zeros({0, 3});
  z += ones({3});
  CHECK(z.numel() == 0);
}

TEST_CASE("core elementwise: in-place errors", "[core][elementwise]") {
  // Result dtype must fit the destination.
  Tensor i = from_vector<int64_t>({1, 2});
  CHECK_THROWS_AS(add_(i, from_vector<float>({0.5f, 0.5f})), Error);
  CHECK_THROWS_WITH(add_(i, from_vector<float>({0.5f, 0.5f})), Contains("float32") && Contains("int64"));
  CHECK_THROWS_AS(mul_(i, 2.5), Error);
  CHECK_THROWS_AS(div_(i, from_vector<int64_t>({2, 2})), Error);  // true division gives float
  CHECK(values(i) == std::vector<double>{1, 2});                  // untouched by the refusals
  // The destination cannot be broadcast.
  Tensor r = zeros({3});
  CHECK_THROWS_AS(add_(r, zeros({2, 3})), ShapeError);
  CHECK_THROWS_WITH(add_(r, zeros({2, 3})), Contains("[3]") && Contains("[2, 3]"));
  CHECK_THROWS_AS(add_(r, zeros({4})), ShapeError);
  // A leaf that requires grad cannot be modified in place while grad mode is on.
  Tensor w = ones({2}).requires_grad_();
  CHECK_THROWS_AS(add_(w, ones({2})), AutogradError);
  CHECK_THROWS_AS(mul_(w, 2.0), AutogradError);
  CHECK_THROWS_AS(clamp_(w, 0, 1), AutogradError);
  {
    NoGradGuard ng;
    add_(w, ones({2}));
  }
  CHECK(values(w) == std::vector<double>{2, 2});
  // An expanded destination has overlapping elements.
  Tensor e = zeros({1, 3}).expand({4, 3});
  CHECK_THROWS_AS(add_(e, ones({4, 3})), ValueError);
  // Partial overlap between source and destination is refused (or computed as if from a copy).
  Tensor x = from_vector<double>({0, 1, 2, 3, 4, 5});
  Tensor dst = x.slice(0, 1, 6), src = x.slice(0, 0, 5);
  bool threw = false;
  try {
    add_(dst, src);
  } catch (const ValueError&) {
    threw = true;
  }
  if (!threw) CHECK(values(x) == std::vector<double>{0, 1, 3, 5, 7, 9});
  // Device mismatch is impossible to build here without CUDA; undefined inputs are errors.
  Tensor undefined;
  CHECK_THROWS_AS(add_(r, undefined), ValueError);
}

TEST_CASE("core elementwise: undefined and bool inputs give errors", "[core][elementwise]") {
  Tensor undefined;
  CHECK_THROWS_AS(exp(undefined), ValueError);
  CHECK_THROWS_AS(add(undefined, ones({1})), ValueError);
  CHECK_THROWS_AS(add(ones({1}), undefined), ValueError);
  CHECK_THROWS_AS(where(undefined, ones({1}), ones({1})), ValueError);
  Tensor b = from_vector<bool>({true, false});
  CHECK(values(mul(b, b)) == std::vector<double>{1, 0});
  CHECK(values(maximum(b, from_vector<bool>({false, false}))) == std::vector<double>{1, 0});
  CHECK_THROWS_AS(sub(b, b), DTypeError);
}
