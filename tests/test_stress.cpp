// Thread safety and leaks, in the Release stage only (CTest stress:*; hidden from the unit
// run, so never under ASan, where resident memory means nothing):
//   [.stress]  8 threads x 500 inference passes of one conv net under NoGradGuard give the
//              serial results bit for bit, while the main thread trains its own graph (grad
//              mode is per thread);
//   [.soak]    2,000 Adam steps of a small net: the host allocator's live bytes return to the
//              same value every step after warm-up, its cache and the resident set stop
//              growing.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "cpu/cpu_backend.hpp"
#include "tensor_testing.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/nn/layers.hpp"
#include "tessera/ops.hpp"
#include "tessera/optim/optimizer.hpp"
#include "tessera/random.hpp"

using namespace tessera;
using testing::values;

namespace {

nn::Sequential conv_net() {
  return nn::Sequential(
      nn::Conv2d(1, 4, 3), nn::ReLU(), nn::MaxPool2d(2),
      nn::Flatten(), nn::Linear(36, 16), nn::Dropout(0.5),
      nn::Linear(16, 10), nn::LogSoftmax(1));
}

std::size_t resident_bytes() {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return std::size_t(resident) * std::size_t(::sysconf(_SC_PAGESIZE));
}

}  // namespace

TEST_CASE("inference from 8 threads on one model equals the serial results", "[.stress]") {
  manual_seed(21);
  auto net = conv_net();
  net->eval();
  std::vector<Tensor> inputs;
  std::vector<std::vector<double>> serial;
  {
    NoGradGuard g;
    for (int i = 0; i < 8; ++i) {
      inputs.push_back(randn({4 + i, 1, 8, 8}));
      serial.push_back(values((*net)(inputs.back())));
    }
  }
  std::atomic<int> mismatches{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      NoGradGuard g;  // per thread: the main thread keeps recording below
      for (int i = 0; i < 500; ++i) {
        const int k = (t + i) % 8;
        if (values((*net)(inputs[std::size_t(k)])) != serial[std::size_t(k)]) ++mismatches;
      }
      ++done;
    });
  // Meanwhile the main thread records and differentiates its own graph.
  int graphs = 0;
  while (done.load() < 8) {
    Tensor w = randn({5, 3}).requires_grad_();
    Tensor y = sum(mul(w, w));
    REQUIRE(y.requires_grad());
    y.backward();
    const auto g = values(w.grad()), wv = values(w);
    for (std::size_t i = 0; i < g.size(); ++i) REQUIRE(g[i] == 2 * wv[i]);
    ++graphs;
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches.load() == 0);
  CHECK(graphs > 0);
}

TEST_CASE("2,000 training steps: allocator and resident memory stop growing after warm-up", "[.soak]") {
  manual_seed(5);
  auto net = nn::Sequential(
      nn::Linear(64, 256), nn::ReLU(), nn::Dropout(0.1),
      nn::Linear(256, 10));
  optim::Adam opt(net->parameters(), optim::AdamOptions(1e-3));
  std::vector<Tensor> xs, ts;
  for (int i = 0; i < 16; ++i) {
    xs.push_back(randn({128, 64}));
    ts.push_back(randint(0, 10, {128}));
  }
  cpu::HostMemoryStats warm{};
  std::size_t rss_warm = 0, rss_max = 0;
  for (int step = 1; step <= 2000; ++step) {
    Tensor loss = cross_entropy((*net)(xs[std::size_t(step % 16)]), ts[std::size_t(step % 16)]);
    opt.zero_grad();
    loss.backward();
    opt.step();
    REQUIRE(std::isfinite(loss.item<double>()));
    if (step == 200) {
      warm = cpu::host_memory_stats();
      rss_warm = resident_bytes();
    } else if (step > 200) {
      const cpu::HostMemoryStats now = cpu::host_memory_stats();
      INFO("step " << step);
      REQUIRE(now.allocated == warm.allocated);  // the same live tensors at the same point
      REQUIRE(now.cached <= warm.cached + (std::size_t(1) << 20));
      if (step % 100 == 0) rss_max = std::max(rss_max, resident_bytes());
    }
  }
  INFO("resident after warm-up " << rss_warm << " bytes, at most " << rss_max << " later");
  CHECK(rss_max <= rss_warm + (std::size_t(4) << 20));
}
