// What tessera_bench and libtorch_bench share, so that their cases carry the same names,
// sizes and counters and scripts/bench-report can pair them (scripts/bench-pytorch.py
// mirrors the same lists for PyTorch on CUDA; keep the three in step).
//
// Case names: BM_<op>/<device>/<size>, device one of
//   cpu (Tessera, CPU)  cuda (Tessera, CUDA)  libtorch (libtorch, CPU)  pytorch_cuda (PyTorch, CUDA)
// and size the op's sweep variable (elements, matrix side, or batch; see the lists below).
// Google Benchmark appends "/manual_time": every case times itself (steady clock around the
// op, with a device synchronisation inside the timed region for CUDA) and reports the time of
// one op through SetIterationTime.
//
// Counters on every case (plain numbers, per op):
//   bytes or flop            work of one op (bytes read + written, or floating-point operations)
//   bytes_per_second or flop_per_second    that work divided by the measured time
//   ceiling                  the ceiling this rate is compared with, measured in the same
//                            process (CPU: memory-copy bandwidth or FMA peak, cpu_peak.hpp;
//                            GPU: device-to-device copy bandwidth or cuBLAS SGEMM rate)
//   ceiling_fraction         rate / ceiling
#pragma once
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu_peak.hpp"

namespace tessera::bench {

// ---- sizes --------------------------------------------------------------------------------
// Elementwise (add, relu), full reduction (sum): elements of one float32 tensor, x4 steps.
// The largest CPU size is 256 MiB per tensor (beyond every cache); the GPU goes to 1 GiB.
inline std::vector<int64_t> elementwise_sizes(bool gpu) {
  std::vector<int64_t> s;
  for (int64_t n = int64_t(1) << 10; n <= (int64_t(1) << (gpu ? 28 : 26)); n *= 4) s.push_back(n);
  return s;
}
// softmax / log_softmax along the last dim of [n / 4096, 4096]: elements n, rows of 4096.
constexpr int64_t kSoftmaxRow = 4096;
inline std::vector<int64_t> softmax_sizes(bool gpu) {
  std::vector<int64_t> s;
  for (int64_t n = kSoftmaxRow; n <= (int64_t(1) << (gpu ? 28 : 26)); n *= 4) s.push_back(n);
  return s;
}
// matmul [n, n] @ [n, n], float32. CPU to 2048 (17 GFLOP a call: about 0.1 s on 2 cores).
inline std::vector<int64_t> matmul_sizes(bool gpu) {
  std::vector<int64_t> s;
  for (int64_t n = 64; n <= (gpu ? 8192 : 2048); n *= 2) s.push_back(n);
  return s;
}
// conv2d layers; size = batch.
struct ConvLayer {
  const char* name;  // op suffix: conv2d_fwd_<name>, conv2d_bwd_<name>
  int64_t c_in, c_out, hw, k, pad;
  bool input_grad;  // backward computes the input's gradient too (not for a net's first layer)
};
inline const std::vector<ConvLayer>& conv_layers() {
  static const std::vector<ConvLayer> layers = {
      {"mnist1", 1, 32, 28, 3, 0, false},     // examples/mnist_conv conv1: [N,1,28,28] -> [N,32,26,26]
      {"mnist2", 32, 64, 26, 3, 0, true},     // conv2: [N,32,26,26] -> [N,64,24,24]
      {"resnet3x3", 64, 64, 56, 3, 1, true},  // ResNet-18/34 conv2_x: [N,64,56,56] -> [N,64,56,56]
  };
  return layers;
}
// Batches: the CPU stops at 256 for the MNIST layers and at 64 for the ResNet layer (batch
// 256 would take about 2 s per backward call on 2 cores); the GPU adds 256 for ResNet.
inline std::vector<int64_t> conv_batches(const ConvLayer& l, bool gpu) {
  if (std::string(l.name) == "resnet3x3") return gpu ? std::vector<int64_t>{1, 16, 64, 256} : std::vector<int64_t>{1, 16, 64};
  return {1, 16, 64, 256};
}
inline double conv_forward_flop(const ConvLayer& l, int64_t batch) {
  const double out_hw = double(l.hw + 2 * l.pad - l.k + 1);
  return 2.0 * double(batch) * double(l.c_out) * out_hw * out_hw * double(l.c_in) * double(l.k * l.k);
}
// Backward: gradient of the weight (one forward's worth) and of the input (another) when
// asked; the bias gradient is a reduction and not counted.
inline double conv_backward_flop(const ConvLayer& l, int64_t batch) {
  return conv_forward_flop(l, batch) * (l.input_grad ? 2.0 : 1.0);
}
// max_pool2d, kernel 2, stride 2 on [batch, 64, 24, 24] (the MNIST net's pooling); size = batch.
constexpr int64_t kPoolChannels = 64, kPoolHW = 24;
inline std::vector<int64_t> pool_batches(bool gpu) {
  return gpu ? std::vector<int64_t>{1, 16, 64, 256, 1024, 4096} : std::vector<int64_t>{1, 16, 64, 256, 1024};
}
inline double pool_bytes(int64_t batch) {
  const double in = double(batch * kPoolChannels * kPoolHW * kPoolHW);
  return 4.0 * (in + in / 4.0);
}
// One training step of the mnist_conv net (forward, nll_loss, backward, Adam), batch 64.
constexpr int64_t kTrainBatch = 64;
// FLOP of one step: 3x the forward's conv and linear FLOP, less conv1's input gradient.
inline double train_step_flop(int64_t batch) {
  const double conv1 = conv_forward_flop(conv_layers()[0], batch), conv2 = conv_forward_flop(conv_layers()[1], batch);
  const double fc = 2.0 * double(batch) * (9216.0 * 128.0 + 128.0 * 10.0);
  return 3.0 * (conv1 + conv2 + fc) - conv1;
}

// ---- timing and counters ------------------------------------------------------------------
/// "BM_<op>/<device>/<size>".
inline std::string case_name(const std::string& op, const std::string& device, int64_t size) {
  return "BM_" + op + "/" + device + "/" + std::to_string(size);
}

/// Runs the benchmark loop and returns the mean seconds per op. Untimed: one warm-up
/// (prepare, op, sync) and prepare() before each iteration. Timed: `reps` calls of op()
/// followed by sync(); the iteration time is that divided by reps (reps > 1 amortises kernel
/// launch latency on a GPU: ops queue back to back as in a real program).
template <class Prepare, class Op, class Sync>
double timed_loop(benchmark::State& state, int reps, Prepare&& prepare, Op&& op, Sync&& sync) {
  using clock = std::chrono::steady_clock;
  prepare();
  op();
  sync();
  double total = 0;
  int64_t n = 0;
  for (auto _ : state) {
    prepare();
    sync();
    const auto t0 = clock::now();
    for (int r = 0; r < reps; ++r) op();
    sync();
    const double s = std::chrono::duration<double>(clock::now() - t0).count() / double(reps);
    state.SetIterationTime(s);
    total += s;
    ++n;
  }
  return n ? total / double(n) : 0.0;
}

enum class WorkKind { Bytes, Flop };

/// Sets the counters described at the top of this file.
inline void set_counters(benchmark::State& state, WorkKind kind, double work, double seconds, double ceiling) {
  const bool bytes = kind == WorkKind::Bytes;
  const double rate = seconds > 0 ? work / seconds : 0.0;
  state.counters[bytes ? "bytes" : "flop"] = work;
  state.counters[bytes ? "bytes_per_second" : "flop_per_second"] = rate;
  state.counters["ceiling"] = ceiling;
  state.counters["ceiling_fraction"] = ceiling > 0 ? rate / ceiling : 0.0;
}

/// Registers fn(state) under case_name(op, device, size), manual time, unit by size of the work.
template <class Fn>
benchmark::internal::Benchmark* register_case(const std::string& op, const std::string& device, int64_t size, Fn fn,
                                              benchmark::TimeUnit unit = benchmark::kMicrosecond) {
  return benchmark::RegisterBenchmark(case_name(op, device, size).c_str(), fn)->UseManualTime()->Unit(unit);
}

/// Registers a ceiling as a case of its own: BM_<op>/<device>/<size>, one iteration that
/// times measure() and reports its result as `counter` with ceiling_fraction 1.
template <class Measure>
void register_ceiling_case(const std::string& op, const std::string& device, int64_t size, const char* counter,
                           Measure measure) {
  register_case(op, device, size, [counter, measure](benchmark::State& state) {
    double value = 0;
    for (auto _ : state) {
      const auto t0 = std::chrono::steady_clock::now();
      value = measure();
      state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    state.counters[counter] = value;
    state.counters["ceiling"] = value;
    state.counters["ceiling_fraction"] = 1.0;
  })->Iterations(1);
}

/// The CPU ceilings of cpu_peak.hpp as cases: peak_fma/<device>/<threads> (FLOP/s) and
/// peak_copy/<device>/<bytes> (bytes/s), measured once per process.
inline void register_cpu_ceiling_cases(const std::string& device, int threads) {
  register_ceiling_case("peak_fma", device, threads, "flop_per_second", [] { return cpu_fma_peak(); });
  register_ceiling_case("peak_copy", device, int64_t(256) << 20, "bytes_per_second", [] { return cpu_copy_bandwidth(); });
}

}  // namespace tessera::bench
