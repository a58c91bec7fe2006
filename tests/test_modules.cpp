// libtorch-style module holders (TESSERA_MODULE), the containers (Sequential, ModuleList,
// ModuleDict), the activation/shape modules and the regression and binary losses: float64
// references computed here from the textbook formulas, gradcheck, PyTorch's documented edge
// behaviour (clamped logs in BCE, 0 log 0 = 0 in kl_div), and the errors for bad inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/autograd/gradcheck.hpp"
#include "tessera/nn/nn.hpp"
#include "tessera/ops.hpp"
#include "tessera/random.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using tessera::testing::random_tensor;
using tessera::testing::values;
using V = std::vector<Tensor>;

namespace {

// A model written as libtorch's C++ frontend tutorial writes one: holder members, a forward
// taking its Tensor by value that overrides nothing, registered with register_module.
struct NetImpl : nn::Module {
  NetImpl(int64_t in, int64_t hidden) : fc1(in, hidden) {
    register_module("fc1", fc1);
    fc2 = register_module("fc2", nn::Linear(hidden, 2));
  }
  Tensor forward(Tensor x) { return fc2(tanh(fc1(x))); }
  nn::Linear fc1, fc2{nullptr};
};
TESSERA_MODULE(Net);

struct Doubler : nn::Module {  // no override either; named from its class
  Tensor forward(Tensor x) { return mul(x, 2.0); }
};

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(tol));
}

std::vector<double> map2(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  auto x = values(a), y = values(b);
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = f(x[i], y[i]);
  return out;
}

double total(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e;
  return s;
}

}  // namespace

TEST_CASE("module holders: libtorch model code, empty holders, sharing, names", "[nn][modules]") {
  manual_seed(1);
  Net net(3, 5);
  CHECK(net->type_name() == "Net");
  CHECK(Doubler().type_name() == "Doubler");
  CHECK(net->fc1->type_name() == "Linear");
  const std::vector<std::string> names = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  std::vector<std::string> got;
  for (auto& kv : net->named_parameters()) got.push_back(kv.first);
  CHECK(got == names);
  // The holder's call and the handles are the registered modules.
  Tensor x = randn({4, 3});
  Tensor y = net(x);
  CHECK(values(y) == values(linear(tanh(linear(x, net->fc1->weight, net->fc1->bias)), net->fc2->weight,
                                   net->fc2->bias)));
  CHECK(net->parameters()[0].is_same(net->fc1->weight));
  // A copy of a holder shares the module (as a Python reference does).
  Net alias = net;
  CHECK(alias.ptr() == net.ptr());
  alias->eval();
  CHECK_FALSE(net->is_training());

  nn::Linear empty{nullptr};
  CHECK(empty.is_empty());
  CHECK_FALSE(bool(empty));
  CHECK_THROWS_WITH(empty(x), Contains("Linear") && Contains("empty"));
  CHECK_THROWS_AS(empty->weight, ValueError);
  empty = nn::Linear(3, 1);
  CHECK(empty(x).shape() == Shape{4, 1});
  CHECK(nn::Linear(nullptr).ptr() == nullptr);
}

TEST_CASE("Sequential calls each module's own forward, takes names, indexes by type", "[nn][modules]") {
  manual_seed(2);
  nn::Sequential seq(nn::Linear(3, 4), nn::Tanh(), std::make_shared<Doubler>(), nn::Linear(4, 2));
  Tensor x = randn({5, 3});
  auto fc1 = seq->ptr<nn::LinearImpl>(0), fc2 = seq->ptr<nn::LinearImpl>(3);
  CHECK(values(seq(x)) == values(fc2->forward(mul(tanh(fc1->forward(x)), 2.0))));
  CHECK_THROWS_WITH(seq->ptr<nn::LinearImpl>(1), Contains("Linear") && Contains("Tanh"));
  CHECK_THROWS_AS(seq[9], IndexError);
  CHECK(seq->at<nn::LinearImpl>(3).options.out_features_ == 2);

  nn::Sequential named({{"fc", nn::Linear(3, 2)}, {"act", nn::Sigmoid()}});
  std::vector<std::string> got;
  for (auto& kv : named->named_parameters()) got.push_back(kv.first);
  CHECK(got == std::vector<std::string>{"fc.weight", "fc.bias"});
  CHECK(named->str().find("(act): Sigmoid") != std::string::npos);

  nn::Sequential braces{nn::Linear(3, 3), nn::ReLU()};
  braces->extend(*named);
  CHECK(braces->size() == 4);
  CHECK(braces(x).shape() == Shape{5, 2});
  CHECK_THROWS_AS(braces->push_back(nn::ReLU(nullptr)), ValueError);
}

TEST_CASE("ModuleList and ModuleDict register, iterate and look up", "[nn][modules]") {
  manual_seed(3);
  nn::ModuleList blocks{nn::Linear(4, 4), nn::Linear(4, 4)};
  blocks->push_back(nn::GELU("tanh"));
  CHECK(blocks->size() == 3);
  Tensor x = randn({2, 4});
  Tensor y = x;
  for (const auto& b : *blocks) y = b->forward(y);
  Tensor ref = gelu(blocks->at<nn::LinearImpl>(1).forward(blocks->at<nn::LinearImpl>(0).forward(x)), "tanh");
  CHECK(values(y) == values(ref));
  CHECK(blocks->named_parameters()[2].first == "1.weight");
  CHECK_THROWS_AS(blocks->ptr<nn::LinearImpl>(2), ValueError);
  CHECK_THROWS_AS(blocks[3], IndexError);
  CHECK_THROWS_AS(blocks->forward(x), UnsupportedError);

  nn::ModuleDict heads({{"cls", nn::Linear(4, 3)}, {"reg", nn::Linear(4, 1)}});
  CHECK(heads->keys() == std::vector<std::string>{"cls", "reg"});
  CHECK(heads->contains("reg"));
  CHECK(heads->at<nn::LinearImpl>("reg").options.out_features_ == 1);
  CHECK_THROWS_WITH(heads["box"], Contains("'box'") && Contains("'cls', 'reg'"));
  heads->insert("reg", nn::Linear(4, 2));  // replaces, keeps the order
  CHECK(heads->keys() == std::vector<std::string>{"cls", "reg"});
  CHECK(heads->at<nn::LinearImpl>("reg").options.out_features_ == 2);
  CHECK(heads->parameters().size() == 4);
  CHECK_THROWS_AS(heads->insert("a.b", nn::ReLU()), ValueError);
}

TEST_CASE("Module::apply visits children before parents; replace_module swaps a child", "[nn][modules]") {
  Net net(2, 3);
  std::vector<std::string> order;
  net->apply([&](nn::Module& m) { order.push_back(m.type_name()); });
  CHECK(order == std::vector<std::string>{"Linear", "Linear", "Net"});
  NoGradGuard no_grad;
  net->apply([](nn::Module& m) {
    if (auto* lin = dynamic_cast<nn::LinearImpl*>(&m)) lin->weight.fill_(0.5);
  });
  for (double v : values(net->fc2->weight)) CHECK(v == 0.5);
  net->replace_module("fc2", nn::Linear(3, 7));
  CHECK(net->named_children()[1].second->parameters()[0].shape() == Shape{7, 3});
  CHECK_THROWS_AS(net->replace_module("fc3", nn::Linear(3, 7)), ValueError);
}

TEST_CASE("activation and shape modules against their formulas", "[nn][modules]") {
  manual_seed(4);
  Tensor x = random_tensor({3, 4}, kFloat64);
  auto X = values(x);
  auto each = [&](const std::function<double(double)>& f) {
    std::vector<double> out;
    for (double v : X) out.push_back(f(v));
    return out;
  };
  check_close(values(nn::Tanh()(x)), each([](double v) { return std::tanh(v); }), 1e-12);
  check_close(values(nn::Sigmoid()(x)), each([](double v) { return 1 / (1 + std::exp(-v)); }), 1e-12);
  check_close(values(nn::SiLU()(x)), each([](double v) { return v / (1 + std::exp(-v)); }), 1e-12);
  check_close(values(nn::LeakyReLU(0.2)(x)), each([](double v) { return v > 0 ? v : 0.2 * v; }), 1e-15);
  check_close(values(nn::LeakyReLU()(x)), each([](double v) { return v > 0 ? v : 0.01 * v; }), 1e-15);
  check_close(values(nn::GELU()(x)), each([](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }),
              1e-7);
  CHECK(values(nn::Identity()(x)) == X);
  auto sm = values(nn::Softmax(1)(x));
  for (int r = 0; r < 3; ++r) CHECK(sm[r * 4] + sm[r * 4 + 1] + sm[r * 4 + 2] + sm[r * 4 + 3] == Approx(1.0));
  CHECK_THROWS_AS(nn::GELU("fast"), ValueError);
  CHECK(gradcheck([](const V& v) { return leaky_relu(v[0], 0.3); }, {random_tensor({4, 3}, kFloat64, true)}));
  CHECK(gradcheck([](const V& v) { return silu(v[0]); }, {random_tensor({4, 3}, kFloat64, true)}));

  Tensor f = randn({2, 12});
  CHECK(nn::Unflatten(1, Shape{3, 4})(f).shape() == Shape{2, 3, 4});
  CHECK(unflatten(f, -1, {-1, 6}).shape() == Shape{2, 2, 6});
  CHECK(values(unflatten(f, 1, {2, 6})) == values(f));
  CHECK_THROWS_WITH(unflatten(f, 1, {5, -1}), Contains("[5, -1]") && Contains("12"));
  CHECK_THROWS_AS(unflatten(f, 1, {3, 3}), ShapeError);
  CHECK_THROWS_AS(unflatten(f, 1, {-1, -1}), ShapeError);
  CHECK_THROWS_AS(unflatten(f, 2, {1}), IndexError);
}

TEST_CASE("Dropout2d zeroes whole channels and scales the rest", "[nn][modules]") {
  manual_seed(5);
  const double p = 0.4;
  nn::Dropout2d drop(p);
  Tensor x = add(rand({8, 16, 3, 5}), 0.5);  // no zeros in the input
  Tensor y = drop(x);
  auto X = values(x), Y = values(y);
  int zeroed = 0;
  for (int c = 0; c < 8 * 16; ++c) {
    const bool dropped = Y[c * 15] == 0.0;
    zeroed += dropped;
    for (int i = 0; i < 15; ++i) {
      if (dropped)
        CHECK(Y[c * 15 + i] == 0.0);
      else
        CHECK(Y[c * 15 + i] == Approx(X[c * 15 + i] / (1 - p)).epsilon(1e-6));
    }
  }
  CHECK(zeroed > 0.2 * 128);  // binomial(128, 0.4): mean 51, sd 5.5
  CHECK(zeroed < 0.6 * 128);
  drop->eval();
  CHECK(values(drop(x)) == X);
  CHECK_THROWS_AS(dropout2d(randn({3, 4}), 0.5, true), ShapeError);
  CHECK_THROWS_AS(nn::Dropout2d(1.5), ValueError);
  CHECK(values(dropout2d(x, 1.0, true)) == std::vector<double>(X.size(), 0.0));
}

TEST_CASE("regression losses against float64 formulas, every reduction, gradcheck", "[nn][modules][loss]") {
  manual_seed(6);
  Tensor a = random_tensor({4, 5}, kFloat64), b = random_tensor({4, 5}, kFloat64);
  const double n = 20;
  auto d = [](double x, double y) { return x - y; };
  auto mse = map2(a, b, [&](double x, double y) { return d(x, y) * d(x, y); });
  auto l1 = map2(a, b, [&](double x, double y) { return std::abs(d(x, y)); });
  const double beta = 0.7, delta = 0.6;
  auto sl1 = map2(a, b, [&](double x, double y) {
    const double e = std::abs(x - y);
    return e < beta ? 0.5 * e * e / beta : e - 0.5 * beta;
  });
  auto hub = map2(a, b, [&](double x, double y) {
    const double e = std::abs(x - y);
    return e <= delta ? 0.5 * e * e : delta * (e - 0.5 * delta);
  });
  check_close(values(mse_loss(a, b, kNone)), mse, 1e-14);
  CHECK(mse_loss(a, b).item<double>() == Approx(total(mse) / n));
  CHECK(mse_loss(a, b, kSum).item<double>() == Approx(total(mse)));
  CHECK(nn::MSELoss()(a, b).item<double>() == Approx(total(mse) / n));
  CHECK(nn::L1Loss(nn::L1LossOptions().reduction(kSum))(a, b).item<double>() == Approx(total(l1)));
  check_close(values(smooth_l1_loss(a, b, kNone, beta)), sl1, 1e-14);
  check_close(values(huber_loss(a, b, kNone, delta)), hub, 1e-14);
  CHECK(nn::HuberLoss(nn::HuberLossOptions().delta(delta))(a, b).item<double>() == Approx(total(hub) / n));
  CHECK(nn::SmoothL1Loss(nn::SmoothL1LossOptions().beta(beta))(a, b).item<double>() == Approx(total(sl1) / n));
  // beta = 0 is l1; both regimes of the piecewise losses are exercised by these inputs.
  CHECK(values(smooth_l1_loss(a, b, kNone, 0.0)) == values(l1_loss(a, b, kNone)));
  int small = 0;
  for (double v : l1) small += v < beta;
  CHECK(small > 0);
  CHECK(small < 20);

  Tensor ga = random_tensor({3, 4}, kFloat64, true), gb = random_tensor({3, 4}, kFloat64, true);
  CHECK(gradcheck([](const V& v) { return mse_loss(v[0], v[1]); }, {ga, gb}));
  CHECK(gradcheck([](const V& v) { return l1_loss(v[0], v[1], kSum); }, {ga, gb}));
  CHECK(gradcheck([](const V& v) { return smooth_l1_loss(v[0], v[1], kNone, 0.8); }, {ga, gb}));
  CHECK(gradcheck([](const V& v) { return huber_loss(v[0], v[1], kMean, 0.5); }, {ga, gb}));

  CHECK_THROWS_WITH(mse_loss(randn({4}), randn({4, 1})), Contains("mse_loss") && Contains("[4]") && Contains("[4, 1]"));
  CHECK_THROWS_AS(l1_loss(randn({3}), ones({3}, kInt64)), DTypeError);
  CHECK_THROWS_AS(smooth_l1_loss(a, b, kMean, -1.0), ValueError);
  CHECK_THROWS_AS(huber_loss(a, b, kMean, 0.0), ValueError);
  CHECK_THROWS_WITH(mse_loss(a, b, kBatchMean), Contains("BatchMean"));
}

TEST_CASE("binary_cross_entropy: formula, PyTorch's clamped logs at 0 and 1, gradient, bad input", "[nn][modules][loss]") {
  manual_seed(7);
  Tensor x = add(mul(rand({6, 3}, kFloat64), 0.98), 0.01), t = rand({6, 3}, kFloat64), w = rand({3}, kFloat64);
  auto W = values(w);
  auto ref = map2(x, t, [](double p, double y) { return -(y * std::log(p) + (1 - y) * std::log(1 - p)); });
  check_close(values(binary_cross_entropy(x, t, Tensor(), kNone)), ref, 1e-12);
  auto weighted = ref;
  for (std::size_t i = 0; i < weighted.size(); ++i) weighted[i] *= W[i % 3];
  CHECK(nn::BCELoss(nn::BCELossOptions().weight(w))(x, t).item<double>() == Approx(total(weighted) / 18));
  CHECK(gradcheck([](const V& v) { return binary_cross_entropy(v[0], v[1], v[2]); },
                  {x.detach().requires_grad_(true), t.detach().requires_grad_(true), w.detach().requires_grad_(true)}));

  // x = 0 and 1: each log is clamped at -100, so the loss is finite, and the gradient uses
  // max(x (1 - x), 1e-12) (both PyTorch's behaviour).
  Tensor edge = from_vector<double>({0.0, 1.0, 0.0, 1.0}, {4}).requires_grad_(true);
  Tensor y = from_vector<double>({1.0, 0.0, 0.0, 1.0}, {4});
  Tensor l = binary_cross_entropy(edge, y, Tensor(), kNone);
  CHECK(values(l) == std::vector<double>{100.0, 100.0, 0.0, 0.0});
  sum(l).backward();
  CHECK(values(edge.grad()) == std::vector<double>{-1e12, 1e12, 0.0, 0.0});

  CHECK_THROWS_WITH(binary_cross_entropy(from_vector<float>({0.5f, 1.5f}, {2}), from_vector<float>({1, 0}, {2})),
                    Contains("binary_cross_entropy") && Contains("[0, 1]") && Contains("logits"));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(binary_cross_entropy(from_vector<float>({0.5f, nan}, {2}), from_vector<float>({1, 0}, {2})),
                  ValueError);
  CHECK_THROWS_WITH(binary_cross_entropy(x, t, rand({2}, kFloat64)), Contains("weight") && Contains("[2]"));
}

TEST_CASE("binary_cross_entropy_with_logits: stable at any magnitude, pos_weight, gradient", "[nn][modules][loss]") {
  manual_seed(8);
  Tensor z = mul(random_tensor({5, 4}, kFloat64), 3.0), t = rand({5, 4}, kFloat64), pw = rand({4}, kFloat64);
  auto PW = values(pw);
  auto Z = values(z), T = values(t);
  std::vector<double> ref, ref_pw;
  for (std::size_t i = 0; i < Z.size(); ++i) {
    // -[p t log s(z) + (1 - t) log(1 - s(z))], with log s(z) = -log1p(exp(-z)).
    const double ls = -std::log1p(std::exp(-Z[i])), l1s = -std::log1p(std::exp(Z[i]));
    ref.push_back(-(T[i] * ls + (1 - T[i]) * l1s));
    ref_pw.push_back(-(PW[i % 4] * T[i] * ls + (1 - T[i]) * l1s));
  }
  check_close(values(binary_cross_entropy_with_logits(z, t, Tensor(), kNone)), ref, 1e-12);
  check_close(values(binary_cross_entropy_with_logits(z, t, Tensor(), kNone, pw)), ref_pw, 1e-12);
  nn::BCEWithLogitsLoss crit(nn::BCEWithLogitsLossOptions().pos_weight(pw));
  CHECK(crit(z, t).item<double>() == Approx(total(ref_pw) / 20));
  CHECK(crit->named_buffers().size() == 1);

  // |z| = 200: exp(200) overflows float32, the stable form does not.
  Tensor big = from_vector<float>({200.f, -200.f, 200.f, -200.f}, {4});
  Tensor lab = from_vector<float>({1.f, 0.f, 0.f, 1.f}, {4});
  auto L = values(binary_cross_entropy_with_logits(big, lab, Tensor(), kNone));
  CHECK(L[0] == 0.0);
  CHECK(L[1] == 0.0);
  CHECK(L[2] == Approx(200.0));
  CHECK(L[3] == Approx(200.0));

  CHECK(gradcheck([](const V& v) { return binary_cross_entropy_with_logits(v[0], v[1], Tensor(), kSum, v[2]); },
                  {z.detach().requires_grad_(true), t.detach().requires_grad_(true), pw.detach().requires_grad_(true)}));
}

TEST_CASE("kl_div: 0 log 0 = 0, log_target, batchmean, gradient", "[nn][modules][loss]") {
  manual_seed(9);
  Tensor logq = log_softmax(random_tensor({3, 5}, kFloat64), 1);
  Tensor p = softmax(random_tensor({3, 5}, kFloat64), 1);
  auto P = values(p), LQ = values(logq);
  P[2] = 0.0;  // a zero target element contributes 0
  p = from_vector<double>(P, {3, 5});
  std::vector<double> ref;
  for (std::size_t i = 0; i < P.size(); ++i) ref.push_back(P[i] > 0 ? P[i] * (std::log(P[i]) - LQ[i]) : 0.0);
  check_close(values(kl_div(logq, p, kNone)), ref, 1e-14);
  CHECK(kl_div(logq, p, kBatchMean).item<double>() == Approx(total(ref) / 3));
  CHECK(nn::KLDivLoss()(logq, p).item<double>() == Approx(total(ref) / 15));
  Tensor logp = log(softmax(random_tensor({3, 5}, kFloat64), 1));
  auto LP = values(logp);
  std::vector<double> ref_log;
  for (std::size_t i = 0; i < LP.size(); ++i) ref_log.push_back(std::exp(LP[i]) * (LP[i] - LQ[i]));
  check_close(values(kl_div(logq, logp, kNone, /*log_target=*/true)), ref_log, 1e-14);
  CHECK(gradcheck([](const V& v) { return kl_div(v[0], v[1], kBatchMean); },
                  {logq.detach().requires_grad_(true), add(p, 0.05).requires_grad_(true)}));
  CHECK(gradcheck([](const V& v) { return kl_div(v[0], v[1], kSum, true); },
                  {logq.detach().requires_grad_(true), logp.detach().requires_grad_(true)}));
}

TEST_CASE("loss modules print their options; classification loss modules wrap the functions", "[nn][modules][loss]") {
  manual_seed(10);
  nn::CrossEntropyLoss ce(nn::CrossEntropyLossOptions().label_smoothing(0.1).ignore_index(2));
  CHECK(ce->str() == "CrossEntropyLoss(reduction=mean, ignore_index=2, label_smoothing=0.1)");
  Tensor logits = randn({6, 4});
  Tensor target = from_vector<int64_t>({0, 2, 3, 1, 2, 0}, {6});
  CHECK(ce(logits, target).item<double>() == cross_entropy(logits, target, kMean, 2, 0.1).item<double>());
  nn::NLLLoss nll(nn::NLLLossOptions().reduction(kSum));
  CHECK(nll(log_softmax(logits, 1), target).item<double>() ==
        nll_loss(log_softmax(logits, 1), target, kSum).item<double>());
  CHECK(nn::HuberLoss()->str() == "HuberLoss(reduction=mean, delta=1)");
  CHECK_THROWS_WITH(nll_loss(log_softmax(logits, 1), target, kBatchMean), Contains("BatchMean"));
}

TEST_CASE("conv_transpose2d against a direct scatter loop (stride, padding, output_padding, groups, dilation)",
          "[nn][modules]") {
  manual_seed(11);
  struct Case {
    int64_t N, Cin, Cout, H, W, kH, kW, s, p, op, g, d;
  };
  for (const Case c : {Case{2, 4, 6, 3, 4, 3, 2, 2, 1, 1, 2, 1}, Case{1, 3, 2, 4, 3, 2, 3, 1, 0, 0, 1, 2},
                       Case{1, 2, 2, 2, 2, 3, 3, 3, 2, 2, 1, 1}}) {
    const int64_t Cg = c.Cin / c.g, Coutg = c.Cout / c.g;
    Tensor x = random_tensor({c.N, c.Cin, c.H, c.W}, kFloat64);
    Tensor w = random_tensor({c.Cin, Coutg, c.kH, c.kW}, kFloat64);
    Tensor b = random_tensor({c.Cout}, kFloat64);
    Tensor y = conv_transpose2d(x, w, b, {c.s, c.s}, {c.p, c.p}, {c.op, c.op}, c.g, {c.d, c.d});
    const int64_t OH = (c.H - 1) * c.s - 2 * c.p + c.d * (c.kH - 1) + c.op + 1;
    const int64_t OW = (c.W - 1) * c.s - 2 * c.p + c.d * (c.kW - 1) + c.op + 1;
    REQUIRE(y.shape() == Shape{c.N, c.Cout, OH, OW});
    auto X = values(x), Wv = values(w), B = values(b);
    std::vector<double> ref(std::size_t(c.N * c.Cout * OH * OW));
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t co = 0; co < c.Cout; ++co)
        for (int64_t i = 0; i < OH * OW; ++i) ref[std::size_t((n * c.Cout + co) * OH * OW + i)] = B[std::size_t(co)];
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t ci = 0; ci < c.Cin; ++ci)
        for (int64_t ih = 0; ih < c.H; ++ih)
          for (int64_t iw = 0; iw < c.W; ++iw)
            for (int64_t cog = 0; cog < Coutg; ++cog)
              for (int64_t kh = 0; kh < c.kH; ++kh)
                for (int64_t kw = 0; kw < c.kW; ++kw) {
                  const int64_t oh = ih * c.s - c.p + kh * c.d, ow = iw * c.s - c.p + kw * c.d;
                  if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                  const int64_t co = (ci / Cg) * Coutg + cog;
                  ref[std::size_t(((n * c.Cout + co) * OH + oh) * OW + ow)] +=
                      X[std::size_t(((n * c.Cin + ci) * c.H + ih) * c.W + iw)] *
                      Wv[std::size_t(((ci * Coutg + cog) * c.kH + kh) * c.kW + kw)];
                }
    check_close(values(y), ref, 1e-12);
    CHECK(gradcheck(
        [c](const V& v) { return conv_transpose2d(v[0], v[1], v[2], {c.s, c.s}, {c.p, c.p}, {c.op, c.op}, c.g, {c.d, c.d}); },
        {x.detach().requires_grad_(true), w.detach().requires_grad_(true), b.detach().requires_grad_(true)}));
  }
  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(8, 4, 4).stride(2).padding(1));
  CHECK(up(randn({2, 8, 7, 7})).shape() == Shape{2, 4, 14, 14});  // the usual 2x upsampling
  CHECK(up->weight.shape() == Shape{8, 4, 4, 4});
  const double bound = 1.0 / std::sqrt(4.0 * 4 * 4);
  for (double v : values(up->bias)) CHECK(std::abs(v) <= bound);
  CHECK(up->str() == "ConvTranspose2d(8, 4, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))");
  CHECK_THROWS_WITH(conv_transpose2d(randn({1, 3, 4, 4}), randn({2, 2, 3, 3})),
                    Contains("conv_transpose2d") && Contains("C_in=3") && Contains("[2, 2, 3, 3]"));
  CHECK_THROWS_WITH(conv_transpose2d(randn({1, 2, 4, 4}), randn({2, 2, 3, 3}), Tensor(), {2, 2}, {0, 0}, {2, 2}),
                    Contains("output_padding"));
  CHECK_THROWS_AS(conv_transpose2d(randn({2, 4, 4}), randn({2, 2, 3, 3})), ShapeError);
  CHECK_THROWS_AS(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(3, 4, 3).groups(2)), ValueError);
}
