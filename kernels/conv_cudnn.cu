#include "conv_cudnn.cuh"
#include "tessera/deterministic.hpp"

#include <array>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "allocator.cuh"
#include "cudnn_descriptors.cuh"
#include "elementwise.cuh"
#include "tessera/cuda.hpp"

namespace tessera::cuda::detail {

namespace {

enum class Dir : int { Forward, BackwardData, BackwardFilter };

using ConvKey = std::array<int64_t, 20>;
struct AlgoChoice {
  int algo = 0;
  std::size_t workspace = 0;
};

std::mutex g_algo_mutex;
std::map<ConvKey, AlgoChoice>& algo_cache() {
  static auto* m = new std::map<ConvKey, AlgoChoice>();
  return *m;
}

ConvKey make_key(Dir dir, const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  return ConvKey{int64_t(dir), int64_t(x.dtype()), x.device().index, x.size(0), x.size(1), x.size(2), x.size(3),
                 w.size(0), w.size(1), w.size(2), w.size(3), p.stride[0], p.stride[1], p.padding[0], p.padding[1],
                 p.dilation[0], p.dilation[1], p.groups, allow_tf32_cudnn() ? 1 : 0, deterministic() ? 1 : 0};
}

/// Workspace offered to cudnnFind (algorithms that need more are skipped).
constexpr std::size_t kFindWorkspace = std::size_t(256) << 20;

struct ConvSetup {
  TensorDesc xd, yd;
  FilterDesc wd;
  ConvDesc cd;
  ConvSetup(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p, const char* op) {
    xd.set(x, op);
    yd.set(y, op);
    wd.set(w, op);
    TESSERA_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        cd.d, to_int(p.padding[0], op), to_int(p.padding[1], op), to_int(p.stride[0], op), to_int(p.stride[1], op),
        to_int(p.dilation[0], op), to_int(p.dilation[1], op), CUDNN_CROSS_CORRELATION, cudnn_dtype(x.dtype(), op)));
    TESSERA_CUDNN_CHECK(cudnnSetConvolutionGroupCount(cd.d, to_int(p.groups, op)));
    // FMA math forbids TF32 tensor cores; DEFAULT allows them for float32 on Ampere and newer.
    const cudnnMathType_t mt =
        (x.dtype() == DType::Float32 && allow_tf32_cudnn()) ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    TESSERA_CUDNN_CHECK(cudnnSetConvolutionMathType(cd.d, mt));
  }
};

/// Runs cudnnFind once per key (with the real buffers, which the search overwrites).
AlgoChoice choose(Dir dir, const ConvKey& key, ConvSetup& s, DeviceContext& ctx, const void* x, const void* w,
                  const void* y, void* out_buffer) {
  {
    std::lock_guard<std::mutex> lock(g_algo_mutex);
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) return it->second;
  }
  std::size_t ws_size = kFindWorkspace;
  void* ws = nullptr;
  try {
    ws = CachingAllocator::instance().allocate(ws_size, ctx.device, ctx.stream);
  } catch (const CudaError&) {
    ws_size = 0;  // no room: search among algorithms that need no workspace
  }
  struct Release {
    void* p;
    ~Release() { CachingAllocator::instance().release(p); }
  } release{ws};
  cudnnHandle_t h = ctx.cudnn();
  AlgoChoice c;
  int returned = 0;
  bool found = false;
  // The fastest that ran; in deterministic mode the fastest CUDNN_DETERMINISTIC one (cuDNN's
  // non-deterministic backward algorithms accumulate with atomics).
  const bool det = deterministic();
  auto usable = [det](const auto& perf) {
    return perf.status == CUDNN_STATUS_SUCCESS && (!det || perf.determinism == CUDNN_DETERMINISTIC);
  };
  if (dir == Dir::Forward) {
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    TESSERA_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, s.xd.d, x, s.wd.d, w, s.cd.d, s.yd.d, out_buffer,
                                                                int(perf.size()), &returned, perf.data(), ws, ws_size));
    for (int i = 0; i < returned && !found; ++i)
      if (usable(perf[i])) { c = {int(perf[i].algo), perf[i].memory}; found = true; }
  } else if (dir == Dir::BackwardData) {
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    TESSERA_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, s.wd.d, w, s.yd.d, y, s.cd.d, s.xd.d,
                                                                     out_buffer, int(perf.size()), &returned,
                                                                     perf.data(), ws, ws_size));
    for (int i = 0; i < returned && !found; ++i)
      if (usable(perf[i])) { c = {int(perf[i].algo), perf[i].memory}; found = true; }
  } else {
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    TESSERA_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, s.xd.d, x, s.yd.d, y, s.cd.d, s.wd.d,
                                                                       out_buffer, int(perf.size()), &returned,
                                                                       perf.data(), ws, ws_size));
    for (int i = 0; i < returned && !found; ++i)
      if (usable(perf[i])) { c = {int(perf[i].algo), perf[i].memory}; found = true; }
  }
  if (!found && det)
    alert_not_deterministic(dir == Dir::Forward ? "conv2d (cuDNN)" : "conv2d backward (cuDNN)",
                            "cuDNN offers no deterministic algorithm for this shape");
  TESSERA_CHECK(found, CudnnError, "cuDNN found no convolution algorithm for this shape (", returned,
                " tried) [", __FILE__, ":", __LINE__, "]");
  std::lock_guard<std::mutex> lock(g_algo_mutex);
  algo_cache()[key] = c;
  return c;
}

template <typename T>
struct Scalars {
  T one = T(1), zero = T(0);
};

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, const Tensor& out) {
  if (out.numel() == 0) return;
  DeviceGuard guard(x.device().index);
  DeviceContext& ctx = context_of(x);
  if (x.numel() == 0 || w.numel() == 0) {  // empty reduction: bias only
    elementwise_fill(out, 0.0);
  } else {
    ConvSetup s(x, w, out, p, "conv2d");
    AlgoChoice c = choose(Dir::Forward, make_key(Dir::Forward, x, w, p), s, ctx, x.raw_data(), w.raw_data(), nullptr,
                          out.raw_data());
    TempBuffer ws(c.workspace, ctx.device);
    dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
      using T = typename decltype(tag)::type;
      Scalars<T> k;
      TESSERA_CUDNN_CHECK(cudnnConvolutionForward(ctx.cudnn(), &k.one, s.xd.d, x.raw_data(), s.wd.d, w.raw_data(),
                                                  s.cd.d, cudnnConvolutionFwdAlgo_t(c.algo), ws.as<void>(),
                                                  c.workspace, &k.zero, s.yd.d, out.raw_data()));
    });
  }
  if (bias.defined()) {
    TensorDesc bd, yd;
    bd.set(1, bias.numel(), 1, 1, bias.dtype(), "conv2d");
    yd.set(out, "conv2d");
    dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
      using T = typename decltype(tag)::type;
      Scalars<T> k;
      TESSERA_CUDNN_CHECK(cudnnAddTensor(ctx.cudnn(), &k.one, bd.d, bias.raw_data(), &k.one, yd.d, out.raw_data()));
    });
  }
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& grad_out_in, const Conv2dParams& p,
                     const Tensor& grad_x, const Tensor& grad_w, const Tensor& grad_b) {
  DeviceGuard guard(x.device().index);
  DeviceContext& ctx = context_of(x);
  Tensor gy = grad_out_in;
  if (!gy.is_contiguous()) {
    Tensor c = make_device_tensor(gy.shape(), gy.dtype(), gy.device());
    elementwise_copy(gy, c);
    gy = c;
  }
  const bool empty = gy.numel() == 0 || x.numel() == 0 || w.numel() == 0;
  if (empty) {
    if (grad_x.defined()) elementwise_fill(grad_x, 0.0);
    if (grad_w.defined()) elementwise_fill(grad_w, 0.0);
    if (grad_b.defined()) elementwise_fill(grad_b, 0.0);
    return;
  }
  ConvSetup s(x, w, gy, p, "conv2d_backward");
  dispatch_float(x.dtype(), "conv2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Scalars<T> k;
    if (grad_x.defined()) {
      AlgoChoice c = choose(Dir::BackwardData, make_key(Dir::BackwardData, x, w, p), s, ctx, nullptr, w.raw_data(),
                            gy.raw_data(), grad_x.raw_data());
      TempBuffer ws(c.workspace, ctx.device);
      TESSERA_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.cudnn(), &k.one, s.wd.d, w.raw_data(), s.yd.d, gy.raw_data(),
                                                       s.cd.d, cudnnConvolutionBwdDataAlgo_t(c.algo), ws.as<void>(),
                                                       c.workspace, &k.zero, s.xd.d, grad_x.raw_data()));
    }
    if (grad_w.defined()) {
      AlgoChoice c = choose(Dir::BackwardFilter, make_key(Dir::BackwardFilter, x, w, p), s, ctx, x.raw_data(), nullptr,
                            gy.raw_data(), grad_w.raw_data());
      TempBuffer ws(c.workspace, ctx.device);
      TESSERA_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn(), &k.one, s.xd.d, x.raw_data(), s.yd.d,
                                                         gy.raw_data(), s.cd.d, cudnnConvolutionBwdFilterAlgo_t(c.algo),
                                                         ws.as<void>(), c.workspace, &k.zero, s.wd.d, grad_w.raw_data()));
    }
    if (grad_b.defined()) {
      TensorDesc bd;
      bd.set(1, grad_b.numel(), 1, 1, grad_b.dtype(), "conv2d_backward");
      TESSERA_CUDNN_CHECK(cudnnConvolutionBackwardBias(ctx.cudnn(), &k.one, s.yd.d, gy.raw_data(), &k.zero, bd.d,
                                                       grad_b.raw_data()));
    }
  });
}

}  // namespace tessera::cuda::detail
