#include "cuda_backend.cuh"

#include <cstdlib>
#include <mutex>

#include "allocator.cuh"
#include "conv_cudnn.cuh"
#include "cuda_context.cuh"
#include "cuda_control.hpp"
#include "elementwise.cuh"
#include "gemm_cublas.cuh"
#include "index.cuh"
#include "loss.cuh"
#include "optim.cuh"
#include "pool.cuh"
#include "reduce.cuh"
#include "softmax.cuh"
#include "tessera/build_config.hpp"
#include "tessera/cuda.hpp"
#include "tessera/detail/float32_scope.hpp"

namespace tessera::cuda::detail {

namespace {

/// An empty kernel: cudaFuncGetAttributes on it tells whether the binary has code for a device.
__global__ void probe_kernel() {}

/// Gathers the facts availability_reason() decides on. Touches the driver only when CUDA is
/// not disabled by the environment. Never throws.
AvailabilityProbe gather_probe() {
  AvailabilityProbe p;
  p.built = true;
  p.compiled_architectures = TESSERA_CUDA_ARCHITECTURES;
  p.disabled_by_env = env_flag_true(std::getenv("TESSERA_DISABLE_CUDA"));
  if (p.disabled_by_env) return p;
  if (cudaDriverGetVersion(&p.driver_version) != cudaSuccess) p.driver_version = 0;
  if (cudaRuntimeGetVersion(&p.runtime_version) != cudaSuccess) p.runtime_version = CUDART_VERSION;
  (void)cudaGetLastError();
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  p.count_error = int(e);
  if (e != cudaSuccess) {
    p.count_error_text = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    (void)cudaGetLastError();
    return p;
  }
  p.device_count = n;
  int prev = 0;
  (void)cudaGetDevice(&prev);
  for (int i = 0; i < n; ++i) {
    DeviceInfo d;
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) == cudaSuccess) {
      d.name = prop.name;
      d.cc_major = prop.major;
      d.cc_minor = prop.minor;
      d.total_memory = prop.totalGlobalMem;
      d.multiprocessors = prop.multiProcessorCount;
    }
    cudaFuncAttributes attr{};
    d.kernel_image_ok = cudaSetDevice(i) == cudaSuccess &&
                        cudaFuncGetAttributes(&attr, reinterpret_cast<const void*>(&probe_kernel)) == cudaSuccess;
    (void)cudaGetLastError();
    p.devices.push_back(d);
  }
  (void)cudaSetDevice(prev);
  (void)cudaGetLastError();
  return p;
}

class ControlImpl final : public Control {
 public:
  const AvailabilityProbe& probe() override {
    std::call_once(once_, [this] { probe_ = gather_probe(); });
    return probe_;
  }
  RuntimeInfo runtime_info() override {
    const AvailabilityProbe& p = probe();
    RuntimeInfo r;
    r.driver_version = p.driver_version;
    r.runtime_version = p.runtime_version;
    r.compiled_architectures = p.compiled_architectures;
    r.devices = p.devices;
    r.cudnn_version = cudnnGetVersion();
    int v = 0;
    if (cublasGetProperty(MAJOR_VERSION, &v) == CUBLAS_STATUS_SUCCESS) {
      int mi = 0, pa = 0;
      cublasGetProperty(MINOR_VERSION, &mi);
      cublasGetProperty(PATCH_LEVEL, &pa);
      r.cublas_version = v * 10000 + mi * 100 + pa;
    }
    return r;
  }
  void synchronize(int device) override {
    const int n = probe().device_count;
    for (int i = 0; i < n; ++i) {  // every device first: an error on one must not skip the others
      if (device >= 0 && i != device) continue;
      DeviceGuard guard(i);
      TESSERA_CUDA_CHECK(cudaStreamSynchronize(device_context(i).stream));
    }
    for (int i = 0; i < n; ++i)
      if (device < 0 || i == device) check_device_errors(i);
  }
  MemoryStats memory_stats(int device) override { return CachingAllocator::instance().stats(device); }
  void reset_peak_memory_stats(int device) override { CachingAllocator::instance().reset_peak(device); }
  void empty_cache() override { CachingAllocator::instance().empty_cache(); }

 private:
  std::once_flag once_;
  AvailabilityProbe probe_;
};

void ensure_registered() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (find_backend(DeviceType::CUDA) == nullptr) register_backend(DeviceType::CUDA, &cuda_backend());
  });
}

// Static registration. The object file is kept by the linker because src/cuda_api.cpp calls
// cuda_control(), defined below.
const bool g_registered = [] {
  ensure_registered();
  return true;
}();

void check_device(Device d, const char* op) {
  TESSERA_CHECK(d.is_cuda(), DeviceError, "cuda ", op, ": tensor is on ", d.str());
  TESSERA_CHECK(cuda::is_available(), DeviceError, "cuda ", op, " on ", d.str(), ": CUDA is not available: ",
                cuda::unavailable_reason());
  TESSERA_CHECK(d.index >= 0 && d.index < cuda::device_count(), DeviceError, "cuda ", op, ": ", d.str(),
                " does not exist; ", cuda::device_count(), " CUDA device(s) are visible");
}

}  // namespace

}  // namespace tessera::cuda::detail

/// Linker anchor: kernels/CMakeLists.txt adds -Wl,--undefined=tessera_cuda_backend_anchor to
/// programs linking a static libtessera, so this object file (with the static registration
/// above) is kept even by programs that never call a tessera::cuda function.
extern "C" void tessera_cuda_backend_anchor() {}

namespace tessera::cuda::detail {

Control& cuda_control() {
  (void)g_registered;
  ensure_registered();
  static ControlImpl* c = new ControlImpl();  // never destroyed
  return *c;
}

CudaBackend& cuda_backend() {
  static CudaBackend* b = new CudaBackend();  // never destroyed
  return *b;
}

bool CudaBackend::is_available() const { return cuda::is_available(); }
std::string CudaBackend::unavailable_reason() const { return cuda::unavailable_reason(); }
int CudaBackend::device_count() const { return cuda::device_count(); }

std::shared_ptr<Storage> CudaBackend::allocate(std::size_t nbytes, Device device) {
  check_device(device, "allocate");
  DeviceGuard guard(device.index);
  void* p = CachingAllocator::instance().allocate(nbytes, device.index, device_context(device.index).stream);
  return std::make_shared<Storage>(p, nbytes, device, [](void* q) { CachingAllocator::instance().release(q); });
}

void CudaBackend::copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cuda() && src_device.is_cpu()) {
    check_device(dst_device, "copy to device");
    copy_host_to_device(dst, src, nbytes, dst_device.index);
  } else if (dst_device.is_cpu() && src_device.is_cuda()) {
    check_device(src_device, "copy to host");
    copy_device_to_host(dst, src, nbytes, src_device.index);
  } else if (dst_device.is_cuda() && src_device.is_cuda()) {
    check_device(dst_device, "copy");
    check_device(src_device, "copy");
    if (dst_device.index == src_device.index) {
      DeviceGuard guard(dst_device.index);
      TESSERA_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice,
                                         device_context(dst_device.index).stream));
    } else {
      synchronize(src_device);
      synchronize(dst_device);
      TESSERA_CUDA_CHECK(cudaMemcpyPeer(dst, dst_device.index, src, src_device.index, nbytes));
    }
  } else {
    throw DeviceError("cuda copy_bytes: neither side is a CUDA device (" + src_device.str() + " -> " +
                      dst_device.str() + ")");
  }
}

void CudaBackend::synchronize(Device device) {
  check_device(device, "synchronize");
  {
    DeviceGuard guard(device.index);
    TESSERA_CUDA_CHECK(cudaStreamSynchronize(device_context(device.index).stream));
  }
  check_device_errors(device.index);
}

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  if (src.device() != dst.device()) {
    TESSERA_CHECK(src.is_cuda() && dst.is_cuda() && src.dtype() == dst.dtype() && src.is_contiguous() &&
                      dst.is_contiguous(),
                  UnsupportedError, "cuda copy from ", src.device().str(), " to ", dst.device().str(),
                  " needs contiguous tensors of one dtype");
    copy_bytes(dst.raw_data(), dst.device(), src.raw_data(), src.device(), dst.nbytes());
    return;
  }
  elementwise_copy(src, dst);
}
void CudaBackend::fill(const Tensor& dst, double value) { elementwise_fill(dst, value); }
void CudaBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
  if (is_reduced_floating_point(out.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return elementwise_unary(op, f.in(x), f.out(out), a, b);
  }
  elementwise_unary(op, x, out, a, b);
}
void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (is_reduced_floating_point(a.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return elementwise_binary(op, f.in(a), f.in(b), f.out(out));
  }
  elementwise_binary(op, a, b, out);
}
void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  elementwise_where(cond, a, b, out);
}
void CudaBackend::random(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t offset, double a, double b) {
  random_fill(kind, out, seed, offset, a, b);
}
void CudaBackend::reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out, const Tensor& indices,
                              double correction) {
  if (is_reduced_floating_point(x.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::reduce_rows(op, f.in(x), f.out(out), indices, correction);
  }
  detail::reduce_rows(op, x, out, indices, correction);
}
void CudaBackend::softmax_rows(const Tensor& x, const Tensor& out, bool log) {
  if (is_reduced_floating_point(x.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::softmax_rows(f.in(x), f.out(out), log);
  }
  detail::softmax_rows(x, out, log);
}
void CudaBackend::softmax_rows_backward(const Tensor& y, const Tensor& grad_y, const Tensor& grad_x, bool log) {
  if (is_reduced_floating_point(y.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::softmax_rows_backward(f.in(y), f.in(grad_y), f.out(grad_x), log);
  }
  detail::softmax_rows_backward(y, grad_y, grad_x, log);
}
void CudaBackend::bmm(const Tensor& a, const Tensor& b, const Tensor& out) { detail::bmm(a, b, out); }
void CudaBackend::conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                 const Tensor& out) {
  if (is_reduced_floating_point(x.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::conv2d_forward(f.in(x), f.in(w), f.in(bias), p, f.out(out));
  }
  detail::conv2d_forward(x, w, bias, p, out);
}
void CudaBackend::conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& grad_out, const Conv2dParams& p,
                                  const Tensor& grad_x, const Tensor& grad_w, const Tensor& grad_b) {
  if (is_reduced_floating_point(x.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::conv2d_backward(f.in(x), f.in(w), f.in(grad_out), p, f.out(grad_x), f.out(grad_w), f.out(grad_b));
  }
  detail::conv2d_backward(x, w, grad_out, p, grad_x, grad_w, grad_b);
}
Tensor CudaBackend::max_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  if (is_reduced_floating_point(x.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::max_pool2d_forward(f.in(x), p, f.out(out));
  }
  return detail::max_pool2d_forward(x, p, out);
}
void CudaBackend::max_pool2d_backward(const Tensor& x, const Tensor& /*out*/, const Tensor& /*saved*/,
                                      const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x) {
  if (is_reduced_floating_point(x.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::max_pool2d_backward(f.in(x), f.in(grad_out), p, f.out(grad_x));
  }
  detail::max_pool2d_backward(x, grad_out, p, grad_x);
}
void CudaBackend::avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  if (is_reduced_floating_point(x.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::avg_pool2d_forward(f.in(x), p, f.out(out));
  }
  detail::avg_pool2d_forward(x, p, out);
}
void CudaBackend::avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x) {
  if (is_reduced_floating_point(grad_x.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::avg_pool2d_backward(f.in(grad_out), p, f.out(grad_x));
  }
  detail::avg_pool2d_backward(grad_out, p, grad_x);
}
void CudaBackend::nll_loss_forward(const Tensor& logp, const Tensor& target, const Tensor& out,
                                   int64_t ignore_index) {
  if (is_reduced_floating_point(logp.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::nll_loss_forward(f.in(logp), target, f.out(out), ignore_index);
  }
  detail::nll_loss_forward(logp, target, out, ignore_index);
}
void CudaBackend::nll_loss_backward(const Tensor& grad_out, const Tensor& target, const Tensor& grad_logp,
                                    int64_t ignore_index) {
  if (is_reduced_floating_point(grad_logp.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::nll_loss_backward(f.in(grad_out), target, f.out(grad_logp), ignore_index);
  }
  detail::nll_loss_backward(grad_out, target, grad_logp, ignore_index);
}
void CudaBackend::adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                            const Tensor& max_exp_avg_sq, const AdamStepParams& p) {
  if (is_reduced_floating_point(param.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::adam_step(f.inout(param), f.in(grad), f.inout(exp_avg), f.inout(exp_avg_sq), f.inout(max_exp_avg_sq), p);
  }
  detail::adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, p);
}
void CudaBackend::sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                           const SgdStepParams& p) {
  if (is_reduced_floating_point(param.dtype())) {  // no two-byte kernel yet: float32, rounded once
    ::tessera::detail::Float32Scope f;
    return detail::sgd_step(f.inout(param), f.in(grad), f.inout(momentum_buffer), p);
  }
  detail::sgd_step(param, grad, momentum_buffer, p);
}
void CudaBackend::gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out, const char* op) {
  detail::index_gather(x, dim, index, out, op);
}
void CudaBackend::scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, const char* op) {
  detail::index_scatter_add(out, dim, index, src, op);
}
void CudaBackend::topk_rows(const Tensor& x, int64_t k, bool largest, const Tensor& values, const Tensor& indices) {
  detail::topk_rows(x, k, largest, values, indices);
}
void CudaBackend::multinomial_rows(const Tensor& probs, uint64_t seed, uint64_t offset, const Tensor& out) {
  detail::multinomial_rows(probs, seed, offset, out);
}

}  // namespace tessera::cuda::detail
