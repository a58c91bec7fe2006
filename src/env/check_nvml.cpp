// The nvml.* checks: GPU state that surprises users (ECC, MIG, compute mode, persistence,
// memory others hold, throttling), from what NVML reported.
#include "check_stack.hpp"

#include <cstdio>

namespace tessera::env::detail {

namespace {

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

const char* compute_mode_name(int m) {
  switch (m) {
    case 0: return "Default";
    case 1: return "Exclusive_Thread";
    case 2: return "Prohibited";
    case 3: return "Exclusive_Process";
  }
  return "unknown";
}

}  // namespace

void check_nvml(const Report& r, const AddCheck& add) {
  const Nvml& n = r.nvml;
  if (!n.found) return;  // no NVML: the driver check already says why
  if (n.init_result != 0) {
    const bool mismatch = n.init_result == 18;  // NVML_ERROR_LIB_RM_VERSION_MISMATCH
    add("nvml", mismatch ? Status::FAIL : Status::WARN,
        "NVML at " + n.path + " failed to initialise: " + n.init_error +
            (mismatch ? " (the user-space driver libraries and the loaded kernel module are different versions: the "
                        "driver was updated and the old module is still loaded)"
                      : std::string()),
        mismatch ? "reboot, or unload and reload the nvidia kernel modules (rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia; modprobe nvidia)"
                 : "check `nvidia-smi` and `dmesg`",
        true);
    return;
  }
  add("nvml", Status::OK,
      "NVML " + (n.driver_version.empty() ? std::string() : "(driver " + n.driver_version + ") ") + "reports " +
          std::to_string(n.gpus.size()) + " GPU(s)",
      "", false);
  for (const auto& g : n.gpus) {
    const std::string base = "nvml." + std::to_string(g.index);
    const std::string who = "GPU " + std::to_string(g.index) + " " + g.name;
    int problems = 0;
    auto warn = [&](const std::string& aspect, Status s, const std::string& reason, const std::string& fix) {
      ++problems;
      add(base + "." + aspect, s, who + ": " + reason, fix, true);
    };
    // ECC
    std::string ecc;
    if (g.ecc_uncorrected_volatile > 0)
      ecc += std::to_string(g.ecc_uncorrected_volatile) +
             " uncorrectable ECC error(s) since the driver loaded; CUDA calls on it can fail with \"uncorrectable ECC "
             "error encountered\" (cudaErrorECCUncorrectable)";
    if (g.retired_pages_pending == 1) ecc += std::string(ecc.empty() ? "" : "; ") + "memory pages wait for retirement";
    if (g.remapped_rows_pending == 1) ecc += std::string(ecc.empty() ? "" : "; ") + "memory rows wait for remapping";
    if (g.remapping_failed == 1) ecc += std::string(ecc.empty() ? "" : "; ") + "a row remapping FAILED (the GPU needs service)";
    if (g.ecc_current >= 0 && g.ecc_pending >= 0 && g.ecc_current != g.ecc_pending)
      ecc += std::string(ecc.empty() ? "" : "; ") + "ECC mode changes from " + (g.ecc_current ? "on" : "off") + " to " +
             (g.ecc_pending ? "on" : "off") + " at the next reboot (memory size changes with it)";
    if (!ecc.empty())
      warn("ecc", Status::WARN, ecc,
           g.remapping_failed == 1 ? "drain the GPU and contact the vendor (RMA)"
                                   : "stop the processes on it and reset it (nvidia-smi -r -i " + std::to_string(g.index) +
                                         ") or reboot, so the pending retirements take effect");
    // MIG
    if (g.mig_current == 1)
      warn("mig", Status::WARN,
           "MIG mode is on: CUDA sees only the MIG instances it is given (CUDA_VISIBLE_DEVICES=MIG-<uuid>), each with a "
           "slice of the memory and SMs, and none at all when no instance is created",
           "create instances (nvidia-smi mig -cgi ... -C) and list them in CUDA_VISIBLE_DEVICES, or turn MIG off "
           "(nvidia-smi -i " + std::to_string(g.index) + " -mig 0, then reset the GPU)");
    else if (g.mig_current == 0 && g.mig_pending == 1)
      warn("mig", Status::WARN, "MIG mode turns on at the next GPU reset", "reset the GPU when intended, or cancel with nvidia-smi -i " + std::to_string(g.index) + " -mig 0");
    // compute mode
    if (g.compute_mode == 2)
      warn("compute_mode", Status::FAIL,
           "compute mode is Prohibited: no process can create a CUDA context on it (\"all CUDA-capable devices are "
           "busy or unavailable\", cudaErrorDevicesUnavailable)",
           "sudo nvidia-smi -i " + std::to_string(g.index) + " -c DEFAULT, or use another GPU (CUDA_VISIBLE_DEVICES)");
    else if (g.compute_mode == 1 || g.compute_mode == 3)
      warn("compute_mode", Status::WARN,
           std::string("compute mode is ") + compute_mode_name(g.compute_mode) +
               ": one process at a time; a second one fails with \"all CUDA-capable devices are busy or unavailable\" "
               "(cudaErrorDevicesUnavailable)",
           "sudo nvidia-smi -i " + std::to_string(g.index) + " -c DEFAULT to share it, or run one job per GPU");
    // persistence
    if (g.persistence == 0)
      warn("persistence", Status::WARN,
           "persistence mode is off: the driver tears the GPU's state down whenever no process uses it, so every "
           "program's first CUDA call re-initialises it (up to seconds per GPU)",
           "run nvidia-persistenced (or sudo nvidia-smi -pm 1)");
    // memory held by others
    if (g.memory_known && g.memory_total > 0) {
      const bool others = g.processes > 0 && g.memory_used >= (1ull << 30);
      const bool half = g.memory_used * 2 > g.memory_total;
      if (others || half)
        warn("memory", Status::WARN,
             gib(g.memory_used) + " of " + gib(g.memory_total) + " already in use" +
                 (g.processes >= 0 ? " by " + std::to_string(g.processes) + " process(es)" : std::string()) +
                 ": what a new program can allocate is " + gib(g.memory_total - g.memory_used) +
                 ", and it runs out of memory (CUDA out of memory) sooner than the GPU's size says",
             "see who holds it (nvidia-smi --query-compute-apps=pid,used_memory --format=csv) and stop them, or use "
             "another GPU (CUDA_VISIBLE_DEVICES)");
    }
    // clocks
    if (g.clock_events_known && (g.clock_event_reasons & kClockEventsSurprising))
      warn("clocks", Status::WARN,
           "clocks are held down: " + describe_clock_events(g.clock_event_reasons & kClockEventsSurprising) +
               " (runs are slower than the GPU's rating)",
           "check cooling and power (nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER)");
    if (problems == 0) {
      std::string state;
      auto part = [&](const std::string& s) { state += (state.empty() ? "" : "; ") + s; };
      if (g.ecc_current >= 0) part(std::string("ECC ") + (g.ecc_current ? "on" : "off") + (g.ecc_uncorrected_volatile == 0 ? ", no uncorrectable errors" : ""));
      if (g.mig_current >= 0) part(std::string("MIG ") + (g.mig_current ? "on" : "off"));
      if (g.compute_mode >= 0) part(std::string("compute mode ") + compute_mode_name(g.compute_mode));
      if (g.persistence >= 0) part(std::string("persistence ") + (g.persistence ? "on" : "off"));
      if (g.memory_known)
        part(gib(g.memory_used) + " of " + gib(g.memory_total) + " in use" +
             (g.processes >= 0 ? " by " + std::to_string(g.processes) + " process(es)" : std::string()));
      if (g.clock_events_known)
        part(g.clock_event_reasons ? "clock events: " + describe_clock_events(g.clock_event_reasons) : "no clock slowdown");
      add(base, Status::OK, who + ": " + (state.empty() ? std::string("no health data") : state), "", false);
    }
  }
}

}  // namespace tessera::env::detail
