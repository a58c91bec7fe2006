// libtorch_bench: the CPU cases of tessera_bench run through libtorch (Debian libtorch-dev,
// CPU), named BM_<op>/libtorch/<size> with the same sizes and counters (bench_common.hpp),
// so scripts/bench-report can put them side by side. Ceilings (peak_fma, peak_copy) are
// measured again in this process with the same code (cpu_peak.hpp).
//
// Threads: libtorch's intra-op pool is pinned to omp_get_max_threads() (all cores, or
// OMP_NUM_THREADS), the same count Tessera uses; recorded in the JSON context as "threads".
#include <benchmark/benchmark.h>
#include <omp.h>
#include <torch/torch.h>

#include <chrono>
#include <string>

#include "bench_common.hpp"
#include "cpu_peak.hpp"
#include "libtorch_net.hpp"

using namespace tessera::bench;

namespace {

const std::string kDev = "libtorch";

void nothing() {}
void no_sync() {}

template <class Prepare, class Op>
void run(benchmark::State& state, WorkKind kind, double work, Prepare&& prepare, Op&& op) {
  const double ceil = kind == WorkKind::Bytes ? cpu_copy_bandwidth() : cpu_fma_peak();
  const double s = timed_loop(state, 1, prepare, op, no_sync);
  set_counters(state, kind, work, s, ceil);
}

void register_all() {
  register_cpu_ceiling_cases(kDev, omp_get_max_threads());

  for (int64_t n : elementwise_sizes(false)) {
    register_case("add", kDev, n, [n](benchmark::State& state) {
      torch::NoGradGuard no_grad;
      torch::Tensor a = torch::rand({n}), b = torch::rand({n});
      run(state, WorkKind::Bytes, 12.0 * double(n), nothing, [&] { benchmark::DoNotOptimize(torch::add(a, b)); });
    });
  }
  for (int64_t n : elementwise_sizes(false)) {
    register_case("relu", kDev, n, [n](benchmark::State& state) {
      torch::NoGradGuard no_grad;
      torch::Tensor a = torch::randn({n});
      run(state, WorkKind::Bytes, 8.0 * double(n), nothing, [&] { benchmark::DoNotOptimize(torch::relu(a)); });
    });
  }
  for (int64_t n : elementwise_sizes(false)) {
    register_case("sum", kDev, n, [n](benchmark::State& state) {
      torch::NoGradGuard no_grad;
      torch::Tensor a = torch::rand({n});
      run(state, WorkKind::Bytes, 4.0 * double(n), nothing, [&] { benchmark::DoNotOptimize(torch::sum(a)); });
    });
  }
  for (const bool log : {false, true}) {
    for (int64_t n : softmax_sizes(false)) {
      register_case(log ? "log_softmax" : "softmax", kDev, n, [n, log](benchmark::State& state) {
        torch::NoGradGuard no_grad;
        torch::Tensor x = torch::randn({n / kSoftmaxRow, kSoftmaxRow});
        run(state, WorkKind::Bytes, 8.0 * double(n), nothing,
            [&] { benchmark::DoNotOptimize(log ? torch::log_softmax(x, 1) : torch::softmax(x, 1)); });
      });
    }
  }
  for (int64_t n : matmul_sizes(false)) {
    register_case("matmul", kDev, n, [n](benchmark::State& state) {
      torch::NoGradGuard no_grad;
      torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n});
      run(state, WorkKind::Flop, 2.0 * double(n) * double(n) * double(n), nothing,
          [&] { benchmark::DoNotOptimize(torch::matmul(a, b)); });
    }, benchmark::kMillisecond);
  }

  for (const ConvLayer& l : conv_layers()) {
    for (int64_t batch : conv_batches(l, false)) {
      register_case(std::string("conv2d_fwd_") + l.name, kDev, batch, [l, batch](benchmark::State& state) {
        torch::manual_seed(1);
        torch::NoGradGuard no_grad;
        torch::Tensor x = torch::randn({batch, l.c_in, l.hw, l.hw});
        torch::Tensor w = torch::randn({l.c_out, l.c_in, l.k, l.k}) / double(l.c_in * l.k * l.k);
        torch::Tensor b = torch::randn({l.c_out});
        run(state, WorkKind::Flop, conv_forward_flop(l, batch), nothing,
            [&] { benchmark::DoNotOptimize(torch::conv2d(x, w, b, 1, l.pad)); });
      }, benchmark::kMillisecond);
      register_case(std::string("conv2d_bwd_") + l.name, kDev, batch, [l, batch](benchmark::State& state) {
        torch::manual_seed(1);
        torch::Tensor x = torch::randn({batch, l.c_in, l.hw, l.hw}).requires_grad_(l.input_grad);
        torch::Tensor w = (torch::randn({l.c_out, l.c_in, l.k, l.k}) / double(l.c_in * l.k * l.k)).requires_grad_(true);
        torch::Tensor b = torch::randn({l.c_out}).requires_grad_(true);
        const int64_t out_hw = l.hw + 2 * l.pad - l.k + 1;
        torch::Tensor grad_y = torch::randn({batch, l.c_out, out_hw, out_hw});
        torch::Tensor y;
        auto prepare = [&] {
          for (torch::Tensor* t : {&x, &w, &b}) t->mutable_grad() = torch::Tensor();
          y = torch::conv2d(x, w, b, 1, l.pad);
        };
        run(state, WorkKind::Flop, conv_backward_flop(l, batch), prepare, [&] { y.backward(grad_y); });
      }, benchmark::kMillisecond);
    }
  }

  for (int64_t batch : pool_batches(false)) {
    register_case("max_pool2d", kDev, batch, [batch](benchmark::State& state) {
      torch::NoGradGuard no_grad;
      torch::Tensor x = torch::randn({batch, kPoolChannels, kPoolHW, kPoolHW});
      run(state, WorkKind::Bytes, pool_bytes(batch), nothing,
          [&] { benchmark::DoNotOptimize(torch::max_pool2d(x, 2)); });
    });
  }

  register_case("train_step", kDev, kTrainBatch, [](benchmark::State& state) {
    torch::manual_seed(1);
    libtorch_peer::Net net;
    net->train();
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
    torch::Tensor x = torch::randn({kTrainBatch, 1, 28, 28});
    torch::Tensor y = torch::randint(0, 10, {kTrainBatch}, torch::kLong);
    run(state, WorkKind::Flop, train_step_flop(kTrainBatch), nothing, [&] {
      opt.zero_grad();
      torch::Tensor loss = torch::nll_loss(net->forward(x), y);
      loss.backward();
      opt.step();
    });
  }, benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const int threads = omp_get_max_threads();
  torch::set_num_threads(threads);
  benchmark::AddCustomContext("threads", std::to_string(torch::get_num_threads()));
  benchmark::AddCustomContext("suite", "libtorch");
  benchmark::AddCustomContext("libtorch_version", TORCH_VERSION);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
