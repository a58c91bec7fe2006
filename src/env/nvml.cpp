// collect_nvml(): GPU health from NVML through dlopen/dlsym (no NVML header needed); the
// function types follow nvml.h (nvmlReturn_t and the enums are int-sized, nvmlDevice_t an
// opaque pointer).
#include "tessera/env/nvml.hpp"

#include <dlfcn.h>
#include <link.h>

namespace tessera::env {

namespace {

using nvmlDevice_t = void*;
using init_t = int (*)();
using error_string_t = const char* (*)(int);
using driver_version_t = int (*)(char*, unsigned);
using count_t = int (*)(unsigned*);
using handle_t = int (*)(unsigned, nvmlDevice_t*);
using string_t = int (*)(nvmlDevice_t, char*, unsigned);
using two_ints_t = int (*)(nvmlDevice_t, int*, int*);
using one_int_t = int (*)(nvmlDevice_t, int*);
using ecc_count_t = int (*)(nvmlDevice_t, int, int, unsigned long long*);
using remapped_t = int (*)(nvmlDevice_t, unsigned*, unsigned*, unsigned*, unsigned*);
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
using memory_t = int (*)(nvmlDevice_t, nvmlMemory_t*);
using processes_t = int (*)(nvmlDevice_t, unsigned*, void*);
using ull_t = int (*)(nvmlDevice_t, unsigned long long*);

constexpr int NVML_SUCCESS = 0;
constexpr int NVML_ERROR_INSUFFICIENT_SIZE = 7;
constexpr int NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1;
constexpr int NVML_VOLATILE_ECC = 0;

template <typename F>
F sym(void* h, const char* name) {
  return reinterpret_cast<F>(dlsym(h, name));
}

template <typename F>
F sym_any(void* h, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto f = sym<F>(h, n)) return f;
  return nullptr;
}

}  // namespace

std::string describe_clock_events(std::uint64_t reasons) {
  static const std::pair<std::uint64_t, const char*> names[] = {
      {0x1, "GpuIdle"},          {0x2, "ApplicationsClocksSetting"}, {0x4, "SwPowerCap"},
      {0x8, "HwSlowdown"},       {0x10, "SyncBoost"},                {0x20, "SwThermalSlowdown"},
      {0x40, "HwThermalSlowdown"}, {0x80, "HwPowerBrakeSlowdown"},   {0x100, "DisplayClockSetting"}};
  std::string s;
  for (const auto& [bit, name] : names)
    if (reasons & bit) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

Nvml collect_nvml(const std::string& library) {
  Nvml n;
  n.queried = true;
  dlerror();
  void* h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    n.error = e ? e : "cannot open " + library;
    return n;
  }
  struct link_map* lm = nullptr;
  n.path = dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && lm->l_name[0] ? lm->l_name : library;
  auto init = sym_any<init_t>(h, {"nvmlInit_v2", "nvmlInit"});
  auto shutdown = sym<init_t>(h, "nvmlShutdown");
  auto error_string = sym<error_string_t>(h, "nvmlErrorString");
  if (!init) {
    n.error = n.path + " has no nvmlInit_v2";
    return n;
  }
  n.found = true;
  n.init_result = init();
  if (n.init_result != NVML_SUCCESS) {
    const char* e = error_string ? error_string(n.init_result) : nullptr;
    n.init_error = e ? e : "nvmlReturn_t " + std::to_string(n.init_result);
    return n;
  }
  char buf[256] = {0};
  if (auto dv = sym<driver_version_t>(h, "nvmlSystemGetDriverVersion"); dv && dv(buf, sizeof(buf) - 1) == NVML_SUCCESS)
    n.driver_version = buf;
  auto count = sym_any<count_t>(h, {"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"});
  auto handle = sym_any<handle_t>(h, {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"});
  auto name = sym<string_t>(h, "nvmlDeviceGetName");
  auto uuid = sym<string_t>(h, "nvmlDeviceGetUUID");
  auto ecc_mode = sym<two_ints_t>(h, "nvmlDeviceGetEccMode");
  auto ecc_count = sym<ecc_count_t>(h, "nvmlDeviceGetTotalEccErrors");
  auto retired = sym<one_int_t>(h, "nvmlDeviceGetRetiredPagesPendingStatus");
  auto remapped = sym<remapped_t>(h, "nvmlDeviceGetRemappedRows");
  auto mig = sym<two_ints_t>(h, "nvmlDeviceGetMigMode");
  auto compute = sym<one_int_t>(h, "nvmlDeviceGetComputeMode");
  auto persistence = sym<one_int_t>(h, "nvmlDeviceGetPersistenceMode");
  auto memory = sym<memory_t>(h, "nvmlDeviceGetMemoryInfo");
  auto procs = sym_any<processes_t>(h, {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2",
                                        "nvmlDeviceGetComputeRunningProcesses"});
  auto clocks = sym_any<ull_t>(h, {"nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"});
  unsigned devices = 0;
  if (count && handle && count(&devices) == NVML_SUCCESS) {
    for (unsigned i = 0; i < devices && i < 64; ++i) {
      nvmlDevice_t d = nullptr;
      if (handle(i, &d) != NVML_SUCCESS) continue;
      GpuHealth g;
      g.index = static_cast<int>(i);
      char text[256] = {0};
      if (name && name(d, text, sizeof(text) - 1) == NVML_SUCCESS) g.name = text;
      char id[128] = {0};
      if (uuid && uuid(d, id, sizeof(id) - 1) == NVML_SUCCESS) g.uuid = id;
      int a = 0, b = 0;
      if (ecc_mode && ecc_mode(d, &a, &b) == NVML_SUCCESS) g.ecc_current = a, g.ecc_pending = b;
      unsigned long long errors = 0;
      if (ecc_count && ecc_count(d, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, &errors) == NVML_SUCCESS)
        g.ecc_uncorrected_volatile = static_cast<long long>(errors);
      if (retired && retired(d, &a) == NVML_SUCCESS) g.retired_pages_pending = a;
      unsigned corr = 0, unc = 0, pending = 0, failed = 0;
      if (remapped && remapped(d, &corr, &unc, &pending, &failed) == NVML_SUCCESS)
        g.remapped_rows_pending = static_cast<int>(pending), g.remapping_failed = static_cast<int>(failed);
      if (mig && mig(d, &a, &b) == NVML_SUCCESS) g.mig_current = a, g.mig_pending = b;
      if (compute && compute(d, &a) == NVML_SUCCESS) g.compute_mode = a;
      if (persistence && persistence(d, &a) == NVML_SUCCESS) g.persistence = a;
      nvmlMemory_t m{};
      if (memory && memory(d, &m) == NVML_SUCCESS) g.memory_known = true, g.memory_total = m.total, g.memory_used = m.used;
      // Asked with no room: NVML answers with the count (INSUFFICIENT_SIZE) or SUCCESS for none,
      // which keeps us clear of the versioned nvmlProcessInfo_t layouts.
      unsigned nproc = 0;
      if (procs) {
        const int rc = procs(d, &nproc, nullptr);
        if (rc == NVML_SUCCESS || rc == NVML_ERROR_INSUFFICIENT_SIZE) g.processes = static_cast<int>(nproc);
      }
      unsigned long long reasons = 0;
      if (clocks && clocks(d, &reasons) == NVML_SUCCESS) g.clock_events_known = true, g.clock_event_reasons = reasons;
      n.gpus.push_back(g);
    }
  }
  if (shutdown) shutdown();
  return n;
}

}  // namespace tessera::env
