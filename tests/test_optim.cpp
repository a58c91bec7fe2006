// Optimizers (SGD, Adam, AdamW) against scalar float64 re-implementations of PyTorch's
// documented algorithms, the hand-worked Adam values, and StepLR.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/nn/layers.hpp"
#include "tessera/ops.hpp"
#include "tessera/optim/lr_scheduler.hpp"
#include "tessera/optim/optimizer.hpp"
#include "tessera/random.hpp"

using namespace tessera;

namespace {

std::vector<double> values(const Tensor& t) {
  Tensor c = t.detach().to(Device::cpu(), kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

Tensor leaf(const std::vector<double>& v, DType dtype = kFloat64) {
  Tensor t = from_vector<double>(v, {int64_t(v.size())}).to(dtype);
  t.requires_grad_(true);
  return t;
}

// The update rules written out per element in double, from the algorithm boxes of the
// torch.optim.SGD / Adam / AdamW documentation.
struct RefSGD {
  double lr, mom, damp, wd;
  bool nesterov;
  std::vector<double> buf;
  bool first = true;
  void step(std::vector<double>& p, const std::vector<double>& grad) {
    if (first) buf.assign(p.size(), 0.0);
    for (std::size_t i = 0; i < p.size(); ++i) {
      double g = grad[i] + wd * p[i];
      if (mom != 0) {
        buf[i] = first ? g : mom * buf[i] + (1 - damp) * g;
        g = nesterov ? g + mom * buf[i] : buf[i];
      }
      p[i] -= lr * g;
    }
    first = false;
  }
};

struct RefAdam {
  double lr, b1, b2, eps, wd;
  bool decoupled, amsgrad;
  std::vector<double> m, v, vmax;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& grad) {
    if (t == 0) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0), vmax.assign(p.size(), 0.0);
    ++t;
    for (std::size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) p[i] *= 1 - lr * wd;
      else g += wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      double mhat = m[i] / (1 - std::pow(b1, t));
      double second = v[i];
      if (amsgrad) second = vmax[i] = std::max(vmax[i], v[i]);
      double vhat = second / (1 - std::pow(b2, t));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};

std::vector<double> random_vector(int n, double scale) {
  auto v = values(randn({n}, kFloat64));
  for (double& x : v) x *= scale;
  return v;
}

}  // namespace

TEST_CASE("Adam: w = 1, constant grad 0.5, lr 1e-3 gives 0.999 then 0.998", "[optim]") {
  Tensor w = leaf({1.0});
  optim::Adam adam({w}, optim::AdamOptions(1e-3));
  w.set_grad(full({1}, 0.5, kFloat64));
  adam.step();
  CHECK(values(w)[0] == Approx(0.999).margin(1e-9));
  w.set_grad(full({1}, 0.5, kFloat64));
  adam.step();
  CHECK(values(w)[0] == Approx(0.998).margin(1e-9));
  CHECK(adam.step_count() == 2);
}

TEST_CASE("AdamW with weight decay: hand-worked first step", "[optim]") {
  // p1 = 1 * (1 - 0.1 * 0.5) + 0.1 = 1.05: decay first, then Adam's first step, -lr * sign(g).
  Tensor w = leaf({1.0});
  optim::AdamW opt({w}, optim::AdamOptions(0.1).weight_decay(0.5));
  w.set_grad(full({1}, -3.0, kFloat64));
  opt.step();
  CHECK(values(w)[0] == Approx(0.95 + 0.1).margin(1e-7));
  // Adam's coupled L2 adds wd * p to the gradient instead: g = 0.5 + 0.5 * 1 > 0, step -lr.
  Tensor u = leaf({1.0});
  optim::Adam adam({u}, optim::AdamOptions(0.1).weight_decay(0.5));
  u.set_grad(full({1}, 0.5, kFloat64));
  adam.step();
  CHECK(values(u)[0] == Approx(0.9).margin(1e-7));
}

TEST_CASE("SGD variants follow torch.optim.SGD over several steps", "[optim]") {
  struct Case {
    double lr, mom, damp, wd;
    bool nesterov;
  };
  const std::vector<Case> cases = {{0.1, 0, 0, 0, false},   {0.05, 0.9, 0, 0, false}, {0.05, 0.9, 0.3, 0, false},
                                   {0.05, 0.9, 0, 0, true},  {0.02, 0.8, 0, 1e-2, true}, {0.1, 0, 0, 0.1, false}};
  manual_seed(42);
  for (const Case& c : cases) {
    CAPTURE(c.lr, c.mom, c.damp, c.wd, c.nesterov);
    auto p0 = random_vector(7, 1.0);
    Tensor w = leaf(p0);
    optim::SGD opt({w}, optim::SGDOptions(c.lr).momentum(c.mom).dampening(c.damp).weight_decay(c.wd).nesterov(c.nesterov));
    RefSGD ref{c.lr, c.mom, c.damp, c.wd, c.nesterov, {}};
    std::vector<double> p = p0;
    for (int s = 0; s < 5; ++s) {
      auto g = random_vector(7, 0.5);
      w.set_grad(from_vector<double>(g, {7}));
      opt.step();
      ref.step(p, g);
    }
    auto got = values(w);
    for (int i = 0; i < 7; ++i) CHECK(got[i] == Approx(p[i]).margin(1e-12));
  }
}

TEST_CASE("Adam, AMSGrad and AdamW follow torch.optim over several steps", "[optim]") {
  struct Case {
    double lr, wd;
    bool decoupled, amsgrad;
  };
  const std::vector<Case> cases = {{1e-2, 0, false, false}, {1e-2, 0.1, false, false}, {3e-2, 0, false, true},
                                   {1e-2, 0.05, true, false}, {2e-2, 0.1, true, true}};
  manual_seed(43);
  for (const Case& c : cases) {
    CAPTURE(c.lr, c.wd, c.decoupled, c.amsgrad);
    auto p0 = random_vector(9, 1.0);
    Tensor w = leaf(p0);
    auto opts = optim::AdamOptions(c.lr).betas(0.8, 0.95).eps(1e-6).weight_decay(c.wd).amsgrad(c.amsgrad);
    std::unique_ptr<optim::Optimizer> opt;
    if (c.decoupled) opt = std::make_unique<optim::AdamW>(std::vector<Tensor>{w}, opts);
    else opt = std::make_unique<optim::Adam>(std::vector<Tensor>{w}, opts);
    RefAdam ref{c.lr, 0.8, 0.95, 1e-6, c.wd, c.decoupled, c.amsgrad, {}, {}, {}, 0};
    std::vector<double> p = p0;
    for (int s = 0; s < 6; ++s) {
      // Shrinking gradients make AMSGrad's running max differ from v.
      auto g = random_vector(9, s < 3 ? 1.0 : 0.1);
      w.set_grad(from_vector<double>(g, {9}));
      opt->step();
      ref.step(p, g);
    }
    auto got = values(w);
    for (int i = 0; i < 9; ++i) CHECK(got[i] == Approx(p[i]).margin(1e-12));
  }
}

TEST_CASE("fused updates (contiguous parameters) equal the tensor-op updates (strided ones)", "[optim]") {
  // Each optimizer steps three copies of one parameter: contiguous float64 (the backend's fused
  // update), a transposed float64 leaf (not contiguous: the tensor-op update) and contiguous
  // float32 (fused), checked against the scalar float64 reference above.
  struct Config {
    const char* name;
    std::function<std::unique_ptr<optim::Optimizer>(const Tensor&)> make;
    std::function<void(std::vector<double>&, const std::vector<double>&)> ref_step;
  };
  auto sgd = [](double lr, double mom, double damp, double wd, bool nesterov) {
    auto ref = std::make_shared<RefSGD>(RefSGD{lr, mom, damp, wd, nesterov, {}});
    return Config{"SGD",
                  [=](const Tensor& w) {
                    return std::make_unique<optim::SGD>(
                        std::vector<Tensor>{w},
                        optim::SGDOptions(lr).momentum(mom).dampening(damp).weight_decay(wd).nesterov(nesterov));
                  },
                  [ref](std::vector<double>& p, const std::vector<double>& g) { ref->step(p, g); }};
  };
  auto adam = [](double lr, double wd, bool decoupled, bool amsgrad) {
    auto ref = std::make_shared<RefAdam>(RefAdam{lr, 0.8, 0.95, 1e-6, wd, decoupled, amsgrad, {}, {}, {}, 0});
    return Config{decoupled ? "AdamW" : "Adam",
                  [=](const Tensor& w) -> std::unique_ptr<optim::Optimizer> {
                    auto o = optim::AdamOptions(lr).betas(0.8, 0.95).eps(1e-6).weight_decay(wd).amsgrad(amsgrad);
                    if (decoupled) return std::make_unique<optim::AdamW>(std::vector<Tensor>{w}, o);
                    return std::make_unique<optim::Adam>(std::vector<Tensor>{w}, o);
                  },
                  [ref](std::vector<double>& p, const std::vector<double>& g) { ref->step(p, g); }};
  };
  std::vector<Config> configs = {sgd(0.1, 0, 0, 0, false),     sgd(0.05, 0.9, 0.3, 0.01, false),
                                 sgd(0.05, 0.9, 0, 0, true),    adam(1e-2, 0, false, false),
                                 adam(1e-2, 0.1, false, true),  adam(2e-2, 0.1, true, true),
                                 adam(1e-2, 0.05, true, false)};
  manual_seed(44);
  for (std::size_t c = 0; c < configs.size(); ++c) {
    CAPTURE(c, configs[c].name);
    const std::vector<double> p0 = random_vector(12, 1.0);
    Tensor fused64 = from_vector<double>(p0, {3, 4});
    Tensor strided64 = from_vector<double>(p0, {3, 4}).t().contiguous().t();  // same values, strides [1, 3]
    Tensor fused32 = fused64.to(kFloat32);
    REQUIRE_FALSE(strided64.is_contiguous());
    for (Tensor* w : {&fused64, &strided64, &fused32}) w->requires_grad_(true);
    auto o1 = configs[c].make(fused64), o2 = configs[c].make(strided64), o3 = configs[c].make(fused32);
    std::vector<double> ref = p0;
    for (int step = 0; step < 6; ++step) {
      const std::vector<double> g = random_vector(12, step < 3 ? 1.0 : 0.1);
      const Tensor gt = from_vector<double>(g, {3, 4});
      fused64.set_grad(gt);
      strided64.set_grad(gt.t().contiguous().t());  // a strided gradient too
      fused32.set_grad(gt.to(kFloat32));
      o1->step();
      o2->step();
      o3->step();
      configs[c].ref_step(ref, g);
    }
    const auto a = values(fused64), b = values(strided64), f = values(fused32);
    for (int i = 0; i < 12; ++i) {
      CHECK(a[i] == Approx(ref[i]).margin(1e-12));
      CHECK(b[i] == Approx(ref[i]).margin(1e-12));
      CHECK(f[i] == Approx(ref[i]).margin(2e-5));
    }
  }
}

TEST_CASE("fused updates keep an infinite weight infinite without weight decay", "[optim]") {
  // g += 0 * w would turn the gradient into NaN; the tensor-op update never computes it.
  Tensor w = leaf({INFINITY, 1.0});
  optim::SGD sgd({w}, optim::SGDOptions(0.1).momentum(0.9));
  w.set_grad(from_vector<double>({1.0, 1.0}, {2}));
  sgd.step();
  CHECK(values(w)[0] == INFINITY);
  CHECK(values(w)[1] == Approx(0.9));
  Tensor u = leaf({-INFINITY, 1.0});
  optim::Adam adam({u}, optim::AdamOptions(0.1));
  u.set_grad(from_vector<double>({1.0, 1.0}, {2}));
  adam.step();
  CHECK(values(u)[0] == -INFINITY);
  CHECK(values(u)[1] == Approx(0.9));
}

TEST_CASE("optimizers skip parameters without grad and zero_grad clears grads", "[optim]") {
  Tensor a = leaf({1.0, 2.0}, kFloat32), b = leaf({3.0}, kFloat32);
  optim::SGD opt({a, b}, optim::SGDOptions(0.5).momentum(0.9));
  a.set_grad(from_vector<float>({1.f, -2.f}, {2}));
  opt.step();
  CHECK(values(a) == std::vector<double>{0.5, 3.0});
  CHECK(values(b) == std::vector<double>{3.0});
  CHECK(a.dtype() == kFloat32);
  opt.zero_grad(/*set_to_none=*/false);
  CHECK(values(a.grad()) == std::vector<double>{0.0, 0.0});
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
}

TEST_CASE("optimizers validate their arguments", "[optim]") {
  Tensor w = leaf({1.0});
  CHECK_THROWS_AS(optim::SGD({}, optim::SGDOptions(0.1)), ValueError);
  CHECK_THROWS_AS(optim::SGD({w}, optim::SGDOptions(-0.1)), ValueError);
  CHECK_THROWS_AS(optim::SGD({w}, optim::SGDOptions(0.1).nesterov(true)), ValueError);
  CHECK_THROWS_AS(optim::SGD({w}, optim::SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)), ValueError);
  CHECK_THROWS_AS(optim::SGD({w, w}, optim::SGDOptions(0.1)), ValueError);
  CHECK_THROWS_AS(optim::Adam({w}, optim::AdamOptions(1e-3).betas(1.0, 0.999)), ValueError);
  CHECK_THROWS_AS(optim::Adam({w}, optim::AdamOptions(1e-3).eps(-1)), ValueError);
  Tensor non_leaf = mul(w, 2.0);
  CHECK_THROWS_AS(optim::Adam({non_leaf}), ValueError);
  CHECK_THROWS_AS(optim::Adam({ones({2}, kInt64)}), ValueError);
  optim::Adam ok({w});
  CHECK_THROWS_AS(ok.set_lr(-1), ValueError);
}

TEST_CASE("StepLR multiplies the learning rate by gamma every step_size epochs", "[optim]") {
  Tensor w = leaf({1.0});
  optim::SGD opt({w}, optim::SGDOptions(1.0));
  optim::StepLR sched(opt, 2, 0.5);
  std::vector<double> lrs;
  for (int e = 0; e < 6; ++e) {
    lrs.push_back(sched.get_last_lr());
    sched.step();
  }
  CHECK(lrs == std::vector<double>{1.0, 1.0, 0.5, 0.5, 0.25, 0.25});
  CHECK(opt.lr() == 0.125);
  CHECK_THROWS_AS(optim::StepLR(opt, 0), ValueError);
}

TEST_CASE("CosineAnnealingLR follows the half cosine from base_lr to eta_min", "[optim]") {
  Tensor w = leaf({1.0});
  optim::Adam opt({w}, optim::AdamOptions(0.4));
  optim::CosineAnnealingLR sched(opt, 4, 0.1);
  // lr(t) = 0.1 + 0.3 * (1 + cos(pi t / 4)) / 2: t = 1..4 and beyond (clamped at t_max).
  const double s2 = std::sqrt(0.5);
  const std::vector<double> expected = {0.1 + 0.15 * (1 + s2), 0.25, 0.1 + 0.15 * (1 - s2), 0.1, 0.1};
  CHECK(sched.get_last_lr() == 0.4);
  for (double e : expected) {
    sched.step();
    CHECK(opt.lr() == Approx(e).margin(1e-15));
  }
  CHECK_THROWS_AS(optim::CosineAnnealingLR(opt, 0), ValueError);
  CHECK_THROWS_AS(optim::CosineAnnealingLR(opt, 3, -1.0), ValueError);
}

TEST_CASE("SGD with momentum fits a linear regression through autograd", "[optim]") {
  manual_seed(9);
  nn::Linear fc(3, 1);
  Tensor x = randn({64, 3});
  Tensor true_w = from_vector<float>({1.5f, -2.0f, 0.5f}, {3, 1});
  Tensor y = add(matmul(x, true_w), 0.7);
  optim::SGD opt(fc->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  double first = 0, last = 0;
  for (int it = 0; it < 150; ++it) {
    opt.zero_grad();
    Tensor diff = sub(fc->forward(x), y);
    Tensor loss = mean(mul(diff, diff));
    loss.backward();
    opt.step();
    if (it == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  CHECK(first > 1.0);
  CHECK(last < 1e-6);
  auto w = values(fc->weight);
  CHECK(w[0] == Approx(1.5).margin(1e-3));
  CHECK(w[1] == Approx(-2.0).margin(1e-3));
  CHECK(w[2] == Approx(0.5).margin(1e-3));
  CHECK(values(fc->bias)[0] == Approx(0.7).margin(1e-3));
}
