// The CPU backend: Eigen for vectorised math and GEMM, OpenMP threads where it pays.
// One .cpp per op family implements the members declared here.
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cpu {

/// The host caching allocator's counters, in bytes (memory.cpp; for tests and leak checks).
struct HostMemoryStats {
  std::size_t allocated = 0;     ///< held by live storages (rounded sizes)
  std::size_t cached = 0;        ///< idle blocks kept for reuse
  std::size_t cached_blocks = 0;
};
HostMemoryStats host_memory_stats();

class CpuBackend final : public Backend {
 public:
  DeviceType type() const override { return DeviceType::CPU; }
  const char* name() const override { return "cpu"; }
  bool is_available() const override { return true; }
  std::string unavailable_reason() const override { return ""; }
  int device_count() const override { return 1; }

  // memory.cpp
  std::shared_ptr<Storage> allocate(std::size_t nbytes, Device device) override;
  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                  std::size_t nbytes) override;
  void synchronize(Device) override {}

  // elementwise.cpp
  void copy(const Tensor& src, const Tensor& dst) override;
  void fill(const Tensor& dst, double value) override;
  void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void random(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t offset, double a,
              double b) override;

  // reduce.cpp
  void reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out, const Tensor& indices,
                   double correction) override;
  void softmax_rows(const Tensor& x, const Tensor& out, bool log) override;
  void softmax_rows_backward(const Tensor& y, const Tensor& grad_y, const Tensor& grad_x,
                             bool log) override;

  // gemm.cpp
  void bmm(const Tensor& a, const Tensor& b, const Tensor& out) override;

  // conv.cpp
  void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                      const Tensor& out) override;
  void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& grad_out,
                       const Conv2dParams& p, const Tensor& grad_x, const Tensor& grad_w,
                       const Tensor& grad_b) override;
  // pool.cpp
  Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) override;
  void max_pool2d_backward(const Tensor& x, const Tensor& out, const Tensor& saved,
                           const Tensor& grad_out, const Pool2dParams& p,
                           const Tensor& grad_x) override;
  void avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) override;
  void avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p,
                           const Tensor& grad_x) override;
  // loss.cpp
  void nll_loss_forward(const Tensor& logp, const Tensor& target, const Tensor& out,
                        int64_t ignore_index) override;
  void nll_loss_backward(const Tensor& grad_out, const Tensor& target, const Tensor& grad_logp,
                         int64_t ignore_index) override;
  void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 const Tensor& max_exp_avg_sq, const AdamStepParams& p) override;
  void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                const SgdStepParams& p) override;

  // index.cpp
  void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out, const char* op) override;
  void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                   const char* op) override;
  void topk_rows(const Tensor& x, int64_t k, bool largest, const Tensor& values,
                 const Tensor& indices) override;
  void multinomial_rows(const Tensor& probs, uint64_t seed, uint64_t offset, const Tensor& out) override;
};


}  // namespace tessera::cpu
