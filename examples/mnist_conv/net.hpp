// The network of pytorch/examples mnist/main.py (class Net), layer for layer and name for
// name, so its state_dict matches PyTorch's ("conv1.weight", ..., "fc2.bias"):
//   conv(1,32,3) - relu - conv(32,64,3) - relu - max_pool(2) - dropout(0.25) - flatten
//   - linear(9216,128) - relu - dropout(0.5) - linear(128,10) - log_softmax
// Input [N, 1, 28, 28], output log-probabilities [N, 10]. 1,199,882 parameters.
#pragma once
#include <memory>

#include "tessera/nn/layers.hpp"
#include "tessera/nn/module.hpp"
#include "tessera/ops.hpp"

namespace mnist_conv {

struct Net : tessera::nn::Module {
  Net() : Module("Net") {
    using namespace tessera::nn;
    conv1 = register_module("conv1", Conv2d(1, 32, 3));
    conv2 = register_module("conv2", Conv2d(32, 64, 3));
    dropout1 = register_module("dropout1", Dropout(0.25));
    dropout2 = register_module("dropout2", Dropout(0.5));
    fc1 = register_module("fc1", Linear(9216, 128));
    fc2 = register_module("fc2", Linear(128, 10));
  }

  tessera::Tensor forward(const tessera::Tensor& input) override {
    using namespace tessera;
    Tensor x = relu(conv1->forward(input));
    x = relu(conv2->forward(x));
    x = max_pool2d(x, {2, 2});
    x = dropout1->forward(x);
    x = x.flatten(1);
    x = relu(fc1->forward(x));
    x = dropout2->forward(x);
    x = fc2->forward(x);
    return log_softmax(x, 1);
  }

  tessera::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  tessera::nn::Dropout dropout1{nullptr}, dropout2{nullptr};
  tessera::nn::Linear fc1{nullptr}, fc2{nullptr};
};

}  // namespace mnist_conv
