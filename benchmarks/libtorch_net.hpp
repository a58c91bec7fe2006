// The network of pytorch/examples mnist/main.py (class Net) in libtorch, the same as
// examples/mnist_conv/net.hpp: conv(1,32,3) - relu - conv(32,64,3) - relu - max_pool(2)
// - dropout(0.25) - flatten - linear(9216,128) - relu - dropout(0.5) - linear(128,10)
// - log_softmax. Used by libtorch_mnist (training comparison) and libtorch_bench (train_step).
#pragma once
#include <torch/torch.h>

namespace libtorch_peer {

struct NetImpl : torch::nn::Module {
  NetImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3)))),
        dropout1(register_module("dropout1", torch::nn::Dropout(0.25))),
        dropout2(register_module("dropout2", torch::nn::Dropout(0.5))),
        fc1(register_module("fc1", torch::nn::Linear(9216, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(conv1->forward(x));
    x = torch::relu(conv2->forward(x));
    x = torch::max_pool2d(x, 2);
    x = dropout1->forward(x);
    x = torch::flatten(x, 1);
    x = torch::relu(fc1->forward(x));
    x = dropout2->forward(x);
    x = fc2->forward(x);
    return torch::log_softmax(x, 1);
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Dropout dropout1, dropout2;
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(Net);

}  // namespace libtorch_peer
