// Automatic mixed precision: inside an AutocastGuard, ops run in a lower-precision dtype
// where that is safe and fast (matmul, linear, bmm, conv2d) and in float32 where precision
// matters (softmax, losses, sums, exp/log/pow), while parameters stay float32.
//
//   {
//     tessera::AutocastGuard autocast(tessera::DeviceType::CUDA, tessera::kBFloat16);
//     Tensor loss = cross_entropy(model.forward(x), y);   // matmuls in bfloat16
//   }
//   scaler.scale(loss).backward();                        // backward outside the guard
//
// The policy is one table (src/amp/autocast.cpp), modelled on PyTorch's autocast op lists
// (https://pytorch.org/docs/stable/amp.html#autocast-op-reference). Casts are ordinary
// differentiable to(dtype) ops, so backward runs each op in the dtype its forward ran in and
// a float32 parameter gets a float32 gradient. Within one outermost guard the lower-precision
// copy of a parameter (a leaf that requires grad) is made once and reused (the cast cache;
// PyTorch's too). The state is per thread, as PyTorch's; autograd's backward runs with
// autocast off. float64 tensors are never cast (PyTorch's rule).
#pragma once
#include <string_view>

#include "tessera/device.hpp"
#include "tessera/dtype.hpp"
#include "tessera/tensor.hpp"

namespace tessera {

/// Turns autocast on (or off, enabled = false) for ops on tensors of device type `device`
/// until the guard is destroyed, which restores the previous state. `dtype` is float16 or
/// bfloat16 (ValueError otherwise). Guards nest; the cast cache is cleared when the
/// outermost enabled guard of the thread ends.
class AutocastGuard {
 public:
  explicit AutocastGuard(DeviceType device, DType dtype = kBFloat16, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DeviceType device_;
  bool prev_enabled_;
  DType prev_dtype_;
};

namespace amp {

/// What autocast does with an op's floating-point inputs.
enum class CastPolicy {
  LowerPrecision,  ///< cast float32 inputs to the guard's dtype (matmul, linear, bmm, conv2d, ...)
  Float32,         ///< cast float16/bfloat16 inputs to float32 (softmax, losses, sum, exp, ...)
  Promote,         ///< the widest input dtype: what cat, stack and binary ops do anyway (type promotion)
  None,            ///< not in the table: runs in its inputs' dtypes
};
/// The policy for op (the name Tessera's ops report: "matmul", "log_softmax", ...).
CastPolicy policy(std::string_view op);
const char* policy_name(CastPolicy p);

bool is_autocast_enabled(DeviceType device);
/// The guard's dtype for device (meaningful while enabled).
DType autocast_dtype(DeviceType device);

/// t cast per op's policy when autocast is on for t's device; t itself otherwise (and for
/// undefined, non-float and float64 tensors). Used by the ops in the policy table.
Tensor autocast(const Tensor& t, const char* op);

/// Number of casts served from the cast cache since the thread's outermost guard began
/// (tests check that a weight is cast once per guard).
int64_t cast_cache_hits();
/// Entries in this thread's cast cache.
std::size_t cast_cache_size();

/// Turns autocast off for every device on this thread while alive (autograd's backward).
class AutocastDisabled {
 public:
  AutocastDisabled();
  ~AutocastDisabled();
  AutocastDisabled(const AutocastDisabled&) = delete;
  AutocastDisabled& operator=(const AutocastDisabled&) = delete;

 private:
  bool prev_[2];
};

}  // namespace amp
}  // namespace tessera
