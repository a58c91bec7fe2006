// DLPack against a real peer: libtorch (Debian libtorch-dev 1.13, CPU). Memory is shared in
// both directions (same data pointer, writes visible both ways) and lifetimes are right
// (ASan: no use after free, the producer's memory freed once the last user is gone).
#include <ATen/DLConvertor.h>
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "tessera/interop/dlpack.hpp"
#include "tessera/ops.hpp"

namespace {
int failures = 0;
void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  }
}
}  // namespace

int main() {
  // Tessera -> libtorch: a strided view, float32.
  {
    tessera::Tensor base = tessera::randn({4, 6});
    tessera::Tensor v = base.t().slice(0, 1, 6, 2);  // [3, 4], strides {1, 6}
    torch::Tensor t = at::fromDLPack(tessera::to_dlpack(v));
    check(t.data_ptr() == v.raw_data(), "tessera -> torch: same data pointer");
    check(t.sizes() == c10::IntArrayRef({3, 4}), "tessera -> torch: shape");
    check(t.strides() == c10::IntArrayRef({v.stride(0), v.stride(1)}), "tessera -> torch: strides");
    const double sum_t = t.sum().item<double>();
    const double sum_v = v.sum().item<double>();
    check(std::abs(sum_t - sum_v) < 1e-4, "tessera -> torch: same values");
    t.mul_(2.0);  // a write through torch is visible in Tessera
    check(std::abs(v.sum().item<double>() - 2 * sum_v) < 1e-4, "tessera -> torch: torch's write visible");
    v.fill_(1.0);  // and the other way
    check(t.sum().item<double>() == 12.0, "tessera -> torch: tessera's write visible");
    base = tessera::Tensor();
    v = tessera::Tensor();
    check(t.sum().item<double>() == 12.0, "tessera -> torch: memory alive after Tessera's handles are gone");
  }
  // libtorch -> Tessera: every dtype both speak.
  for (auto st : {torch::kUInt8, torch::kInt32, torch::kInt64, torch::kFloat32, torch::kFloat64}) {
    torch::Tensor t = torch::arange(24, torch::TensorOptions().dtype(st)).reshape({2, 3, 4}).permute({2, 0, 1});
    auto* weak = t.unsafeGetTensorImpl();
    tessera::Tensor x = tessera::from_dlpack(at::toDLPack(t));
    const std::string name = c10::toString(st);
    check(x.raw_data() == t.data_ptr(), "torch -> tessera " + name + ": same data pointer");
    check(x.shape() == tessera::Shape{4, 2, 3}, "torch -> tessera " + name + ": shape");
    check(x.strides() == tessera::Strides{1, 12, 4}, "torch -> tessera " + name + ": strides");
    check(x.sum().item<double>() == 276.0, "torch -> tessera " + name + ": values");
    x.fill_(3);
    check(t.sum().item<double>() == 72.0, "torch -> tessera " + name + ": tessera's write visible");
    t = torch::Tensor();  // Tessera's tensor keeps torch's storage alive through the deleter
    check(x.sum().item<double>() == 72.0, "torch -> tessera " + name + ": memory alive after torch's handle is gone");
    (void)weak;
  }
  // libtorch refuses bool (DLPack 0.6 has no bool code); Tessera exports it as code 6 (kDLBool
  // of DLPack >= 0.8), which libtorch 1.13 does not know: it must refuse, not misread it.
  {
    DLManagedTensor* m = tessera::to_dlpack(tessera::ones({3}, tessera::kBool));
    bool refused = false;
    try {
      at::fromDLPack(m);
    } catch (const c10::Error&) {
      refused = true;
    }
    check(refused, "torch refuses Tessera's bool export (code 6)");
    m->deleter(m);
  }
  if (failures) return 1;
  std::printf("dlpack <-> libtorch %d.%d: all checks passed\n", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR);
  return 0;
}
