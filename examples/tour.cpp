// A short tour of the Tessera API (the README shows this file). Built and run by the tests.
#include <tessera/tessera.hpp>

#include <iostream>

int main() {
  using namespace tessera;
  manual_seed(0);

  // Tensors: shape, dtype, device; views share storage.
  Tensor x = arange(0, 6, 1, kFloat32).reshape({2, 3});
  Tensor xt = x.t();                       // a transposed view, no copy
  std::cout << "x = " << x << "\nx.t() contiguous? " << std::boolalpha << xt.is_contiguous() << "\n";

  // Broadcasting and type promotion follow PyTorch.
  Tensor b = from_vector<double>({10, 20, 30});
  Tensor y = x + b;                        // float32 + float64 -> float64, [2,3] + [3] -> [2,3]
  std::cout << "x + b = " << y << "\n";

  // Reductions and matmul.
  std::cout << "sum over dim 1 = " << x.sum({1}) << "\n";
  std::cout << "x @ x^T = " << matmul(x, xt) << "\n";
  std::cout << "log_softmax([1000, 0]) = " << log_softmax(from_vector<float>({1000, 0}), 0) << "\n";

  // Autograd: gradients of a scalar with respect to leaves.
  Tensor w = randn({3, 2}, kFloat64).requires_grad_();
  Tensor loss = square(matmul(x.to(kFloat64), w)).mean();
  loss.backward();
  std::cout << "d loss / d w = " << w.grad() << "\n";

  // Devices: the same code runs on CUDA when a GPU is usable.
  Device dev = cuda::is_available() ? Device(kCUDA) : Device(kCPU);
  std::cout << "running on " << dev << ": " << (x.to(dev) * 2).sum().item<float>() << "\n";
  return 0;
}
