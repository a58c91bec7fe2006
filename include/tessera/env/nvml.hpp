// GPU health through NVML (libnvidia-ml.so.1, opened with dlopen as the other libraries
// are): ECC errors and pending retirements, MIG mode, compute mode, persistence mode, memory
// other processes hold, clock throttling. Part of the env report.
//
// NVML's numbering (nvml.h): compute mode 0 Default, 1 Exclusive_Thread, 2 Prohibited,
// 3 Exclusive_Process; clock event reasons are nvmlClocksEventReason* bit masks. NVML's
// device indices follow PCI order and can differ from CUDA's (CUDA_DEVICE_ORDER, CUDA_VISIBLE_DEVICES).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::env {

/// One GPU as NVML reports it; -1 (or *_known false) where NVML does not support the query.
struct GpuHealth {
  int index = 0;                          ///< NVML index
  std::string name;
  std::string uuid;                       ///< "GPU-...", what CUDA_VISIBLE_DEVICES also accepts
  int ecc_current = -1, ecc_pending = -1; ///< ECC mode: 1 on, 0 off
  long long ecc_uncorrected_volatile = -1;///< uncorrectable ECC errors since the driver loaded
  int retired_pages_pending = -1;         ///< 1: pages wait for retirement at the next reset/reboot
  int remapped_rows_pending = -1;         ///< 1: row remapping waits for a GPU reset (Ampere and later)
  int remapping_failed = -1;              ///< 1: a row remapping failed
  int mig_current = -1, mig_pending = -1; ///< MIG mode: 1 on, 0 off
  int compute_mode = -1;                  ///< 0 Default, 1 Exclusive_Thread, 2 Prohibited, 3 Exclusive_Process
  int persistence = -1;                   ///< persistence mode: 1 on, 0 off
  bool memory_known = false;
  std::uint64_t memory_total = 0, memory_used = 0;  ///< bytes
  int processes = -1;                     ///< compute processes running on it
  bool clock_events_known = false;
  std::uint64_t clock_event_reasons = 0;  ///< nvmlClocksEventReason* bits now active
};

/// What NVML said, or why it could not be asked.
struct Nvml {
  bool queried = false;           ///< collect() tried (CollectOptions::nvml)
  bool found = false;             ///< the library loaded and has nvmlInit_v2
  std::string path;               ///< as opened
  std::string error;              ///< why it is not usable
  int init_result = -1;           ///< nvmlInit_v2's nvmlReturn_t; 0 success, -1 not called
  std::string init_error;         ///< nvmlErrorString(init_result), e.g. "Driver/library version mismatch"
  std::string driver_version;     ///< nvmlSystemGetDriverVersion, e.g. "570.124.06"
  std::vector<GpuHealth> gpus;
};

/// Opens `library` with dlopen (kept open), calls nvmlInit_v2, reads every device, calls
/// nvmlShutdown. Never throws; a missing library or symbol is recorded in the result.
Nvml collect_nvml(const std::string& library = "libnvidia-ml.so.1");

/// "HwSlowdown, SwThermalSlowdown" for a clock event reason mask ("" for none).
std::string describe_clock_events(std::uint64_t reasons);

/// Clock event reasons that slow a GPU down for a reason a user should hear about: hardware
/// slowdown, software and hardware thermal slowdown, power brake.
constexpr std::uint64_t kClockEventsSurprising = 0x8 | 0x20 | 0x40 | 0x80;

}  // namespace tessera::env
