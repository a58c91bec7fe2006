// The same net and recipe as examples/mnist_conv, trained with libtorch (CPU), for a
// side-by-side images/s comparison (scripts/compare-libtorch.sh runs both):
//   net:  pytorch/examples mnist/main.py (conv 32, conv 64, max_pool, dropout, fc 128, fc 10)
//   recipe: Adam lr 1e-3 (or SGD with momentum), batch 64, nll_loss on log_softmax,
//           shuffled batches, inputs normalised as torchvision's Normalize.
// The data comes from Tessera's IDX reader, so both read exactly the same images.
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "tessera/data/mnist.hpp"
#include "tessera/error.hpp"
#include "libtorch_net.hpp"

namespace {

using libtorch_peer::Net;

// uint8 [N, rows, cols] Tessera tensor -> normalised float [N, 1, rows, cols] torch tensor.
torch::Tensor to_torch(const tessera::Tensor& images, double mean, double std) {
  torch::Tensor u8 = torch::from_blob(images.data_ptr<uint8_t>(), {images.size(0), 1, images.size(1), images.size(2)},
                                      torch::kUInt8);
  return u8.to(torch::kFloat).div_(255.0).sub_(mean).div_(std);
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string optimizer = "adam";
  int epochs = 1, threads = 0;
  int64_t batch_size = 64, limit = 0, test_limit = 0;
  double lr = 1e-3, momentum = 0.9;
  uint64_t seed = 1;
  CLI::App app{"Train the pytorch/examples MNIST conv net with libtorch (CPU) and report images/s"};
  app.add_option("--data", data_dir, "folder with the IDX files")->capture_default_str();
  app.add_option("--epochs", epochs)->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--batch-size", batch_size)->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", lr)->capture_default_str();
  app.add_option("--optimizer", optimizer, "adam or sgd")->check(CLI::IsMember({"adam", "sgd"}))->capture_default_str();
  app.add_option("--momentum", momentum)->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--limit", limit, "train on the first N images only (0: all)");
  app.add_option("--test-limit", test_limit, "test on the first N images only (0: all)");
  app.add_option("--threads", threads, "intra-op threads (0: libtorch's default)");
  CLI11_PARSE(app, argc, argv);

  try {
    if (threads > 0) torch::set_num_threads(threads);
    torch::manual_seed(seed);
    auto train = tessera::data::MnistDataset::from_dir(data_dir, true);
    auto test = tessera::data::MnistDataset::from_dir(data_dir, false);
    if (limit > 0) train = train.first(limit);
    if (test_limit > 0) test = test.first(test_limit);
    const bool fashion = data_dir.find("fashion") != std::string::npos;
    const double mean = fashion ? 0.2860 : 0.1307, stdev = fashion ? 0.3530 : 0.3081;
    torch::Tensor x_train = to_torch(train.images(), mean, stdev);
    torch::Tensor y_train = torch::from_blob(train.labels().data_ptr<int64_t>(), {train.size()}, torch::kLong).clone();
    torch::Tensor x_test = to_torch(test.images(), mean, stdev);
    torch::Tensor y_test = torch::from_blob(test.labels().data_ptr<int64_t>(), {test.size()}, torch::kLong).clone();

    Net net;
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (optimizer == "adam") opt = std::make_unique<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(lr));
    else opt = std::make_unique<torch::optim::SGD>(net->parameters(), torch::optim::SGDOptions(lr).momentum(momentum));

    std::printf("libtorch %s: %lld training / %lld test images, %d threads, %s lr %g, batch %lld\n", TORCH_VERSION,
                (long long)train.size(), (long long)test.size(), torch::get_num_threads(), optimizer.c_str(), lr,
                (long long)batch_size);
    const int64_t n = train.size();
    double train_seconds = 0;
    int64_t train_images = 0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      net->train();
      auto t0 = std::chrono::steady_clock::now();
      torch::Tensor order = torch::randperm(n, torch::kLong);
      double loss_sum = 0;
      int64_t steps = 0;
      for (int64_t i = 0; i < n; i += batch_size) {
        torch::Tensor idx = order.slice(0, i, std::min(n, i + batch_size));
        torch::Tensor x = x_train.index_select(0, idx), y = y_train.index_select(0, idx);
        opt->zero_grad();
        torch::Tensor loss = torch::nll_loss(net->forward(x), y);
        loss.backward();
        opt->step();
        loss_sum += loss.item<double>();
        ++steps;
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      train_seconds += secs;
      train_images += n;

      net->eval();
      torch::NoGradGuard no_grad;
      double test_loss = 0;
      int64_t correct = 0;
      for (int64_t i = 0; i < x_test.size(0); i += 1000) {
        torch::Tensor x = x_test.slice(0, i, i + 1000), y = y_test.slice(0, i, i + 1000);
        torch::Tensor out = net->forward(x);
        test_loss += torch::nll_loss(out, y, {}, torch::Reduction::Sum).item<double>();
        correct += out.argmax(1).eq(y).sum().item<int64_t>();
      }
      const int64_t nt = x_test.size(0);
      std::printf("epoch %d: train loss %.4f, %.1f s, %.0f images/s; test loss %.4f, accuracy %.2f%%\n", epoch,
                  steps ? loss_sum / double(steps) : 0.0, secs, double(n) / secs, nt ? test_loss / double(nt) : 0.0,
                  nt ? 100.0 * double(correct) / double(nt) : 0.0);
    }
    if (train_seconds > 0)
      std::printf("libtorch total (training: %.0f images/s)\n", double(train_images) / train_seconds);
  } catch (const tessera::Error& e) {
    std::cerr << "libtorch_mnist: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "libtorch_mnist: " << e.what_without_backtrace() << "\n";
    return 1;
  }
  return 0;
}
