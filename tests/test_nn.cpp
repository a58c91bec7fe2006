// nn::Module, the layers, default initialisation, state_dict and nn::save/load.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "../examples/mnist_conv/net.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/nn/init.hpp"
#include "tessera/nn/layers.hpp"
#include "tessera/nn/module.hpp"
#include "tessera/nn/serialize.hpp"
#include "tessera/ops.hpp"
#include "tessera/random.hpp"

using namespace tessera;
using Catch::Matchers::Contains;

namespace {

std::vector<double> values(const Tensor& t) {
  Tensor c = t.detach().to(Device::cpu(), kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> out;
  for (auto& kv : named) out.push_back(kv.first);
  return out;
}

struct Block : nn::Module {
  Block() : Module("Block") {
    fc1 = register_module("fc1", nn::Linear(4, 3));
    body = register_module("body",  nn::Sequential(
                                        nn::Linear(3, 5), nn::ReLU(),
                                        nn::Linear(5, 2, /*bias=*/false)));
    scale = register_parameter("scale", ones({2}));
    steps = register_buffer("steps", zeros({1}, kInt64));
  }
  Tensor forward(const Tensor& x) override { return mul(body->forward(fc1->forward(x)), scale); }
  nn::Linear fc1{nullptr};
  nn::Sequential body;
  Tensor scale, steps;
};

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("tessera_test_nn_" + std::to_string(::getpid()) + "_" + name)).string();
}

}  // namespace

TEST_CASE("Module names parameters with dotted paths in registration order", "[nn]") {
  Block b;
  std::vector<std::string> expected = {"scale", "fc1.weight", "fc1.bias", "body.0.weight", "body.0.bias",
                                       "body.2.weight"};
  CHECK(names_of(b.named_parameters()) == expected);
  CHECK(b.parameters().size() == 6);
  CHECK(names_of(b.named_parameters(/*recurse=*/false)) == std::vector<std::string>{"scale"});
  CHECK(names_of(b.named_buffers()) == std::vector<std::string>{"steps"});
  for (const Tensor& p : b.parameters()) {
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  // Handles held by the layer are the registered parameters.
  CHECK(b.parameters()[1].is_same(b.fc1->weight));
  CHECK(b.fc1->weight.shape() == Shape{3, 4});
  CHECK(b.fc1->bias.shape() == Shape{3});

  std::vector<std::string> mods;
  for (auto& kv : b.named_modules()) mods.push_back(kv.first);
  CHECK(mods == std::vector<std::string>{"fc1", "body", "body.0", "body.1", "body.2"});

  auto sd = b.state_dict();
  CHECK(sd.size() == 7);
  CHECK(sd.count("steps") == 1);
  CHECK(sd.count("body.2.bias") == 0);
}

TEST_CASE("Module registration rejects bad names", "[nn]") {
  nn::Module m;
  m.register_parameter("w", ones({2}));
  CHECK_THROWS_AS(m.register_parameter("w", ones({2})), ValueError);
  CHECK_THROWS_WITH(m.register_buffer("w", ones({2})), Contains("already registered"));
  CHECK_THROWS_AS(m.register_parameter("a.b", ones({2})), ValueError);
  CHECK_THROWS_AS(m.register_parameter("", ones({2})), ValueError);
  CHECK_THROWS_AS(m.register_module("child", std::shared_ptr<nn::LinearImpl>()), ValueError);
  CHECK_THROWS_AS(m.register_module("child", nn::Linear(nullptr)), ValueError);
  CHECK_THROWS_AS(m.register_parameter("i", ones({2}, kInt64)), DTypeError);
  CHECK_THROWS_AS(m.forward(ones({1})), UnsupportedError);
}

TEST_CASE("train and eval propagate to submodules", "[nn]") {
  Block b;
  CHECK(b.is_training());
  b.eval();
  CHECK_FALSE(b.is_training());
  for (auto& kv : b.named_modules()) CHECK_FALSE(kv.second->is_training());
  b.train();
  for (auto& kv : b.named_modules()) CHECK(kv.second->is_training());
}

TEST_CASE("Linear and Conv2d initialise like PyTorch (kaiming_uniform_, a = sqrt(5))", "[nn]") {
  manual_seed(123);
  nn::Linear fc(200, 300);
  const double bound = 1.0 / std::sqrt(200.0);  // gain sqrt(2/6) * sqrt(3/fan_in)
  auto w = values(fc->weight);
  double mx = 0, sum = 0, sq = 0;
  for (double v : w) {
    mx = std::max(mx, std::abs(v));
    sum += v;
    sq += v * v;
  }
  const double n = double(w.size());
  CHECK(mx <= bound);
  CHECK(mx > 0.99 * bound);                                    // fills the whole range
  CHECK(std::abs(sum / n) < 0.01 * bound);                     // mean 0
  CHECK(sq / n == Approx(bound * bound / 3).epsilon(0.02));    // variance of U(-b, b)
  for (double v : values(fc->bias)) CHECK(std::abs(v) <= bound);

  nn::Conv2d conv(nn::Conv2dOptions(6, 16, {5, 3}).groups(2));
  CHECK(conv->weight.shape() == Shape{16, 3, 5, 3});
  const double cbound = 1.0 / std::sqrt(3.0 * 5 * 3);
  double cmx = 0;
  for (double v : values(conv->weight)) cmx = std::max(cmx, std::abs(v));
  CHECK(cmx <= cbound);
  CHECK(cmx > 0.95 * cbound);
  for (double v : values(conv->bias)) CHECK(std::abs(v) <= cbound);

  // kaiming_uniform_ with a = 0 (relu gain): bound sqrt(6 / fan_in).
  Tensor t = empty({64, 50});
  nn::init::kaiming_uniform_(t, 0.0);
  double kmx = 0;
  for (double v : values(t)) kmx = std::max(kmx, std::abs(v));
  CHECK(kmx <= std::sqrt(6.0 / 50));
  CHECK(kmx > 0.95 * std::sqrt(6.0 / 50));
  CHECK(nn::init::calculate_fan_in_and_fan_out(conv->weight) == std::pair<int64_t, int64_t>{45, 240});
  CHECK_THROWS_AS(nn::init::calculate_fan_in_and_fan_out(ones({3})), ShapeError);
}

TEST_CASE("initialisation is reproducible from the seed", "[nn]") {
  manual_seed(7);
  mnist_conv::Net a;
  manual_seed(7);
  mnist_conv::Net b;
  manual_seed(8);
  mnist_conv::Net c;
  auto pa = a.named_parameters(), pb = b.named_parameters(), pc = c.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CHECK(values(pa[i].second) == values(pb[i].second));
    CHECK(values(pa[i].second) != values(pc[i].second));
  }
}

TEST_CASE("the mnist_conv Net matches pytorch/examples in names, shapes and output", "[nn]") {
  manual_seed(1);
  mnist_conv::Net net;
  std::vector<std::pair<std::string, Shape>> expected = {
      {"conv1.weight", {32, 1, 3, 3}}, {"conv1.bias", {32}},    {"conv2.weight", {64, 32, 3, 3}},
      {"conv2.bias", {64}},            {"fc1.weight", {128, 9216}}, {"fc1.bias", {128}},
      {"fc2.weight", {10, 128}},       {"fc2.bias", {10}}};
  auto named = net.named_parameters();
  REQUIRE(named.size() == expected.size());
  for (std::size_t i = 0; i < named.size(); ++i) {
    CHECK(named[i].first == expected[i].first);
    CHECK(named[i].second.shape() == expected[i].second);
  }
  CHECK(nn::parameter_count(net) == 1199882);
  net.eval();
  Tensor x = randn({2, 1, 28, 28});
  Tensor y = net.forward(x);
  CHECK(y.shape() == Shape{2, 10});
  auto v = values(y);
  for (int r = 0; r < 2; ++r) {  // rows are log-probabilities
    double s = 0;
    for (int j = 0; j < 10; ++j) s += std::exp(v[r * 10 + j]);
    CHECK(s == Approx(1.0).epsilon(1e-5));
  }
  CHECK_THAT(net.str(), Contains("(conv1): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))"));
  CHECK_THAT(net.str(), Contains("(fc1): Linear(in_features=9216, out_features=128, bias=true)"));
}

TEST_CASE("Linear forward and backward against a float64 reference", "[nn]") {
  manual_seed(3);
  nn::Linear fc(5, 3);
  Tensor x = randn({4, 5});
  Tensor y = fc->forward(x);
  REQUIRE(y.shape() == Shape{4, 3});
  auto W = values(fc->weight), B = values(fc->bias), X = values(x), Y = values(y);
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 3; ++o) {
      double ref = B[o];
      for (int i = 0; i < 5; ++i) ref += X[n * 5 + i] * W[o * 5 + i];
      CHECK(Y[n * 3 + o] == Approx(ref).margin(1e-5));
    }
  // loss = sum(y * c): dW[o, i] = sum_n c[n, o] x[n, i]; db[o] = sum_n c[n, o].
  Tensor c = randn({4, 3});
  sum(mul(y, c)).backward();
  auto C = values(c), dW = values(fc->weight.grad()), dB = values(fc->bias.grad());
  for (int o = 0; o < 3; ++o) {
    double db = 0;
    for (int n = 0; n < 4; ++n) db += C[n * 3 + o];
    CHECK(dB[o] == Approx(db).margin(1e-5));
    for (int i = 0; i < 5; ++i) {
      double dw = 0;
      for (int n = 0; n < 4; ++n) dw += C[n * 3 + o] * X[n * 5 + i];
      CHECK(dW[o * 5 + i] == Approx(dw).margin(1e-5));
    }
  }
  fc->zero_grad(/*set_to_none=*/false);
  for (double v : values(fc->weight.grad())) CHECK(v == 0.0);
  fc->zero_grad();
  CHECK_FALSE(fc->weight.grad().defined());
  CHECK_FALSE(fc->bias.grad().defined());
}

TEST_CASE("Conv2d forward against direct loops", "[nn]") {
  manual_seed(5);
  nn::Conv2d conv(nn::Conv2dOptions(2, 3, {3, 2}).stride({2, 1}).padding(1));
  Tensor x = randn({2, 2, 5, 4});
  Tensor y = conv->forward(x);
  // OH = (5 + 2 - 3)/2 + 1 = 3, OW = (4 + 2 - 2)/1 + 1 = 5.
  REQUIRE(y.shape() == Shape{2, 3, 3, 5});
  auto W = values(conv->weight), B = values(conv->bias), X = values(x), Y = values(y);
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 3; ++o)
      for (int oh = 0; oh < 3; ++oh)
        for (int ow = 0; ow < 5; ++ow) {
          double ref = B[o];
          for (int c = 0; c < 2; ++c)
            for (int kh = 0; kh < 3; ++kh)
              for (int kw = 0; kw < 2; ++kw) {
                int ih = oh * 2 - 1 + kh, iw = ow - 1 + kw;
                if (ih < 0 || ih >= 5 || iw < 0 || iw >= 4) continue;
                ref += W[((o * 2 + c) * 3 + kh) * 2 + kw] * X[((n * 2 + c) * 5 + ih) * 4 + iw];
              }
          CHECK(Y[((n * 3 + o) * 3 + oh) * 5 + ow] == Approx(ref).margin(1e-5));
        }
  CHECK_THROWS_AS(nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)), ValueError);
  CHECK_THROWS_AS(nn::Conv2d(0, 4, 3), ValueError);
  CHECK_THROWS_AS(nn::Linear(0, 4), ValueError);
}

TEST_CASE("Sequential chains its modules", "[nn]") {
  manual_seed(11);
  auto fc1 = nn::Linear(6, 4);
  auto fc2 = nn::Linear(4, 3);
  nn::Sequential seq{fc1, nn::ReLU(), fc2, nn::LogSoftmax(1)};
  CHECK(seq->size() == 4);
  CHECK(names_of(seq->named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  Tensor x = randn({5, 6});
  auto got = values(seq->forward(x));
  auto ref = values(log_softmax(fc2->forward(relu(fc1->forward(x))), 1));
  REQUIRE(got.size() == ref.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(ref[i]).margin(1e-6));
  CHECK(seq[1]->type_name() == "ReLU");
  CHECK_THROWS_AS(seq[4], IndexError);
  CHECK_THROWS_AS(seq->push_back(nn::Linear(nullptr)), ValueError);
  seq->push_back("head", nn::Flatten());
  CHECK(seq->named_children().back().first == "head");
}

TEST_CASE("pooling, flatten, dropout and log_softmax layers", "[nn]") {
  manual_seed(2);
  Tensor x = randn({2, 3, 4, 6});
  auto X = values(x);
  Tensor mp = nn::MaxPool2d(2)->forward(x);
  Tensor ap = nn::AvgPool2d(nn::AvgPool2dOptions({2, 3}))(x);
  REQUIRE(mp.shape() == Shape{2, 3, 2, 3});
  REQUIRE(ap.shape() == Shape{2, 3, 2, 2});
  auto M = values(mp), A = values(ap);
  for (int nc = 0; nc < 6; ++nc)
    for (int oh = 0; oh < 2; ++oh) {
      for (int ow = 0; ow < 3; ++ow) {
        double m = -1e30;
        for (int kh = 0; kh < 2; ++kh)
          for (int kw = 0; kw < 2; ++kw) m = std::max(m, X[(nc * 4 + oh * 2 + kh) * 6 + ow * 2 + kw]);
        CHECK(M[(nc * 2 + oh) * 3 + ow] == Approx(m));
      }
      for (int ow = 0; ow < 2; ++ow) {
        double s = 0;
        for (int kh = 0; kh < 2; ++kh)
          for (int kw = 0; kw < 3; ++kw) s += X[(nc * 4 + oh * 2 + kh) * 6 + ow * 3 + kw];
        CHECK(A[(nc * 2 + oh) * 2 + ow] == Approx(s / 6).margin(1e-6));
      }
    }
  CHECK(nn::AdaptiveAvgPool2d(1)->forward(x).shape() == Shape{2, 3, 1, 1});
  CHECK(nn::Flatten()->forward(x).shape() == Shape{2, 72});
  CHECK(nn::Flatten(0)->forward(x).shape() == Shape{144});

  nn::Dropout drop(0.25);
  Tensor big = randn({4000}).abs().add_(0.5);  // strictly positive
  auto in = values(big);
  auto out = values(drop->forward(big));
  int zeros_seen = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (out[i] == 0.0) ++zeros_seen;
    else CHECK(out[i] == Approx(in[i] / 0.75).epsilon(1e-6));
  }
  CHECK(zeros_seen > 850);   // expected 1000, sd ~27
  CHECK(zeros_seen < 1150);
  drop->eval();
  CHECK(values(drop->forward(big)) == in);
  CHECK_THROWS_AS(nn::Dropout(1.5), ValueError);
}

TEST_CASE("state_dict round-trips and load_state_dict reports mismatches", "[nn]") {
  manual_seed(21);
  Block a;
  manual_seed(22);
  Block b;
  REQUIRE(values(a.fc1->weight) != values(b.fc1->weight));
  b.load_state_dict(a.state_dict());
  for (auto& kv : a.state_dict()) CHECK(values(kv.second) == values(b.state_dict().at(kv.first)));
  // Still leaves that require grad, same handles.
  CHECK(b.fc1->weight.requires_grad());
  CHECK(b.fc1->weight.is_leaf());
  CHECK(b.parameters()[1].is_same(b.fc1->weight));

  // Shape mismatch names the parameter and both shapes; nothing is copied.
  auto sd = a.state_dict();
  sd["fc1.weight"] = zeros({4, 3});
  auto before = values(b.fc1->bias);
  sd["fc1.bias"] = full({3}, 9.0);
  CHECK_THROWS_AS(b.load_state_dict(sd), ShapeError);
  CHECK_THROWS_WITH(b.load_state_dict(sd), Contains("fc1.weight") && Contains("[4, 3]") && Contains("[3, 4]"));
  CHECK(values(b.fc1->bias) == before);

  // Missing and unexpected keys are listed.
  auto sd2 = a.state_dict();
  sd2.erase("body.0.bias");
  sd2.erase("scale");
  sd2["extra.weight"] = zeros({1});
  CHECK_THROWS_AS(b.load_state_dict(sd2), ValueError);
  CHECK_THROWS_WITH(b.load_state_dict(sd2), Contains("body.0.bias") && Contains("scale") && Contains("extra.weight"));
  b.load_state_dict(sd2, /*strict=*/false);  // loads what matches

  // Dtype converts on load (float64 state into float32 parameters).
  auto sd3 = a.state_dict();
  sd3["scale"] = from_vector<double>({2.5, -1.5}, {2});
  b.load_state_dict(sd3);
  CHECK(b.scale.dtype() == kFloat32);
  CHECK(values(b.scale) == std::vector<double>{2.5, -1.5});
}

TEST_CASE("Module::to moves and converts parameters in place", "[nn]") {
  manual_seed(4);
  Block b;
  Tensor w = b.fc1->weight;
  auto before = values(w);
  sum(b.forward(randn({2, 4}))).backward();
  REQUIRE(w.grad().defined());
  b.to(Device::cpu());
  CHECK(w.is_same(b.fc1->weight));
  b.to(kFloat64);
  CHECK(w.dtype() == kFloat64);  // the handle held outside sees the conversion
  CHECK(b.fc1->weight.dtype() == kFloat64);
  CHECK(w.grad().dtype() == kFloat64);
  CHECK(b.steps.dtype() == kInt64);  // integer buffers keep their dtype
  CHECK(w.requires_grad());
  CHECK(w.is_leaf());
  auto after = values(w);
  for (std::size_t i = 0; i < before.size(); ++i) CHECK(after[i] == Approx(before[i]));
  // Float64 forward and backward work after the conversion.
  Tensor y = b.forward(randn({2, 4}, kFloat64));
  CHECK(y.dtype() == kFloat64);
  CHECK_THROWS_AS(b.to(kInt32), DTypeError);
}

TEST_CASE("nn::save and nn::load round-trip through a safetensors file", "[nn][io]") {
  std::string path = temp_path("block.safetensors");
  manual_seed(31);
  Block a;
  nn::save(a, path);
  manual_seed(32);
  Block b;
  nn::load(b, path);
  for (auto& kv : a.state_dict()) CHECK(values(kv.second) == values(b.state_dict().at(kv.first)));
  nn::Linear other(4, 3);
  CHECK_THROWS_AS(nn::load(*other, path), ValueError);
  std::filesystem::remove(path);
}
