// conv2d on the CPU: the two convolutions of the MNIST example net (pytorch/examples
// mnist: conv(1,32,3) then conv(32,64,3) on 28x28 images) at batch 64, forward alone and
// forward + backward through autograd (grad of input, weights and biases of layer 2; of
// weights and bias of layer 1, whose input needs none). Arg: CPU threads.
#include <benchmark/benchmark.h>

#include "tessera/parallel.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"
#include "tessera/random.hpp"

namespace {

using namespace tessera;

struct MnistConvs {
  Tensor x, w1, b1, w2, b2, grad_y;
  MnistConvs() {
    manual_seed(1);
    x = randn({64, 1, 28, 28});
    w1 = randn({32, 1, 3, 3}) * (1.0 / 3.0);
    b1 = randn({32}) * 0.1;
    w2 = randn({64, 32, 3, 3}) * (1.0 / 17.0);
    b2 = randn({64}) * 0.1;
    grad_y = randn({64, 64, 24, 24});
    for (Tensor* t : {&w1, &b1, &w2, &b2}) t->requires_grad_(true);
  }
  Tensor forward() const { return conv2d(conv2d(x, w1, b1), w2, b2); }
};

void BM_conv_mnist_forward(benchmark::State& state) {
  set_num_threads(int(state.range(0)));
  MnistConvs m;
  NoGradGuard no_grad;
  for (auto _ : state) {
    Tensor y = m.forward();
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * 64);
}

void BM_conv_mnist_forward_backward(benchmark::State& state) {
  set_num_threads(int(state.range(0)));
  MnistConvs m;
  for (auto _ : state) {
    Tensor y = m.forward();
    y.backward(m.grad_y);
    benchmark::DoNotOptimize(m.w1.grad().raw_data());
  }
  state.SetItemsProcessed(state.iterations() * 64);
}

}  // namespace

BENCHMARK(BM_conv_mnist_forward)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_conv_mnist_forward_backward)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
