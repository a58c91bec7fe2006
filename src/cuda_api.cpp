// tessera::cuda public functions (include/tessera/cuda.hpp), compiled in every build. In a
// CUDA build they reach the backend in kernels/ through detail::Control; otherwise they
// report that CUDA was not built.
#include "tessera/cuda.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <sstream>

#include "tessera/build_config.hpp"
#include "tessera/env/report.hpp"

#if TESSERA_WITH_CUDA_BUILD
#include "../kernels/cuda_control.hpp"
#endif

namespace tessera::cuda {

namespace {
std::atomic<bool> g_allow_tf32_matmul{false};
std::atomic<bool> g_allow_tf32_cudnn{false};
std::atomic<int> g_gemm_impl{static_cast<int>(GemmImpl::Cublas)};

std::string version_str(int v) {
  // CUDA encodes versions as 1000 * major + 10 * minor.
  std::ostringstream os;
  os << v / 1000 << "." << (v % 1000) / 10;
  return os.str();
}

struct ArchEntry {
  int cc = 0;       // major * 10 + minor
  bool sass = false;
  bool ptx = false;
  bool any = false; // "native", "all", "all-major": assume covered
};

std::vector<ArchEntry> parse_architectures(const std::string& archs) {
  std::vector<ArchEntry> out;
  std::string item;
  auto flush = [&]() {
    // trim
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    std::string s = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    item.clear();
    if (s.empty()) return;
    ArchEntry a;
    if (s == "native" || s == "all" || s == "all-major") {
      a.any = true;
      out.push_back(a);
      return;
    }
    std::string num = s, suffix;
    auto dash = s.find('-');
    if (dash != std::string::npos) {
      num = s.substr(0, dash);
      suffix = s.substr(dash + 1);
    }
    // Strip an arch-specific letter ("90a", "100f"): such code runs only on that exact cc.
    while (!num.empty() && !std::isdigit(static_cast<unsigned char>(num.back()))) num.pop_back();
    if (num.empty()) return;
    a.cc = std::atoi(num.c_str());
    a.sass = suffix.empty() || suffix == "real";
    a.ptx = suffix.empty() || suffix == "virtual";
    out.push_back(a);
  };
  for (char c : archs) {
    if (c == ',' || c == ';') flush();
    else item += c;
  }
  flush();
  return out;
}
}  // namespace

bool env_flag_true(const char* value) {
  if (value == nullptr) return false;
  std::string v(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

bool arch_covered(int cc_major, int cc_minor, const std::string& architectures) {
  const int cc = cc_major * 10 + cc_minor;
  for (const ArchEntry& a : parse_architectures(architectures)) {
    if (a.any) return true;
    if (a.sass && a.cc / 10 == cc_major && a.cc % 10 <= cc_minor) return true;
    if (a.ptx && a.cc <= cc) return true;
  }
  return false;
}

std::string availability_reason(const AvailabilityProbe& p) {
  if (!p.built)
    return "Tessera was built without the CUDA backend (configure with -DTESSERA_CUDA=ON and a CUDA toolkit)";
  if (p.disabled_by_env) return "CUDA disabled by the environment variable TESSERA_DISABLE_CUDA";
  if (p.driver_version == 0)
    return "no NVIDIA driver found (libcuda.so could not be loaded); the CUDA runtime is " +
           version_str(p.runtime_version);
  // CUDA minor-version compatibility: a driver of the same major version runs a newer-minor
  // runtime; cudaGetDeviceCount reports cudaErrorInsufficientDriver (35) when it cannot.
  if (p.count_error == 35 || p.driver_version / 1000 < p.runtime_version / 1000)
    return "the NVIDIA driver supports CUDA " + version_str(p.driver_version) +
           " but Tessera's CUDA runtime is " + version_str(p.runtime_version) + "; update the driver";
  if (p.count_error == 100 || (p.count_error == 0 && p.device_count == 0))
    return "no CUDA device found (driver supports CUDA " + version_str(p.driver_version) +
           "; check CUDA_VISIBLE_DEVICES)";
  if (p.count_error != 0)
    return "cudaGetDeviceCount failed with error " + std::to_string(p.count_error) + ": " +
           p.count_error_text;
  bool any_ok = false;
  std::ostringstream seen;
  for (std::size_t i = 0; i < p.devices.size(); ++i) {
    const DeviceInfo& d = p.devices[i];
    if (d.kernel_image_ok) any_ok = true;
    seen << (i ? ", " : "") << "cuda:" << i << " " << d.name << " (sm_" << d.cc_major << d.cc_minor << ")";
  }
  if (!any_ok)
    return "no CUDA device has an architecture this build covers: devices " + seen.str() +
           "; compiled for " + p.compiled_architectures + " (rebuild with -DCMAKE_CUDA_ARCHITECTURES)";
  return "";
}

bool is_built() { return TESSERA_WITH_CUDA_BUILD != 0; }

#if TESSERA_WITH_CUDA_BUILD

namespace {
/// The one availability decision. First tessera-env's verdict on this process's report
/// (driver, runtime, cuBLAS/cuDNN versions, architectures, TESSERA_DISABLE_CUDA), so that
/// `tessera-env` and the backend never disagree; then the CUDA runtime's own answer
/// (cudaGetDeviceCount, a kernel image per device), which catches what dlopen cannot see.
const std::string& decided_reason() {
  static const std::string reason = [] {
#if TESSERA_CUDA_EMULATED
    // The emulator (tests/cuda_emu) stands in for the driver and the libraries, which
    // tessera-env would find missing: only its own probe decides.
    return availability_reason(detail::cuda_control().probe());
#else
    std::string why = env::cuda_unavailable_reason(env::process_report());
    if (!why.empty()) return why;
    return availability_reason(detail::cuda_control().probe());
#endif
  }();
  return reason;
}
}  // namespace

bool is_available() { return decided_reason().empty(); }
std::string unavailable_reason() { return decided_reason(); }
int device_count() {
  return is_available() ? detail::cuda_control().probe().device_count : 0;
}
void synchronize(int device) {
  if (is_available()) detail::cuda_control().synchronize(device);
}
MemoryStats memory_stats(int device) {
  return is_available() ? detail::cuda_control().memory_stats(device) : MemoryStats{};
}
void reset_peak_memory_stats(int device) {
  if (is_available()) detail::cuda_control().reset_peak_memory_stats(device);
}
void empty_cache() {
  if (is_available()) detail::cuda_control().empty_cache();
}
RuntimeInfo runtime_info() { return detail::cuda_control().runtime_info(); }

#else

bool is_available() { return false; }
std::string unavailable_reason() {
  std::string why = env::cuda_unavailable_reason(env::process_report());
  return why.empty() ? availability_reason(AvailabilityProbe{}) : why;
}
int device_count() { return 0; }
void synchronize(int) {}
MemoryStats memory_stats(int) { return {}; }
void reset_peak_memory_stats(int) {}
void empty_cache() {}
RuntimeInfo runtime_info() { return {}; }

#endif

void set_allow_tf32_matmul(bool allow) { g_allow_tf32_matmul.store(allow); }
bool allow_tf32_matmul() { return g_allow_tf32_matmul.load(); }
void set_allow_tf32_cudnn(bool allow) { g_allow_tf32_cudnn.store(allow); }
bool allow_tf32_cudnn() { return g_allow_tf32_cudnn.load(); }
void set_allow_tf32(bool allow) {
  set_allow_tf32_matmul(allow);
  set_allow_tf32_cudnn(allow);
}
bool allow_tf32() { return allow_tf32_matmul() && allow_tf32_cudnn(); }
void set_gemm_impl(GemmImpl impl) { g_gemm_impl.store(static_cast<int>(impl)); }
GemmImpl gemm_impl() { return static_cast<GemmImpl>(g_gemm_impl.load()); }

}  // namespace tessera::cuda
