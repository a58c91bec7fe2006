// The everyday API a PyTorch user types: Tensor methods with PyTorch's overloads, the
// factories linspace/logspace/eye/randperm, detach_, optimizers from a plain learning rate,
// libtorch's device and dtype constants, and every namespace reached through tessera.hpp
// alone (this file includes nothing else of Tessera's).
#include <catch2/catch.hpp>

#include <tessera/tessera.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>
#include <vector>

using namespace tessera;

namespace {
std::vector<double> vals(const Tensor& t) {
  Tensor c = t.to(Device::cpu(), kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}
}  // namespace

TEST_CASE("Tensor methods: one-dim reductions, max(dim) pairs, var/std corrections, unary and binary methods",
          "[api]") {
  manual_seed(1);
  Tensor x = randn({3, 4}, kFloat64);
  auto X = vals(x);
  // x.sum(1), x.mean(1, true) against loops.
  auto s1 = vals(x.sum(1)), m1 = vals(x.mean(1, true));
  REQUIRE(x.mean(1, true).shape() == Shape{3, 1});
  for (int r = 0; r < 3; ++r) {
    double s = 0;
    for (int c = 0; c < 4; ++c) s += X[r * 4 + c];
    CHECK(s1[r] == Approx(s));
    CHECK(m1[r] == Approx(s / 4));
    // var with correction 0 and 1.
    double ss = 0;
    for (int c = 0; c < 4; ++c) ss += (X[r * 4 + c] - s / 4) * (X[r * 4 + c] - s / 4);
    CHECK(vals(x.var(1, 0.0))[r] == Approx(ss / 4));
    CHECK(vals(x.var(1))[r] == Approx(ss / 3));
    CHECK(vals(x.std(1))[r] == Approx(std::sqrt(ss / 3)));
  }
  CHECK(x.sum({}).dim() == 0);  // a brace list is the dims overload: {} reduces everything
  CHECK(x.sum({}).item<double>() == Approx(std::accumulate(X.begin(), X.end(), 0.0)));
  CHECK(vals(x.sum({0, 1})) == vals(x.sum()));
  CHECK(vals(x.prod(0)) == vals(prod(x, {0})));

  auto [values, indices] = x.max(1);
  auto V = vals(values), I = vals(indices);
  for (int r = 0; r < 3; ++r) {
    auto row_begin = X.begin() + r * 4;
    auto it = std::max_element(row_begin, row_begin + 4);
    CHECK(V[r] == *it);
    CHECK(I[r] == double(it - row_begin));
  }
  CHECK(indices.dtype() == kInt64);
  CHECK(vals(std::get<0>(x.min(0, true))) == vals(std::get<0>(min(x, 0, true))));
  CHECK(x.argmax().item<int64_t>() == int64_t(std::max_element(X.begin(), X.end()) - X.begin()));

  Tensor y = randn({3, 4}, kFloat64);
  CHECK(vals(x.neg()) == vals(neg(x)));
  CHECK(vals(x.sin()) == vals(sin(x)));
  CHECK(vals(x.square()) == vals(mul(x, x)));
  CHECK(vals(x.clamp(-0.5, 0.5)) == vals(clamp(x, -0.5, 0.5)));
  CHECK(vals(x.clamp_min(0.0)) == vals(relu(x)));
  CHECK(vals(x.add(y, 2.0)) == vals(add(x, mul(y, 2.0))));
  CHECK(vals(x.sub(y)) == vals(sub(x, y)));
  CHECK(vals(x.mul(3.0)) == vals(mul(x, 3.0)));
  CHECK(vals(x.gt(y)) == vals(gt(x, y)));
  CHECK(vals(x.where(x.gt(0.0), 0.0)) == vals(relu(x)));
  CHECK(vals(x.maximum(y)) == vals(maximum(x, y)));
  CHECK(vals(x.mm(y.t())) == vals(matmul(x, y.t())));
  CHECK(x.unflatten(1, {2, 2}).shape() == Shape{3, 2, 2});
  CHECK(x.view_as(y.t().contiguous().view({4, 3}).t()).shape() == Shape{3, 4});
  CHECK(x.type_as(ones({1}, kFloat32)).dtype() == kFloat32);
  CHECK(vals(x.tril()) == vals(tril(x)));
}

TEST_CASE("detach_ turns a tensor with history into a leaf that needs no grad", "[api]") {
  Tensor w = randn({2, 2}).requires_grad_(true);
  Tensor y = w.mul(2.0);
  REQUIRE(y.requires_grad());
  REQUIRE_FALSE(y.is_leaf());
  Tensor& same = y.detach_();
  CHECK(&same == &y);
  CHECK_FALSE(y.requires_grad());
  CHECK(y.is_leaf());
  CHECK(w.requires_grad());  // the tensor it came from is untouched
}

TEST_CASE("linspace, logspace, eye and randperm as torch's", "[api]") {
  // torch.linspace(-1, 1, 5) = [-1, -0.5, 0, 0.5, 1]; both ends exact for awkward steps.
  CHECK(vals(linspace(-1, 1, 5)) == std::vector<double>{-1, -0.5, 0, 0.5, 1});
  auto l = vals(linspace(0.1, 0.7, 7, kFloat64));
  CHECK(l.front() == 0.1);
  CHECK(l.back() == 0.7);
  for (int i = 0; i < 7; ++i) CHECK(l[i] == Approx(0.1 + 0.1 * i));
  CHECK(linspace(3, 4, 1).item<float>() == 3.0f);
  CHECK(linspace(3, 4, 0).numel() == 0);
  CHECK(linspace(0, 10, 4, kInt64).dtype() == kInt64);
  CHECK(vals(linspace(0, 10, 4, kInt64)) == std::vector<double>{0, 3, 6, 10});  // truncated
  CHECK_THROWS_AS(linspace(0, 1, -1), ValueError);
  CHECK(vals(logspace(0, 3, 4, 10.0, kFloat64)) == std::vector<double>{1, 10, 100, 1000});
  CHECK(vals(logspace(1, 3, 3, 2.0)) == std::vector<double>{2, 4, 8});

  CHECK(vals(eye(3)) == std::vector<double>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(vals(eye(2, 3, kInt64)) == std::vector<double>{1, 0, 0, 0, 1, 0});
  CHECK(eye(2, 3).shape() == Shape{2, 3});
  CHECK_THROWS_AS(eye(-1), ValueError);

  manual_seed(7);
  auto p = vals(randperm(50));
  manual_seed(7);
  CHECK(vals(randperm(50)) == p);
  auto q = vals(randperm(50));  // the generator moved on: another permutation
  CHECK(q != p);
  auto sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 50; ++i) CHECK(sorted[i] == i);
  CHECK(randperm(50).dtype() == kInt64);
  CHECK(randperm(0).numel() == 0);
  CHECK_THROWS_AS(randperm(-3), ValueError);
  // Every position is reached: over 400 draws of randperm(4), element 0 lands everywhere.
  std::vector<int> where0(4, 0);
  for (int k = 0; k < 400; ++k) {
    auto r = vals(randperm(4));
    where0[std::find(r.begin(), r.end(), 0.0) - r.begin()]++;
  }
  for (int c : where0) CHECK(c > 60);  // binomial(400, 1/4): mean 100, sd 8.7
}

TEST_CASE("optimizers from a plain learning rate; libtorch's device and dtype constants", "[api]") {
  nn::Linear fc(3, 2);
  optim::Adam adam(fc->parameters(), 1e-3);
  CHECK(adam.lr() == 1e-3);
  optim::SGD sgd(fc->parameters(), 0.1);
  CHECK(sgd.lr() == 0.1);
  optim::AdamW adamw(fc->parameters(), 2e-3);
  CHECK(adamw.options().weight_decay_ == 1e-2);  // PyTorch's AdamW default
  optim::Adam tuned(fc->parameters(), optim::AdamOptions(2e-4).betas(std::make_tuple(0.5, 0.6)));
  CHECK(tuned.options().beta1_ == 0.5);
  CHECK(tuned.options().beta2_ == 0.6);

  CHECK(Device(kCUDA, 1).str() == "cuda:1");
  CHECK(Device(kCPU) == Device::cpu());
  CHECK(ones({2}).to(kCPU).device() == Device::cpu());
  CHECK(ones({2}).to(kDouble).dtype() == kFloat64);
  CHECK(kLong == kInt64);
  CHECK(kFloat == kFloat32);
}

TEST_CASE("tessera.hpp alone reaches every namespace", "[api]") {
  // nn, optim, data, io, amp, autograd (gradcheck), interop (DLPack), env.
  nn::Sequential net(nn::Linear(2, 2), nn::ReLU());
  optim::SGD opt(net->parameters(), 0.01);
  data::MnistDataset ds(zeros({2, 4, 4}, kUInt8), from_vector<int64_t>({0, 1}));
  CHECK(ds.size() == 2);
  auto loader = data::make_data_loader(data::datasets::MNIST(ds).map(data::transforms::Stack<>()),
                                       data::samplers::SequentialSampler(2), data::DataLoaderOptions(2));
  CHECK(loader->begin()->data.shape() == Shape{2, 1, 4, 4});
  io::TensorMap saved{{"w", ones({2})}};
  CHECK(saved.size() == 1);
  CHECK_FALSE(amp::is_autocast_enabled(DeviceType::CPU));
  CHECK(gradcheck([](const std::vector<Tensor>& v) { return v[0].square(); },
                  {randn({3}, kFloat64).requires_grad_(true)}));
  DLManagedTensor* m = to_dlpack(ones({2}));
  CHECK(vals(from_dlpack(m)) == std::vector<double>{1, 1});
  CHECK(std::string(env::to_string(env::Status::OK)).size() > 0);
  CHECK(Half(1.5f) == Half(1.5f));
}

TEST_CASE("tessera::save / load: tensors, lists of tensors and module holders, as torch::save", "[api]") {
  const std::string dir = std::filesystem::temp_directory_path().string() + "/tessera_api_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  Tensor t = randn({3, 2}, kFloat64);
  save(t, dir + "/t.safetensors");
  Tensor back;
  load(back, dir + "/t.safetensors");
  CHECK(vals(back) == vals(t));
  CHECK(back.dtype() == kFloat64);
  std::vector<Tensor> list{randn({2}), arange(0, 5)};
  save(list, dir + "/list.safetensors");
  std::vector<Tensor> list_back;
  load(list_back, dir + "/list.safetensors");
  REQUIRE(list_back.size() == 2);
  CHECK(vals(list_back[1]) == vals(list[1]));
  CHECK_THROWS_WITH(load(back, dir + "/list.safetensors"), Catch::Matchers::Contains("\"tensor\""));
  nn::Sequential a(nn::Linear(3, 2)), b(nn::Linear(3, 2));
  save(a, dir + "/net.safetensors");
  load(b, dir + "/net.safetensors");
  CHECK(vals(b->parameters()[0]) == vals(a->parameters()[0]));
  std::filesystem::remove_all(dir);
}

TEST_CASE("scalar comparison operators, allclose and equal as torch's", "[api]") {
  Tensor x = from_vector<float>({-1, 0.5f, 2, 7});
  CHECK(vals(x > 0.5) == std::vector<double>{0, 0, 1, 1});
  CHECK(vals(x >= 0.5) == std::vector<double>{0, 1, 1, 1});
  CHECK(vals(x == 2.0) == std::vector<double>{0, 0, 1, 0});
  CHECK((x < 0.0).dtype() == kBool);
  Tensor y = add(x, 1e-6);
  CHECK(allclose(x, y, 1e-5, 1e-5));
  CHECK_FALSE(allclose(x, add(x, 1e-3)));
  CHECK(allclose(x, add(x, 1e-3), 0.0, 2e-3));
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  Tensor special = from_vector<float>({inf, -inf, nan});
  CHECK_FALSE(allclose(special, special));
  CHECK(allclose(special, special, 1e-5, 1e-8, /*equal_nan=*/true));
  CHECK(allclose(from_vector<float>({1, 1}), ones({1})));  // broadcasts, as torch.allclose
  CHECK(equal(x, x.clone()));
  CHECK_FALSE(equal(x, y));
  CHECK_FALSE(equal(x, x.reshape({2, 2})));
}
