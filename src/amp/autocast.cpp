// Autocast: the policy table and the thread-local state (see tessera/amp/autocast.hpp).
#include "tessera/amp/autocast.hpp"

#include <unordered_map>
#include <utility>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"

namespace tessera {
namespace amp {

namespace {

struct DeviceState {
  bool enabled = false;
  DType dtype = kBFloat16;
};

struct CacheKey {
  const void* impl;
  DType dtype;
  bool operator==(const CacheKey& o) const { return impl == o.impl && dtype == o.dtype; }
};
struct CacheKeyHash {
  std::size_t operator()(const CacheKey& k) const {
    return std::hash<const void*>()(k.impl) ^ (std::size_t(k.dtype) << 1);
  }
};

struct ThreadState {
  DeviceState device[kNumDeviceTypes];
  int depth = 0;  // enabled guards alive
  // Source tensor (kept alive so its address stays unique) and its cast.
  std::unordered_map<CacheKey, std::pair<Tensor, Tensor>, CacheKeyHash> cache;
  int64_t hits = 0;
};

ThreadState& state() {
  thread_local ThreadState s;
  return s;
}

// The policy table: one row per op. Lower precision where tensor cores pay and the result
// tolerates it; float32 where a sum, an exponential or a normalisation needs the range or
// precision; promote where inputs of several dtypes meet. Modelled on PyTorch's CUDA lists
// (torch/csrc/... autocast_mode.cpp: lower_precision_fp, fp32, promote).
const std::unordered_map<std::string_view, CastPolicy>& table() {
  static const std::unordered_map<std::string_view, CastPolicy> t = {
      // lower precision
      {"matmul", CastPolicy::LowerPrecision},
      {"mm", CastPolicy::LowerPrecision},
      {"bmm", CastPolicy::LowerPrecision},
      {"linear", CastPolicy::LowerPrecision},
      {"conv2d", CastPolicy::LowerPrecision},
      {"scaled_dot_product_attention", CastPolicy::LowerPrecision},
      // float32
      {"softmax", CastPolicy::Float32},
      {"log_softmax", CastPolicy::Float32},
      {"nll_loss", CastPolicy::Float32},
      {"cross_entropy", CastPolicy::Float32},
      {"mse_loss", CastPolicy::Float32},
      {"sum", CastPolicy::Float32},
      {"mean", CastPolicy::Float32},
      {"prod", CastPolicy::Float32},
      {"var", CastPolicy::Float32},
      {"exp", CastPolicy::Float32},
      {"log", CastPolicy::Float32},
      {"log1p", CastPolicy::Float32},
      {"pow", CastPolicy::Float32},
      {"rsqrt", CastPolicy::Float32},
      {"reciprocal", CastPolicy::Float32},
      {"layer_norm", CastPolicy::Float32},
      {"rms_norm", CastPolicy::Float32},
      {"batch_norm", CastPolicy::Float32},
      {"group_norm", CastPolicy::Float32},
      // promote to the widest input type
      {"cat", CastPolicy::Promote},
      {"stack", CastPolicy::Promote},
  };
  return t;
}

Tensor cast_to(const Tensor& t, DType dt, bool cacheable) {
  ThreadState& s = state();
  if (cacheable && s.depth > 0) {
    const CacheKey key{t.impl_ptr().get(), dt};
    auto it = s.cache.find(key);
    if (it != s.cache.end()) {
      ++s.hits;
      return it->second.second;
    }
    Tensor c = t.to(dt);
    s.cache.emplace(key, std::make_pair(t, c));
    return c;
  }
  return t.to(dt);
}

}  // namespace

CastPolicy policy(std::string_view op) {
  auto it = table().find(op);
  return it == table().end() ? CastPolicy::None : it->second;
}

const char* policy_name(CastPolicy p) {
  switch (p) {
    case CastPolicy::LowerPrecision: return "lower_precision";
    case CastPolicy::Float32: return "float32";
    case CastPolicy::Promote: return "promote";
    case CastPolicy::None: return "none";
  }
  return "?";
}

bool is_autocast_enabled(DeviceType device) { return state().device[int(device)].enabled; }
DType autocast_dtype(DeviceType device) { return state().device[int(device)].dtype; }

Tensor autocast(const Tensor& t, const char* op) {
  if (!t.defined() || !is_floating_point(t.dtype()) || t.dtype() == kFloat64) return t;
  const DeviceState& d = state().device[int(t.device().type)];
  if (!d.enabled) return t;
  switch (policy(op)) {
    case CastPolicy::LowerPrecision:
      if (t.dtype() == d.dtype) return t;
      // Parameters (leaves that require grad) are cast once per guard.
      return cast_to(t, d.dtype, t.requires_grad() && t.is_leaf());
    case CastPolicy::Float32:
      return is_reduced_floating_point(t.dtype()) ? t.to(kFloat32) : t;
    case CastPolicy::Promote:
    case CastPolicy::None: return t;
  }
  return t;
}

int64_t cast_cache_hits() { return state().hits; }
std::size_t cast_cache_size() { return state().cache.size(); }

AutocastDisabled::AutocastDisabled() {
  ThreadState& s = state();
  for (int i = 0; i < kNumDeviceTypes; ++i) {
    prev_[i] = s.device[i].enabled;
    s.device[i].enabled = false;
  }
}
AutocastDisabled::~AutocastDisabled() {
  ThreadState& s = state();
  for (int i = 0; i < kNumDeviceTypes; ++i) s.device[i].enabled = prev_[i];
}

}  // namespace amp

AutocastGuard::AutocastGuard(DeviceType device, DType dtype, bool enabled) : device_(device) {
  TESSERA_CHECK(is_reduced_floating_point(dtype), ValueError, "AutocastGuard: dtype must be float16 or bfloat16, got ",
                dtype_name(dtype));
  auto& s = amp::state();
  auto& d = s.device[int(device)];
  prev_enabled_ = d.enabled;
  prev_dtype_ = d.dtype;
  d.enabled = enabled;
  d.dtype = dtype;
  ++s.depth;
  if (s.depth == 1) s.hits = 0;
}

AutocastGuard::~AutocastGuard() {
  auto& s = amp::state();
  auto& d = s.device[int(device_)];
  d.enabled = prev_enabled_;
  d.dtype = prev_dtype_;
  if (--s.depth == 0) s.cache.clear();
}

}  // namespace tessera
