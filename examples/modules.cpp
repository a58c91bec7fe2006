// Modules written as in libtorch's C++ frontend (the README shows this file). Built and run
// by the tests.
#include <tessera/tessera.hpp>

#include <iostream>

using namespace tessera;

struct NetImpl : nn::Module {
  NetImpl() : fc1(784, 64) { register_module("fc1", fc1); fc2 = register_module("fc2", nn::Linear(64, 10)); }
  Tensor forward(Tensor x) { return fc2(nn::Tanh()(fc1(x))); }
  nn::Linear fc1, fc2{nullptr};  // {nullptr}: an empty holder, assigned in the constructor
};
TESSERA_MODULE(Net);

int main() {
  manual_seed(0);
  Net net;
  net->to(Device::cpu());
  Tensor y = net(randn({2, 784}));
  nn::Sequential mlp(nn::Linear(4, 8), nn::GELU(), nn::Linear(8, 1));
  Tensor loss = nn::MSELoss()(mlp(randn({16, 4})), randn({16, 1}));
  loss.backward();
  std::cout << *net << "\ny " << shape_str(y.shape()) << ", mlp loss " << loss.item<double>() << "\n";
  return y.shape() == Shape{2, 10} && mlp->parameters()[0].grad().defined() ? 0 : 1;
}
