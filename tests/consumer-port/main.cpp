// libtorch-style code ported to Tessera by replacing `torch::` with `tessera::`, as
// docs/pytorch-to-tessera.md says: an MLP, a data-loader training loop, a custom autograd
// function, indexing, and a module saved and loaded. Each part checks its result.
#include <tessera/tessera.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::cout << (ok ? "[ ok ] " : "[FAIL] ") << what << "\n";
  if (!ok) ++failures;
}

// libtorch's "LinearFunction" from the custom autograd tutorial, plus a saved scalar.
struct ScaledLinearFunction : public tessera::autograd::Function<ScaledLinearFunction> {
  static tessera::Tensor forward(tessera::autograd::AutogradContext* ctx, tessera::Tensor input,
                                 tessera::Tensor weight, tessera::Tensor bias, double scale) {
    ctx->save_for_backward({input, weight, bias});
    ctx->saved_data["scale"] = scale;
    auto output = input.mm(weight.t());
    if (bias.defined()) {
      output += bias.unsqueeze(0).expand_as(output);
    }
    return output * scale;
  }

  static tessera::autograd::tensor_list backward(tessera::autograd::AutogradContext* ctx,
                                                   tessera::autograd::tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    auto input = saved[0];
    auto weight = saved[1];
    auto bias = saved[2];
    double scale = ctx->saved_data["scale"].toDouble();
    auto grad_output = grad_outputs[0] * scale;
    auto grad_input = grad_output.mm(weight);
    auto grad_weight = grad_output.t().mm(input);
    auto grad_bias = tessera::Tensor();
    if (bias.defined()) {
      grad_bias = grad_output.sum(0);
    }
    return {grad_input, grad_weight, grad_bias, tessera::Tensor()};
  }
};

// A libtorch-style module: holders declared empty, filled by register_module.
struct NetImpl : tessera::nn::Module {
  NetImpl(int64_t in, int64_t hidden, int64_t out) {
    fc1 = register_module("fc1", tessera::nn::Linear(in, hidden));
    fc2 = register_module("fc2", tessera::nn::Linear(hidden, out));
    offset = register_buffer("offset", tessera::zeros({out}));
  }
  tessera::Tensor forward(tessera::Tensor x) {
    x = tessera::relu(fc1->forward(x));
    return fc2->forward(x) + offset;
  }
  tessera::nn::Linear fc1{nullptr}, fc2{nullptr};
  tessera::Tensor offset;
};
TESSERA_MODULE(Net);

float max_abs_diff(const tessera::Tensor& a, const tessera::Tensor& b) {
  return (a - b).abs().max().item<float>();
}

void sin_mlp() {
  tessera::manual_seed(0);
  auto x = tessera::linspace(-3, 3, 256).unsqueeze(1);
  auto y = tessera::sin(x);
  tessera::nn::Sequential model(tessera::nn::Linear(1, 32), tessera::nn::Tanh(), tessera::nn::Linear(32, 1));
  tessera::optim::Adam optimizer(model->parameters(), /*lr=*/1e-2);
  float first = 0, last = 0;
  for (int step = 0; step < 500; ++step) {
    optimizer.zero_grad();
    auto loss = tessera::mse_loss(model->forward(x), y);
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item<float>();
    last = loss.item<float>();
  }
  std::printf("sin(x) MLP: mse %.5f -> %.5f\n", first, last);
  check(last < first / 20, "1. sin(x) MLP (Sequential, Linear, Tanh, mse_loss, Adam(lr)) loss fell 20x");
}

void data_loader_regression() {
  tessera::manual_seed(1);
  auto X = tessera::randn({512, 3});
  auto w_true = tessera::from_vector<float>({1.5, -2.0, 0.5}, {3, 1});
  auto Y = X.matmul(w_true) + 0.3 + 0.01 * tessera::randn({512, 1});
  auto dataset = tessera::data::datasets::TensorDataset(X, Y).map(tessera::data::transforms::Stack<>());
  auto loader = tessera::data::make_data_loader(std::move(dataset),
                                                tessera::data::samplers::RandomSampler(512, /*seed=*/7),
                                                tessera::data::DataLoaderOptions().batch_size(64));
  tessera::nn::Linear model(3, 1);
  tessera::optim::SGD optimizer(model->parameters(), tessera::optim::SGDOptions(0.1));
  float loss_value = 0;
  int batches = 0;
  for (int epoch = 0; epoch < 20; ++epoch) {
    for (auto& batch : *loader) {
      optimizer.zero_grad();
      auto loss = tessera::mse_loss(model->forward(batch.data), batch.target);
      loss.backward();
      optimizer.step();
      loss_value = loss.item<float>();
      ++batches;
    }
  }
  float w_err = max_abs_diff(model->weight, w_true.t());
  float b_err = std::abs(model->bias.item<float>() - 0.3f);
  std::printf("data loader: %d batches, last loss %.6f, |w - w_true| %.4f, |b - b_true| %.4f\n", batches,
              loss_value, w_err, b_err);
  check(batches == 20 * 8, "2. TensorDataset + RandomSampler(seed) + Stack loader gives 8 batches of 64 per epoch");
  check(w_err < 0.02 && b_err < 0.02, "2. the loader's training loop recovers w and b");
}

void custom_function() {
  tessera::manual_seed(2);
  auto input = tessera::randn({4, 3}, tessera::kFloat64).requires_grad_();
  auto weight = tessera::randn({2, 3}, tessera::kFloat64).requires_grad_();
  auto bias = tessera::randn({2}, tessera::kFloat64).requires_grad_();
  auto out = ScaledLinearFunction::apply(input, weight, bias, 0.5);
  out.sum().backward();
  // d/dbias of sum(0.5 * (x w^T + b)) is 0.5 per row: 4 rows -> 2.
  bool bias_grad_ok = max_abs_diff(bias.grad(), tessera::full({2}, 2.0, tessera::kFloat64)) < 1e-12;
  check(bias_grad_ok, "3. custom autograd::Function backward gives the expected bias gradient");
  bool ok = tessera::gradcheck(
      [](const std::vector<tessera::Tensor>& in) { return ScaledLinearFunction::apply(in[0], in[1], in[2], 0.5); },
      {input.detach().requires_grad_(), weight.detach().requires_grad_(), bias.detach().requires_grad_()});
  check(ok, "3. custom autograd::Function passes gradcheck");
}

void indexing() {
  auto x = tessera::arange(12).reshape({3, 4}).to(tessera::kFloat);
  // x[:, 1:3]
  auto cols = x.slice(1, 1, 3);
  check(max_abs_diff(cols, tessera::from_vector<float>({1, 2, 5, 6, 9, 10}, {3, 2})) == 0, "4. slice(1, 1, 3) is x[:, 1:3]");
  // x[2] and x.select(1, 0)
  check(max_abs_diff(x[2], tessera::from_vector<float>({8, 9, 10, 11})) == 0, "4. x[2]");
  check(max_abs_diff(x.select(1, 0), tessera::from_vector<float>({0, 4, 8})) == 0, "4. select(1, 0)");
  // index_select with an int64 index
  auto rows = x.index_select(0, tessera::from_vector<int64_t>({2, 0}));
  check(max_abs_diff(rows, tessera::from_vector<float>({8, 9, 10, 11, 0, 1, 2, 3}, {2, 4})) == 0,
        "4. index_select(0, {2, 0})");
  // gather along dim 1
  auto picked = tessera::gather(x, 1, tessera::from_vector<int64_t>({3, 0, 1}, {3, 1}));
  check(max_abs_diff(picked, tessera::from_vector<float>({3, 4, 9}, {3, 1})) == 0, "4. gather(x, 1, idx)");
  // masked_fill with a comparison mask
  auto masked = x.masked_fill(x.gt(5), -1);
  check(masked.sum().item<float>() == 15 - 6, "4. masked_fill(x > 5, -1)");
  // libtorch's tensor indexing API (torch::indexing -> tessera::indexing)
  using namespace tessera::indexing;
  check(max_abs_diff(x.index({Slice(), Slice(1, 3)}), cols) == 0, "4. x.index({Slice(), Slice(1, 3)})");
  check(max_abs_diff(x.index({"...", -1}), tessera::from_vector<float>({3, 7, 11})) == 0, "4. x.index({\"...\", -1})");
  check(max_abs_diff(x.index({x.gt(8)}), tessera::from_vector<float>({9, 10, 11})) == 0, "4. x.index({x.gt(8)})");
  auto y = x.clone();
  y.index_put_({Slice(), 0}, 0);
  y.index_put_({y.gt(9)}, -1);
  y.index_put_({tessera::from_vector<int64_t>({1, 1})}, tessera::ones({4}), /*accumulate=*/true);
  check(max_abs_diff(y, tessera::from_vector<float>({0, 1, 2, 3, 2, 7, 8, 9, 0, 9, -1, -1}, {3, 4})) == 0,
        "4. index_put_ with a Slice, a mask, and accumulate");
}

void module_save_load() {
  tessera::manual_seed(3);
  Net net(4, 8, 2);
  {
    tessera::NoGradGuard no_grad;
    net->offset.fill_(0.25);
  }
  const std::string path = "consumer-port-net.safetensors";
  tessera::save(net, path);
  Net restored(4, 8, 2);
  tessera::load(restored, path);
  std::remove(path.c_str());
  auto x = tessera::randn({5, 4});
  net->eval();
  restored->eval();
  float diff = max_abs_diff(net->forward(x), restored->forward(x));
  check(restored->named_parameters().size() == 4, "5. TESSERA_MODULE + register_module: 4 parameters");
  check(restored->offset.sum().item<float>() == 0.5f, "5. the registered buffer is saved and loaded");
  check(diff == 0, "5. save(net)/load(net) gives the same outputs");
}

}  // namespace

int main() {
  try {
    sin_mlp();
    data_loader_regression();
    custom_function();
    indexing();
    module_save_load();
  } catch (const std::exception& e) {
    std::cerr << "consumer-port: exception: " << e.what() << "\n";
    return 1;
  }
  if (failures) {
    std::cerr << "consumer-port: " << failures << " check(s) failed\n";
    return 1;
  }
  std::cout << "consumer-port: all checks passed\n";
  return 0;
}
