// tessera_bench: Tessera's CPU and CUDA cases side by side in one binary (Google Benchmark),
// named BM_<op>/<cpu|cuda>/<size> (see bench_common.hpp for the names, sizes and counters).
//
//   ops: add, relu, sum (all elements), softmax, log_softmax (rows of 4096), matmul,
//        matmul_tiled (CUDA only: the hand-written SGEMM instead of cuBLAS), matmul_bf16 and
//        matmul_fp16 (two-byte inputs and output, float32 accumulation),
//        conv2d_fwd_<layer>, conv2d_bwd_<layer> (layers mnist1, mnist2, resnet3x3; size = batch),
//        max_pool2d (2x2 on [batch, 64, 24, 24]), train_step (mnist_conv net, batch 64, Adam)
//   ceilings, measured once per process and reported as cases of their own:
//        peak_fma/cpu/<threads>, peak_copy/cpu/<bytes>, peak_copy/cuda/<elements>, peak_sgemm/cuda/8192
//
// CUDA cases are registered in a CUDA build only; without a usable GPU each of them is
// skipped with "CUDA not available: <reason>" (scripts/bench-report ignores them). CPU
// threads: tessera::get_num_threads() (all cores, or OMP_NUM_THREADS), recorded in the
// JSON context as "threads".
#include <benchmark/benchmark.h>

#include <tessera/tessera.hpp>
#include <tessera/build_config.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "bench_common.hpp"
#include "cpu_peak.hpp"
#include "mnist_conv/net.hpp"
#include "tessera/data/dataloader.hpp"
#include "tessera/data/mnist.hpp"

using namespace tessera;
using namespace tessera::bench;

namespace {

// GPU ceilings: copy of a 256 MiB tensor; SGEMM at 8192. On the CUDA emulator
// (TESSERA_CUDA=EMULATE), where the suite runs only as a smoke test of its CUDA code, small
// stand-ins, or measuring the ceilings would take hours.
#if TESSERA_CUDA_EMULATED
constexpr int64_t kGpuCopyElems = int64_t(1) << 16;
constexpr int64_t kGpuSgemmSize = 128;
#else
constexpr int64_t kGpuCopyElems = int64_t(64) << 20;
constexpr int64_t kGpuSgemmSize = 8192;
#endif
constexpr int kGpuReps = 10;  // ops queued per timed iteration on the GPU (one sync at the end)

TensorOptions on(Device dev) { return TensorOptions(kFloat32, dev); }
std::string device_tag(Device dev) { return dev.is_cuda() ? "cuda" : "cpu"; }
int reps_for(Device dev) { return dev.is_cuda() ? kGpuReps : 1; }
auto sync_for(Device dev) {
  return [dev] {
    if (dev.is_cuda()) cuda::synchronize();
  };
}
void nothing() {}

// ---- GPU ceilings, measured once per process ------------------------------------------------
double gpu_copy_bandwidth() {
  static const double bw = [] {
    Tensor src = randn({kGpuCopyElems}, on(Device::cuda())), dst = empty({kGpuCopyElems}, on(Device::cuda()));
    dst.copy_(src);
    cuda::synchronize();
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < kGpuReps; ++r) dst.copy_(src);
      cuda::synchronize();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, 2.0 * 4.0 * double(kGpuCopyElems) * kGpuReps / s);
    }
    return best;
  }();
  return bw;
}

double gpu_sgemm_rate() {
  static const double rate = [] {
    const auto impl = cuda::gemm_impl();
    cuda::set_gemm_impl(cuda::GemmImpl::Cublas);
    const int64_t n = kGpuSgemmSize;
    Tensor a = randn({n, n}, on(Device::cuda())), b = randn({n, n}, on(Device::cuda()));
    { Tensor warm = matmul(a, b); }
    cuda::synchronize();
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < 3; ++r) {
        Tensor c = matmul(a, b);
        benchmark::DoNotOptimize(c);
      }
      cuda::synchronize();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, 2.0 * double(n) * double(n) * double(n) * 3.0 / s);
    }
    cuda::set_gemm_impl(impl);
    return best;
  }();
  return rate;
}

/// The ceiling for work of `kind` on `dev`: copy bandwidth for bytes, FMA peak / SGEMM for flop.
double ceiling(Device dev, WorkKind kind) {
  if (dev.is_cuda()) return kind == WorkKind::Bytes ? gpu_copy_bandwidth() : gpu_sgemm_rate();
  return kind == WorkKind::Bytes ? cpu_copy_bandwidth() : cpu_fma_peak();
}

// Skips a CUDA case when no GPU is usable; returns true when the case may run.
bool usable(benchmark::State& state, Device dev) {
  if (dev.is_cpu() || cuda::is_available()) return true;
  state.SkipWithError(("CUDA not available: " + cuda::unavailable_reason()).c_str());
  for (auto _ : state) {
  }
  return false;
}

// Times op() on dev and sets the counters.
template <class Prepare, class Op>
void run(benchmark::State& state, Device dev, WorkKind kind, double work, Prepare&& prepare, Op&& op,
         int reps = 0) {
  const double ceil = ceiling(dev, kind);  // measured before the timed loop, once
  const double s = timed_loop(state, reps > 0 ? reps : reps_for(dev), prepare, op, sync_for(dev));
  set_counters(state, kind, work, s, ceil);
}

// ---- ceilings as cases ------------------------------------------------------------------------
void register_ceilings(bool gpu) {
  if (!gpu) {
    register_cpu_ceiling_cases("cpu", get_num_threads());
    return;
  }
  register_case("peak_copy", "cuda", kGpuCopyElems, [](benchmark::State& state) {
    if (!usable(state, Device::cuda())) return;
    // The ceiling is the best of gpu_copy_bandwidth()'s own runs; this times the same copy
    // as a case like the others (its ceiling_fraction shows how steady it is).
    Tensor src = randn({kGpuCopyElems}, on(Device::cuda())), dst = empty({kGpuCopyElems}, on(Device::cuda()));
    run(state, Device::cuda(), WorkKind::Bytes, 8.0 * double(kGpuCopyElems), nothing, [&] { dst.copy_(src); });
  });
  register_case("peak_sgemm", "cuda", kGpuSgemmSize, [](benchmark::State& state) {
    if (!usable(state, Device::cuda())) return;
    const double rate = gpu_sgemm_rate();
    state.counters["flop_per_second"] = rate;
    state.counters["flop"] = 2.0 * double(kGpuSgemmSize) * double(kGpuSgemmSize) * double(kGpuSgemmSize);
    state.counters["ceiling"] = rate;
    state.counters["ceiling_fraction"] = 1.0;
    for (auto _ : state) state.SetIterationTime(state.counters["flop"] / rate);
  }, benchmark::kMillisecond)->Iterations(1);
}

// ---- the ops --------------------------------------------------------------------------------
void register_ops(Device dev) {
  const bool gpu = dev.is_cuda();
  const std::string d = device_tag(dev);

  for (int64_t n : elementwise_sizes(gpu)) {
    register_case("add", d, n, [dev, n](benchmark::State& state) {
      if (!usable(state, dev)) return;
      Tensor a = rand({n}, on(dev)), b = rand({n}, on(dev));
      run(state, dev, WorkKind::Bytes, 12.0 * double(n), nothing, [&] { benchmark::DoNotOptimize(add(a, b)); });
    });
  }
  for (int64_t n : elementwise_sizes(gpu)) {
    register_case("relu", d, n, [dev, n](benchmark::State& state) {
      if (!usable(state, dev)) return;
      Tensor a = randn({n}, on(dev));
      run(state, dev, WorkKind::Bytes, 8.0 * double(n), nothing, [&] { benchmark::DoNotOptimize(relu(a)); });
    });
  }
  for (int64_t n : elementwise_sizes(gpu)) {
    register_case("sum", d, n, [dev, n](benchmark::State& state) {
      if (!usable(state, dev)) return;
      Tensor a = rand({n}, on(dev));
      run(state, dev, WorkKind::Bytes, 4.0 * double(n), nothing, [&] { benchmark::DoNotOptimize(sum(a)); });
    });
  }
  for (const bool log : {false, true}) {
    for (int64_t n : softmax_sizes(gpu)) {
      register_case(log ? "log_softmax" : "softmax", d, n, [dev, n, log](benchmark::State& state) {
        if (!usable(state, dev)) return;
        Tensor x = randn({n / kSoftmaxRow, kSoftmaxRow}, on(dev));
        run(state, dev, WorkKind::Bytes, 8.0 * double(n), nothing,
            [&] { benchmark::DoNotOptimize(log ? log_softmax(x, 1) : softmax(x, 1)); });
      });
    }
  }
  for (int64_t n : matmul_sizes(gpu)) {
    register_case("matmul", d, n, [dev, n](benchmark::State& state) {
      if (!usable(state, dev)) return;
      Tensor a = randn({n, n}, on(dev)), b = randn({n, n}, on(dev));
      run(state, dev, WorkKind::Flop, 2.0 * double(n) * double(n) * double(n), nothing,
          [&] { benchmark::DoNotOptimize(matmul(a, b)); });
    }, benchmark::kMillisecond);
  }
  // The 16-bit dtypes: tensor cores through cuBLAS on the GPU (float32 accumulation); on the
  // CPU computed in float32 and rounded (what the conversions cost there).
  for (const DType dt : {kBFloat16, kFloat16}) {
    const std::vector<int64_t> sizes = gpu ? std::vector<int64_t>{1024, 2048, 4096, 8192} : std::vector<int64_t>{256, 512};
    for (int64_t n : sizes) {
      register_case(dt == kBFloat16 ? "matmul_bf16" : "matmul_fp16", d, n, [dev, n, dt](benchmark::State& state) {
        if (!usable(state, dev)) return;
        Tensor a = randn({n, n}, on(dev)).to(dt), b = randn({n, n}, on(dev)).to(dt);
        run(state, dev, WorkKind::Flop, 2.0 * double(n) * double(n) * double(n), nothing,
            [&] { benchmark::DoNotOptimize(matmul(a, b)); });
      }, benchmark::kMillisecond);
    }
  }
  if (gpu) {
    for (int64_t n : {int64_t(1024), int64_t(4096)}) {
      register_case("matmul_tiled", d, n, [dev, n](benchmark::State& state) {
        if (!usable(state, dev)) return;
        Tensor a = randn({n, n}, on(dev)), b = randn({n, n}, on(dev));
        const double rate = gpu_sgemm_rate();  // measure with cuBLAS before switching
        cuda::set_gemm_impl(cuda::GemmImpl::Tiled);
        run(state, dev, WorkKind::Flop, 2.0 * double(n) * double(n) * double(n), nothing,
            [&] { benchmark::DoNotOptimize(matmul(a, b)); });
        cuda::set_gemm_impl(cuda::GemmImpl::Cublas);
        state.counters["ceiling"] = rate;
      }, benchmark::kMillisecond);
    }
  }

  // Input, weight (scaled by 1/fan-in) and bias of a conv layer, the same for every case.
  struct ConvInputs {
    Tensor x, w, b;
  };
  auto conv_inputs = [](const ConvLayer& l, int64_t batch, Device dev) {
    manual_seed(1);
    Tensor x = randn({batch, l.c_in, l.hw, l.hw}, on(dev));
    Tensor w = randn({l.c_out, l.c_in, l.k, l.k}, on(dev)) * (1.0 / double(l.c_in * l.k * l.k));
    return ConvInputs{x, w, randn({l.c_out}, on(dev))};
  };
  for (const ConvLayer& l : conv_layers()) {
    for (int64_t batch : conv_batches(l, gpu)) {
      register_case(std::string("conv2d_fwd_") + l.name, d, batch, [dev, l, batch, conv_inputs](benchmark::State& state) {
        if (!usable(state, dev)) return;
        ConvInputs in = conv_inputs(l, batch, dev);
        Tensor &x = in.x, &w = in.w, &b = in.b;
        NoGradGuard no_grad;
        run(state, dev, WorkKind::Flop, conv_forward_flop(l, batch), nothing, [&] {
          benchmark::DoNotOptimize(conv2d(x, w, b, {1, 1}, {l.pad, l.pad}));
        });
      }, benchmark::kMillisecond);
      register_case(std::string("conv2d_bwd_") + l.name, d, batch, [dev, l, batch, conv_inputs](benchmark::State& state) {
        if (!usable(state, dev)) return;
        ConvInputs in = conv_inputs(l, batch, dev);
        Tensor &x = in.x, &w = in.w, &b = in.b;
        x.requires_grad_(l.input_grad);
        w.requires_grad_(true);
        b.requires_grad_(true);
        const int64_t out_hw = l.hw + 2 * l.pad - l.k + 1;
        Tensor grad_y = randn({batch, l.c_out, out_hw, out_hw}, on(dev));
        Tensor y;
        // Untimed: the forward that records the graph, and clearing the gradients.
        auto prepare = [&] {
          for (Tensor* t : {&x, &w, &b}) t->set_grad(Tensor());
          y = conv2d(x, w, b, {1, 1}, {l.pad, l.pad});
        };
        run(state, dev, WorkKind::Flop, conv_backward_flop(l, batch), prepare, [&] { y.backward(grad_y); }, 1);
      }, benchmark::kMillisecond);
    }
  }

  for (int64_t batch : pool_batches(gpu)) {
    register_case("max_pool2d", d, batch, [dev, batch](benchmark::State& state) {
      if (!usable(state, dev)) return;
      Tensor x = randn({batch, kPoolChannels, kPoolHW, kPoolHW}, on(dev));
      NoGradGuard no_grad;
      run(state, dev, WorkKind::Bytes, pool_bytes(batch), nothing,
          [&] { benchmark::DoNotOptimize(max_pool2d(x, {2, 2})); });
    });
  }

  register_case("train_step", d, kTrainBatch, [dev](benchmark::State& state) {
    if (!usable(state, dev)) return;
    manual_seed(1);
    auto net = std::make_shared<mnist_conv::Net>();
    net->to(dev);
    net->train();
    optim::Adam opt(net->parameters(), optim::AdamOptions(1e-3));
    Tensor x = randn({kTrainBatch, 1, 28, 28}, on(dev));
    Tensor y = randint(0, 10, {kTrainBatch}, TensorOptions(kInt64, dev));
    run(state, dev, WorkKind::Flop, train_step_flop(kTrainBatch), nothing, [&] {
      opt.zero_grad();
      Tensor loss = nll_loss(net->forward(x), y);
      loss.backward();
      opt.step();
    });  // on the GPU 10 steps per sync, as in an epoch (one step per sync would time a drain)
  }, benchmark::kMillisecond);
}

// One shuffled epoch of DataLoader batches (64 images of 28x28 uint8 -> normalised float32
// [64, 1, 28, 28]) over 60,000 in-memory images: the input pipeline of examples/mnist_conv.
// Counted bytes: the uint8 read plus the float32 written, against the CPU copy bandwidth.
void register_dataloader() {
  constexpr int64_t n = 60000;
  register_case("dataloader_epoch", "cpu", n, [](benchmark::State& state) {
    Tensor images = randint(0, 256, {n, 28, 28}, TensorOptions(kUInt8));
    Tensor labels = randint(0, 10, {n}, TensorOptions(kInt64));
    data::MnistDataset ds(images, labels);
    auto o = data::MnistLoaderOptions().shuffle(true).mean(0.2860f).std(0.3530f);
    data::DataLoader loader(ds, o);
    run(state, Device::cpu(), WorkKind::Bytes, 5.0 * 784.0 * double(n), nothing, [&] {
      for (const data::Batch& b : loader) benchmark::DoNotOptimize(b.data.raw_data());
    }, 1);
    state.counters["images_per_second"] = double(state.counters["bytes_per_second"]) / (5.0 * 784.0);
  }, benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("threads", std::to_string(get_num_threads()));
  benchmark::AddCustomContext("suite", "tessera");
  benchmark::AddCustomContext("cuda", cuda::is_available() ? "available" : cuda::unavailable_reason());
  if (cuda::is_available()) {
    const auto info = cuda::runtime_info();
    if (!info.devices.empty()) benchmark::AddCustomContext("gpu", info.devices[0].name);
  }
  register_ceilings(false);
  register_ops(Device::cpu());
  register_dataloader();
  if (cuda::is_built()) {
    register_ceilings(true);
    register_ops(Device::cuda());
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
