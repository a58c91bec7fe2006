// Uses the installed package: a small computation whose result is checked.
#include <tessera/tessera.hpp>

#include <cmath>
#include <iostream>

int main() {
  using namespace tessera;
  Tensor a = from_vector<float>({1, 2, 3, 4}, {2, 2});
  Tensor b = from_vector<float>({5, 6, 7, 8}, {2, 2});
  Tensor c = matmul(a, b);  // [[19, 22], [43, 50]]
  float s = c.sum().item<float>();
  std::cout << c << "\nsum = " << s << "\n";
  if (std::abs(s - 134.0f) > 1e-4f) {
    std::cerr << "consumer: expected sum 134, got " << s << "\n";
    return 1;
  }
  // The data API through the installed headers: a TensorDataset loaded by two worker threads.
  auto loader = data::make_data_loader(data::datasets::TensorDataset(a, b).map(data::transforms::Stack<>()),
                                       data::samplers::SequentialSampler(2), data::DataLoaderOptions(1).workers(2));
  float total = 0;
  for (auto& batch : *loader) total += batch.data.sum().item<float>() + batch.target.sum().item<float>();
  if (std::abs(total - 36.0f) > 1e-4f) {
    std::cerr << "consumer: expected the batches to sum to 36, got " << total << "\n";
    return 1;
  }
  return 0;
}
