#include "cuda_context.cuh"

#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "allocator.cuh"

namespace tessera::cuda::detail {

namespace {
std::string where(const char* call, const char* file, int line) {
  std::ostringstream os;
  os << call << " [" << file << ":" << line << "]";
  return os.str();
}
}  // namespace

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  (void)cudaGetLastError();  // clear non-sticky errors so later calls are not blamed
  throw CudaError(std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                  ") in " + where(call, file, line));
}
void throw_cublas_error(cublasStatus_t st, const char* call, const char* file, int line) {
  throw CublasError(std::string("cuBLAS error ") + cublasGetStatusName(st) + " (" + cublasGetStatusString(st) +
                    ") in " + where(call, file, line));
}
void throw_cudnn_error(cudnnStatus_t st, const char* call, const char* file, int line) {
  throw CudnnError(std::string("cuDNN error ") + cudnnGetErrorString(st) + " (status " + std::to_string(int(st)) +
                   ") in " + where(call, file, line));
}

DeviceGuard::DeviceGuard(int device) {
  TESSERA_CUDA_CHECK(cudaGetDevice(&prev_));
  if (prev_ != device) TESSERA_CUDA_CHECK(cudaSetDevice(device));
  else prev_ = -1;
}
DeviceGuard::~DeviceGuard() {
  if (prev_ >= 0) (void)cudaSetDevice(prev_);
}

namespace {
std::mutex g_ctx_mutex;
std::vector<std::unique_ptr<DeviceContext>>& contexts() {
  static auto* v = new std::vector<std::unique_ptr<DeviceContext>>();  // never destroyed
  return *v;
}
}  // namespace

DeviceContext& device_context(int index) {
  std::lock_guard<std::mutex> lock(g_ctx_mutex);
  auto& v = contexts();
  if (v.empty()) {
    int n = 0;
    TESSERA_CUDA_CHECK(cudaGetDeviceCount(&n));
    v.resize(std::size_t(n));
  }
  TESSERA_CHECK(index >= 0 && index < int(v.size()), DeviceError, "cuda:", index, " does not exist; ",
                v.size(), " CUDA device(s) are visible");
  auto& slot = v[std::size_t(index)];
  if (!slot) {
    auto ctx = std::make_unique<DeviceContext>();
    ctx->device = index;
    DeviceGuard guard(index);
    TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    TESSERA_CUDA_CHECK(cudaDeviceGetAttribute(&ctx->sm_count, cudaDevAttrMultiProcessorCount, index));
    int smem = 0;
    TESSERA_CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, index));
    ctx->max_smem_per_block = std::size_t(smem);
    slot = std::move(ctx);
  }
  return *slot;
}

cublasHandle_t DeviceContext::cublas() {
  if (cublas_ == nullptr) {
    DeviceGuard guard(device);
    cublasHandle_t h = nullptr;
    TESSERA_CUBLAS_CHECK(cublasCreate(&h));
    TESSERA_CUBLAS_CHECK(cublasSetStream(h, stream));
    // cuBLAS's workspace from the caching allocator (32 MiB, NVIDIA's advice for Hopper), so
    // cuBLAS makes no cudaMalloc of its own during training.
    const std::size_t ws = std::size_t(32) << 20;
    cublas_workspace_ = CachingAllocator::instance().allocate(ws, device, stream);
    TESSERA_CUBLAS_CHECK(cublasSetWorkspace(h, cublas_workspace_, ws));
    TESSERA_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
    cublas_ = h;
  }
  return cublas_;
}

DeviceErrors DeviceContext::errors() {
  std::lock_guard<std::mutex> lock(errors_mutex_);
  if (errors_.record == nullptr) {
    DeviceGuard guard(device);
    void* rec = nullptr;
    TESSERA_CUDA_CHECK(cudaMallocHost(&rec, sizeof(DeviceErrorRecord)));
    std::memset(rec, 0, sizeof(DeviceErrorRecord));
    void* claim = CachingAllocator::instance().allocate(sizeof(int), device, stream);
    TESSERA_CUDA_CHECK(cudaMemsetAsync(claim, 0, sizeof(int), stream));
    errors_.claim = static_cast<int*>(claim);
    errors_.record = static_cast<DeviceErrorRecord*>(rec);
  }
  return errors_;
}

void check_device_errors(int device) {
  DeviceContext& ctx = device_context(device);
  DeviceErrorRecord e{};
  {
    std::lock_guard<std::mutex> lock(ctx.errors_mutex_);
    if (ctx.errors_.record == nullptr) return;
    volatile DeviceErrorRecord* r = ctx.errors_.record;
    if (r->code == 0) return;
    e = DeviceErrorRecord{r->code, r->index, r->value, r->rows, r->classes, r->dim, r->op};
    // Re-arm the claim first: if that fails, the record stays set and is reported again.
    DeviceGuard guard(device);
    TESSERA_CUDA_CHECK(cudaMemsetAsync(ctx.errors_.claim, 0, sizeof(int), ctx.stream));
    r->code = 0;
  }
  if (e.code == kBadClassIndex)
    throw IndexError("nll_loss: target " + std::to_string(e.value) + " at index " + std::to_string(e.index) +
                     " is out of bounds for C = " + std::to_string(e.classes) + " classes (input [" +
                     std::to_string(e.rows) + ", " + std::to_string(e.classes) + "]); targets must be in [0, " +
                     std::to_string(e.classes) + "). Found on cuda:" + std::to_string(device) +
                     " by the loss kernel, reported at the first synchronisation after it");
  if (e.code == kBadIndex)
    throw IndexError(index_out_of_range_message(reinterpret_cast<const char*>(e.op), e.value, e.index, e.dim,
                                                e.rows) +
                     ". Found on cuda:" + std::to_string(device) +
                     " by the indexing kernel, reported at the first synchronisation after it");
  throw CudaError("cuda:" + std::to_string(device) + ": a kernel recorded unknown error code " + std::to_string(e.code));
}

cudnnHandle_t DeviceContext::cudnn() {
  if (cudnn_ == nullptr) {
    DeviceGuard guard(device);
    cudnnHandle_t h = nullptr;
    TESSERA_CUDNN_CHECK(cudnnCreate(&h));
    TESSERA_CUDNN_CHECK(cudnnSetStream(h, stream));
    cudnn_ = h;
  }
  return cudnn_;
}

}  // namespace tessera::cuda::detail

namespace tessera::cuda::detail {

TempBuffer::TempBuffer(std::size_t nbytes, int device) {
  ptr_ = CachingAllocator::instance().allocate(nbytes, device, device_context(device).stream);
}
TempBuffer::~TempBuffer() { CachingAllocator::instance().release(ptr_); }

Tensor make_device_tensor(const Shape& shape, DType dtype, Device device) {
  const std::size_t nbytes = std::size_t(shape_numel(shape)) * itemsize(dtype);
  void* p = CachingAllocator::instance().allocate(nbytes, device.index, device_context(device.index).stream);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(p, nbytes, device,
                                            [](void* q) { CachingAllocator::instance().release(q); });
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->offset = 0;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

}  // namespace tessera::cuda::detail
