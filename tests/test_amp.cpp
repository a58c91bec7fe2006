// Autocast (policy table, dtypes inside a guard, the cast cache, gradients) and GradScaler
// (the scale's sequence over a scripted run of finite and inf/NaN gradients, skips leaving
// every state unchanged, state_dict).
#include <cmath>
#include <limits>

#include "tensor_testing.hpp"
#include "tessera/amp/autocast.hpp"
#include "tessera/amp/grad_scaler.hpp"
#include "tessera/ops.hpp"
#include "tessera/optim/optimizer.hpp"

using namespace tessera;
using namespace tessera::testing;

TEST_CASE("autocast: the policy table", "[amp]") {
  using amp::CastPolicy;
  for (const char* op : {"matmul", "mm", "bmm", "linear", "conv2d"}) CHECK(amp::policy(op) == CastPolicy::LowerPrecision);
  for (const char* op : {"softmax", "log_softmax", "nll_loss", "cross_entropy", "sum", "mean", "exp", "log", "pow"})
    CHECK(amp::policy(op) == CastPolicy::Float32);
  for (const char* op : {"cat", "stack"}) CHECK(amp::policy(op) == CastPolicy::Promote);
  CHECK(amp::policy("relu") == CastPolicy::None);
  CHECK(std::string(amp::policy_name(CastPolicy::Float32)) == "float32");
  CHECK_THROWS_AS(AutocastGuard(DeviceType::CPU, kFloat32), ValueError);
}

TEST_CASE("autocast: every op of the policy runs in its dtype inside a guard", "[amp]") {
  Tensor x = randn({4, 6}), w = randn({5, 6}), b = randn({5});
  Tensor img = randn({2, 3, 6, 6}), k = randn({4, 3, 3, 3});
  Tensor target = randint(0, 5, {4});
  CHECK(matmul(x, w.t()).dtype() == kFloat32);  // no guard: as before
  {
    AutocastGuard guard(DeviceType::CPU, kBFloat16);
    CHECK(amp::is_autocast_enabled(DeviceType::CPU));
    CHECK(!amp::is_autocast_enabled(DeviceType::CUDA));
    CHECK(matmul(x, w.t()).dtype() == kBFloat16);
    CHECK(mm(x, w.t()).dtype() == kBFloat16);
    CHECK(bmm(x.unsqueeze(0), w.t().unsqueeze(0)).dtype() == kBFloat16);
    Tensor y = linear(x, w, b);
    CHECK(y.dtype() == kBFloat16);  // the bias is cast too (the output stays bfloat16)
    CHECK(conv2d(img, k, Tensor(), {1, 1}, {1, 1}).dtype() == kBFloat16);
    CHECK(log_softmax(y, 1).dtype() == kFloat32);
    CHECK(softmax(y, 1).dtype() == kFloat32);
    CHECK(sum(y).dtype() == kFloat32);
    CHECK(mean(y, {1}).dtype() == kFloat32);
    CHECK(exp(y).dtype() == kFloat32);
    CHECK(log(abs(y)).dtype() == kFloat32);
    CHECK(pow(y, 2.0).dtype() == kFloat32);
    CHECK(cross_entropy(y, target).dtype() == kFloat32);
    CHECK(relu(y).dtype() == kBFloat16);              // not in the table: its input's dtype
    CHECK(add(y, randn({4, 5})).dtype() == kFloat32);  // binary ops: the widest input
    CHECK(cat({y, randn({4, 5})}, 0).dtype() == kFloat32);
    CHECK(matmul(x.to(kFloat64), w.t().to(kFloat64)).dtype() == kFloat64);  // float64 is never cast
    CHECK(matmul(x.to(kFloat16), w.t().to(kFloat16)).dtype() == kBFloat16);
    {
      AutocastGuard inner(DeviceType::CPU, kFloat16);
      CHECK(matmul(x, w.t()).dtype() == kFloat16);
      AutocastGuard off(DeviceType::CPU, kFloat16, false);
      CHECK(matmul(x, w.t()).dtype() == kFloat32);
    }
    CHECK(matmul(x, w.t()).dtype() == kBFloat16);  // restored
    AutocastGuard cuda_only(DeviceType::CUDA, kFloat16);
    CHECK(matmul(x, w.t()).dtype() == kBFloat16);  // CPU tensors follow the CPU's state
  }
  CHECK(!amp::is_autocast_enabled(DeviceType::CPU));
  CHECK(matmul(x, w.t()).dtype() == kFloat32);
}

TEST_CASE("autocast: a parameter is cast once per guard; activations are not cached", "[amp]") {
  Tensor w = randn({8, 8}).requires_grad_(true);
  Tensor x = randn({3, 8});
  {
    AutocastGuard guard(DeviceType::CPU, kBFloat16);
    Tensor h = matmul(x, w);
    Tensor h2 = matmul(relu(h), w);
    Tensor h3 = matmul(relu(h2), w);
    CHECK(amp::cast_cache_hits() == 2);
    CHECK(amp::cast_cache_size() == 1);  // only w (x and h are not leaves that require grad)
    (void)h3;
  }
  CHECK(amp::cast_cache_size() == 0);  // cleared with the outermost guard
}

TEST_CASE("autocast: float32 parameters get float32 gradients from the bfloat16 forward", "[amp]") {
  Tensor w = randn({6, 4}).requires_grad_(true);
  Tensor x = randn({5, 6});
  Tensor loss;
  {
    AutocastGuard guard(DeviceType::CPU, kBFloat16);
    loss = sum(matmul(x, w));
    REQUIRE(loss.dtype() == kFloat32);
  }
  loss.backward();
  REQUIRE(w.grad().dtype() == kFloat32);
  // d sum(x w) / dw = x^T 1, computed in bfloat16 (x rounded) and converted back.
  Tensor ref = matmul(x.to(kBFloat16).to(kFloat64).t(), ones({5, 4}, TensorOptions(kFloat64)));
  const auto g = values(w.grad()), r = values(ref);
  for (size_t i = 0; i < g.size(); ++i) CHECK(std::fabs(g[i] - r[i]) <= 1e-2 * (std::fabs(r[i]) + 1));
  // backward() called inside a guard runs with autocast off: the same gradient.
  Tensor w2 = w.detach().clone().requires_grad_(true);
  {
    AutocastGuard guard(DeviceType::CPU, kBFloat16);
    sum(matmul(x, w2)).backward();
  }
  CHECK(values(w2.grad()) == values(w.grad()));
}

namespace {
// One scripted iteration: loss = sum(w * c), so grad = scale * c (inf/NaN when c holds one).
bool scripted_step(amp::GradScaler& scaler, optim::Optimizer& opt, Tensor& w, double c) {
  opt.zero_grad();
  Tensor coef = full({3}, 1.0);
  coef = where(eq(arange(3.0), 1.0), full({3}, c), coef);
  scaler.scale(sum(mul(w, coef))).backward();
  const bool ran = scaler.step(opt);
  scaler.update();
  return ran;
}
}  // namespace

TEST_CASE("grad scaler: the scale over a scripted run of finite and inf/NaN gradients", "[amp]") {
  Tensor w = randn({3}).requires_grad_(true);
  optim::Adam opt({w}, optim::AdamOptions(0.01));
  amp::GradScaler scaler(amp::GradScalerOptions().init_scale(1024).growth_interval(3));
  CHECK(scaler.get_scale() == 1024);
  const double inf = std::numeric_limits<double>::infinity();
  struct Step {
    double c;
    bool ran;
    double scale_after;
  };
  const Step script[] = {
      {2.0, true, 1024},  {3.0, true, 1024}, {-1.0, true, 2048},  // 3 good steps: growth
      {inf, false, 1024},                                         // skip: backoff, count reset
      {1.0, true, 1024},  {std::nan(""), false, 512},             // NaN also skips
      {1.0, true, 512},   {1.0, true, 512},  {1.0, true, 1024},   // 3 good again: growth
  };
  int i = 0;
  for (const Step& s : script) {
    INFO("step " << i++ << " c=" << s.c);
    const Tensor before = w.detach().clone();
    const SavedState st_before = opt.state_dict();
    const bool ran = scripted_step(scaler, opt, w, s.c);
    CHECK(ran == s.ran);
    CHECK(scaler.get_scale() == s.scale_after);
    if (!ran) {  // a skipped step changes nothing: parameter, moments, step counts
      CHECK(values(w.detach()) == values(before));
      CHECK(opt.state_dict().json == st_before.json);
      for (const auto& [k, t] : st_before.tensors) CHECK(values(opt.state_dict().tensors.at(k)) == values(t));
    } else {
      CHECK(values(w.detach()) != values(before));
    }
  }
  CHECK(scaler.skipped_steps() == 2);
}

TEST_CASE("grad scaler: unscale_ gives the true gradients once; misuse is an error", "[amp]") {
  Tensor w = randn({4}).requires_grad_(true);
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  amp::GradScaler scaler;  // 65536
  CHECK(scaler.get_scale() == 65536);
  Tensor c = randn({4});
  scaler.scale(sum(mul(w, c))).backward();
  CHECK(values(w.grad()) != values(c));
  scaler.unscale_(opt);
  const auto g = values(w.grad()), cv = values(c);
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(cv[i]).epsilon(1e-6));
  CHECK_THROWS_AS(scaler.unscale_(opt), ValueError);
  const Tensor before = w.detach().clone();
  CHECK(scaler.step(opt));  // does not unscale again: w moves by lr * c
  const auto after = values(w.detach()), b = values(before);
  for (size_t i = 0; i < after.size(); ++i) CHECK(after[i] == Approx(b[i] - 0.1 * cv[i]).epsilon(1e-5));
  CHECK_THROWS_AS(scaler.step(opt), ValueError);
  scaler.update();
  CHECK_THROWS_AS(amp::GradScaler(amp::GradScalerOptions().growth_factor(0.5)), ValueError);
  CHECK_THROWS_AS(amp::GradScaler(amp::GradScalerOptions().backoff_factor(1.5)), ValueError);
}

TEST_CASE("grad scaler: state_dict round trip and the disabled pass-through", "[amp]") {
  Tensor w = randn({3}).requires_grad_(true);
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  amp::GradScaler a(amp::GradScalerOptions().init_scale(256).growth_interval(5));
  scripted_step(a, opt, w, 1.0);
  scripted_step(a, opt, w, 1.0);
  const SavedState s = a.state_dict();
  CHECK(s.json.find("\"_growth_tracker\":2") != std::string::npos);
  amp::GradScaler b;
  b.load_state_dict(s);
  CHECK(b.get_scale() == 256);
  for (int i = 0; i < 3; ++i) scripted_step(b, opt, w, 1.0);
  CHECK(b.get_scale() == 512);  // 2 + 3 good steps reach the interval of 5
  SavedState bad = s;
  bad.json = R"({"scale": -1, "growth_factor": 2, "backoff_factor": 0.5, "growth_interval": 5, "_growth_tracker": 0})";
  CHECK_THROWS_AS(b.load_state_dict(bad), ValueError);
  CHECK(b.get_scale() == 512);  // unchanged
  amp::GradScaler off(amp::GradScalerOptions().enabled(false));
  Tensor l = sum(w);
  CHECK(off.scale(l).is_same(l));
  CHECK(off.get_scale() == 1.0);
  l.backward();
  CHECK(off.step(opt));
}
