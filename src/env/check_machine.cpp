// The checks beyond Tessera's own chain, pure functions of the report (called by check() in
// check.cpp): python.<env>.* (each Python environment's wheels judged against each other and
// the driver), shadow.* and python.<env>.shadow.* (which copy of a CUDA library a process
// loads, and whether an earlier copy hides a newer one or the environment's own wheel), and
// nvml.* (GPU state that surprises users). One file so that the headers are compiled once.
#include "check_stack.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace tessera::env::detail {

// ---- Python environments ------------------------------------------------------------

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

/// "torch 2.5.1+cu124", "nvidia-cudnn-cu12 9.1.0.70".
std::string label(const Distribution& d) { return d.name + " " + d.version; }

bool is_framework(const Distribution& d) {
  return d.name == "torch" || starts_with(d.name, "tensorflow") || d.name == "tf-nightly" ||
         starts_with(d.name, "jax-cuda") || starts_with(d.name, "cupy-cuda") || d.name == "onnxruntime-gpu";
}

/// The CUDA major an environment's torch was built for: version.py's cuda, else +cuXYZ.
int torch_cuda_major(const PythonEnv& e, const Distribution& torch) {
  if (!e.torch_cuda.empty()) return Version::parse(e.torch_cuda).major;
  return distribution_cuda_major(torch);
}

/// The cuDNN major a distribution or bundled library stands for.
struct CudnnProvider {
  std::string what;  // "nvidia-cudnn-cu12 9.1.0.70", "torch/lib/libcudnn.so.8 (bundled with torch)"
  int major = -1;
};

std::vector<CudnnProvider> cudnn_providers(const PythonEnv& e) {
  std::vector<CudnnProvider> out;
  for (const auto& d : e.distributions) {
    if (starts_with(d.name, "nvidia-cudnn")) {
      out.push_back({label(d), Version::parse(d.version).major});
    } else if (!starts_with(d.name, "nvidia-")) {
      // A framework wheel that bundles libcudnn.so.N itself (torch < 1.13 did).
      for (const auto& lib : d.libraries) {
        const std::string file = lib.substr(lib.rfind('/') + 1);
        if (starts_with(file, "libcudnn.so.")) out.push_back({file + " (bundled with " + label(d) + ")", std::atoi(file.c_str() + 12)});
      }
    }
  }
  return out;
}

void check_wheels(const PythonEnv& e, const std::string& prefix, const AddCheck& add) {
  struct Claim {
    std::string what;
    int major;
    bool framework;
  };
  std::vector<Claim> claims;
  for (const auto& d : e.distributions) {
    const int m = d.name == "torch" ? torch_cuda_major(e, d) : distribution_cuda_major(d);
    if (m > 0) claims.push_back({label(d) + " (CUDA " + std::to_string(m) + ")", m, is_framework(d)});
  }
  std::vector<std::string> problems_fail, problems_warn, fixes;
  std::map<int, std::vector<std::string>> by_major;
  for (const auto& c : claims) by_major[c.major].push_back(c.what);
  if (by_major.size() > 1) {
    // The frameworks' major decides which wheels are the odd ones; without a framework, the majority.
    int keep = -1;
    for (const auto& c : claims)
      if (c.framework) {
        keep = c.major;
        break;
      }
    if (keep < 0) {
      size_t best = 0;
      for (const auto& [m, v] : by_major)
        if (v.size() > best) best = v.size(), keep = m;
    }
    std::vector<std::string> parts, odd;
    for (const auto& [m, v] : by_major) parts.push_back("CUDA " + std::to_string(m) + ": " + join(v));
    for (const auto& d : e.distributions) {
      const int m = d.name == "torch" ? torch_cuda_major(e, d) : distribution_cuda_major(d);
      if (m > 0 && m != keep) odd.push_back(d.name);
    }
    problems_fail.push_back("GPU packages built for different CUDA major versions (" + join(parts, "; ") + ")");
    fixes.push_back("keep one CUDA major: pip uninstall " + join(odd, " ") + ", then install the CUDA " +
                    std::to_string(keep) + " builds (the -cu" + std::to_string(keep) +
                    " wheels; from CUDA 13 on the toolkit wheels carry no suffix)");
  }
  // Installed wheels against the pins of the packages that require them.
  for (const auto& d : e.distributions) {
    for (const auto& req : d.requires_nvidia) {
      if (req.version.empty()) continue;
      const Distribution* have = e.find(req.name);
      if (!have) continue;
      if (have->version == req.version) continue;
      const Version want = Version::parse(req.version), got = Version::parse(have->version);
      const std::string text = label(d) + " pins " + req.name + "==" + req.version + ", installed " + have->version;
      if (want.known() && got.known() && want.major != got.major) {
        problems_fail.push_back(text + " (different major)");
        fixes.push_back("pip install " + req.name + "==" + req.version);
      } else {
        problems_warn.push_back(text);
        if (fixes.empty()) fixes.push_back("pip install " + req.name + "==" + req.version + " (`pip check` lists every such pin)");
      }
    }
  }
  if (claims.empty() && problems_warn.empty()) return;
  if (!problems_fail.empty()) {
    problems_fail.insert(problems_fail.end(), problems_warn.begin(), problems_warn.end());
    add(prefix + "wheels", Status::FAIL, e.label + ": " + join(problems_fail, "; "), join(fixes, "; "), false);
  } else if (!problems_warn.empty()) {
    add(prefix + "wheels", Status::WARN, e.label + ": " + join(problems_warn, "; ") + " (it may run, untested by its makers)",
        join(fixes, "; "), false);
  } else {
    add(prefix + "wheels", Status::OK,
        e.label + ": CUDA " + std::to_string(claims.front().major) + " throughout (" + std::to_string(claims.size()) +
            " GPU packages)",
        "", false);
  }
}

void check_cudnn(const PythonEnv& e, const std::string& prefix, const AddCheck& add) {
  const auto providers = cudnn_providers(e);
  const Distribution* torch = e.find("torch");
  const Requirement* pin = nullptr;
  if (torch)
    for (const auto& r : torch->requires_nvidia)
      if (starts_with(r.name, "nvidia-cudnn") && !r.version.empty()) pin = &r;
  if (providers.empty() && !pin) return;

  std::set<int> majors;
  std::vector<std::string> all;
  for (const auto& p : providers) {
    if (p.major > 0) majors.insert(p.major);
    all.push_back(p.what);
  }
  if (majors.size() > 1) {
    add(prefix + "cudnn", Status::FAIL,
        e.label + ": two cuDNN majors in one environment (" + join(all) +
            "): a process loads one libcudnn.so.N and the other's sub-libraries, which fails with a missing "
            "libcudnn_*.so or a symbol version error",
        "pip uninstall the cuDNN that the framework does not need" +
            (pin ? " (torch needs " + pin->name + "==" + pin->version + ")" : std::string()),
        false);
    return;
  }
  // Two cuDNN wheels for different CUDA majors install into the same nvidia/cudnn/lib.
  std::vector<const Distribution*> cudnn_wheels;
  for (const auto& d : e.distributions)
    if (starts_with(d.name, "nvidia-cudnn")) cudnn_wheels.push_back(&d);
  if (cudnn_wheels.size() > 1) {
    std::vector<std::string> names;
    for (const auto* d : cudnn_wheels) names.push_back(label(*d));
    std::set<std::string> files;
    std::string shared;
    for (const auto* d : cudnn_wheels)
      for (const auto& f : d->libraries)
        if (!files.insert(f).second && shared.empty()) shared = f;
    add(prefix + "cudnn", Status::FAIL,
        e.label + ": " + std::to_string(cudnn_wheels.size()) + " cuDNN wheels (" + join(names) + ")" +
            (shared.empty() ? std::string() : " install the same files (" + shared + "): the last one installed won"),
        "pip uninstall " + join([&] {
          std::vector<std::string> n;
          for (const auto* d : cudnn_wheels) n.push_back(d->name);
          return n;
        }(), " ") + ", then reinstall only the one the framework pins" +
            (pin ? " (" + pin->name + "==" + pin->version + ")" : std::string()),
        false);
    return;
  }
  if (pin) {
    const Version want = Version::parse(pin->version);
    const Distribution* have = e.find(pin->name);
    if (!have) {
      const bool bundled = !providers.empty();
      add(prefix + "cudnn", bundled ? Status::WARN : Status::FAIL,
          e.label + ": " + label(*torch) + " needs " + pin->name + "==" + pin->version + ", which is not installed" +
              (bundled ? " (found instead: " + join(all) + ")" : std::string()),
          "pip install " + pin->name + "==" + pin->version, false);
      return;
    }
    const Version got = Version::parse(have->version);
    if (want.known() && got.known() && (got.major != want.major || got.minor < want.minor)) {
      add(prefix + "cudnn", Status::FAIL,
          e.label + ": " + label(*torch) + " was built with cuDNN " + want.str() + ", installed " + label(*have) +
              (got.major != want.major ? ": a different major" : ": an older minor") +
              " (cuDNN needs the same major and a minor not older)",
          "pip install " + pin->name + "==" + pin->version, false);
      return;
    }
    add(prefix + "cudnn", Status::OK,
        e.label + ": " + label(*have) + " satisfies " + label(*torch) + " (built with cuDNN " + want.str() + ")", "",
        false);
    return;
  }
  add(prefix + "cudnn", Status::OK, e.label + ": one cuDNN (" + join(all) + ")", "", false);
}

void check_driver(const Report& r, const PythonEnv& e, const std::string& prefix, const AddCheck& add) {
  // The runtime the environment loads: its CUDA runtime wheel, else what torch was built with.
  Version runtime;
  std::string what;
  for (const auto& d : e.distributions)
    if (starts_with(d.name, "nvidia-cuda-runtime")) {
      const Version v = Version::parse(d.version);
      runtime = Version(v.major, v.minor);
      what = label(d);
    }
  const Distribution* torch = e.find("torch");
  if (!runtime.known() && torch && !e.torch_cuda.empty()) {
    runtime = Version::parse(e.torch_cuda);
    what = label(*torch) + " (built with CUDA " + runtime.str() + ")";
  }
  if (!runtime.known()) return;
  const Library& drv = r.driver.library;
  if (!drv.found || !drv.version.known()) {
    add(prefix + "driver", Status::WARN,
        e.label + ": " + what + " needs an NVIDIA driver for CUDA " + runtime.str() + "; there is none (" +
            (drv.error.empty() ? std::string("libcuda.so.1 not found") : drv.error) + "), so it runs on the CPU only",
        driver_fix(runtime), false);
    return;
  }
  const Version d(drv.version.major, drv.version.minor);
  Verdict v = judge_driver(d, runtime, e.label + ": driver supports CUDA " + d.str() + ", " + what);
  if (v.status != Status::OK) {
    std::string digits = std::to_string(d.major) + std::to_string(d.minor);
    v.fix += ", or install the environment's framework built for CUDA " + d.str() + " or older (PyTorch: pip install "
             "torch --index-url https://download.pytorch.org/whl/cu" + digits + ")";
  }
  add(prefix + "driver", v.status, v.reason, v.fix, false);
}

}  // namespace

void check_python_envs(const Report& r, const AddCheck& add) {
  for (const auto& e : r.python_envs) {
    if (e.distributions.empty()) continue;
    const std::string prefix = "python." + e.label + ".";
    check_wheels(e, prefix, add);
    check_cudnn(e, prefix, add);
    check_driver(r, e, prefix, add);
  }
}

// ---- copies on the loader's path -----------------------------------------------------

namespace {

std::string describe(const LibraryCopy& c) {
  std::string s = c.paths.empty() ? c.resolved_path : c.paths.front();
  if (!c.resolved_path.empty() && c.resolved_path != s) s += " -> " + c.resolved_path;
  s += " (" + (c.version.empty() ? std::string("version unknown") : c.version) + ")";
  return s;
}

/// Both versions known to at least major.minor, and a older than b at the precision both
/// have: cudaRuntimeGetVersion's "12.4" is not older than the wheel's "12.4.127".
bool older(const LibraryCopy& a, const LibraryCopy& b) {
  if (a.version.empty() || b.version.empty()) return false;
  Version va = Version::parse(a.version), vb = Version::parse(b.version);
  if (!va.known() || !vb.known()) return false;
  if (va.patch < 0 || vb.patch < 0) va.patch = vb.patch = -1;
  return va < vb;
}

std::string folder(const std::string& p) { return p.substr(0, p.rfind('/')); }

}  // namespace

void check_loader(const Report& r, const AddCheck& add) {
  const LoaderReport& L = r.loader;
  for (const auto& proc : L.processes) {
    const bool python = proc.process.rfind("python:", 0) == 0;
    std::vector<std::string> files;
    for (const auto& c : L.copies) {
      if (python && std::find(proc.own.begin(), proc.own.end(), c.resolved_path) == proc.own.end()) continue;
      if (std::find(files.begin(), files.end(), c.file) == files.end()) files.push_back(c.file);
    }
    for (const auto& file : files) {
      std::vector<int> same;
      for (size_t i = 0; i < L.copies.size(); ++i)
        if (L.copies[i].file == file) same.push_back(static_cast<int>(i));
      if (same.size() < 2) continue;
      const auto [w, via] = resolve(L, proc, file);
      if (w < 0) continue;
      const LibraryCopy& win = L.copies[static_cast<size_t>(w)];
      std::vector<std::string> others;
      const LibraryCopy* newer = nullptr;
      for (int i : same) {
        if (i == w) continue;
        const LibraryCopy& c = L.copies[static_cast<size_t>(i)];
        others.push_back(describe(c));
        if (older(win, c) && (!newer || older(*newer, c))) newer = &c;
      }
      std::string list;
      for (const auto& o : others) list += (list.empty() ? "" : ", ") + o;
      if (python) {
        const std::string env = proc.process.substr(7);
        const std::string name = "python." + env + ".shadow." + file;
        const bool own = std::find(proc.own.begin(), proc.own.end(), win.resolved_path) != proc.own.end();
        if (own) {
          add(name, Status::OK, env + ": loads its own wheel's " + describe(win) + "; other copies: " + list, "", false);
        } else {
          const LibraryCopy* mine = nullptr;
          for (int i : same)
            if (std::find(proc.own.begin(), proc.own.end(), L.copies[static_cast<size_t>(i)].resolved_path) != proc.own.end())
              mine = &L.copies[static_cast<size_t>(i)];
          add(name, Status::WARN,
              env + ": " + via + "'s " + describe(win) + " shadows the environment's own " +
                  (mine ? describe(*mine) + " from " + mine->version_source : std::string("wheel copy")) +
                  (mine && older(win, *mine) ? ", which is newer" : std::string()) +
                  ": its Python loads a library its framework was not installed with",
              "take " + folder(win.paths.empty() ? win.resolved_path : win.paths.front()) +
                  " out of LD_LIBRARY_PATH when running this environment's Python (e.g. env -u LD_LIBRARY_PATH python ...)",
              false);
        }
        continue;
      }
      const std::string name = "shadow." + file;
      if (newer) {
        add(name, Status::WARN,
            file + ": Tessera loads " + describe(win) + " from " + via + ", which shadows the newer " + describe(*newer) +
                " (" + (newer->found_via.empty() ? std::string("elsewhere") : newer->found_via.front()) + ")",
            via == "LD_LIBRARY_PATH"
                ? "put " + folder(newer->paths.empty() ? newer->resolved_path : newer->paths.front()) +
                      " before " + folder(win.paths.empty() ? win.resolved_path : win.paths.front()) +
                      " in LD_LIBRARY_PATH, or remove the older copy's folder from it"
                : "remove or update the older copy, or put " +
                      folder(newer->paths.empty() ? newer->resolved_path : newer->paths.front()) +
                      " first in LD_LIBRARY_PATH",
            false);
      } else {
        add(name, Status::OK, file + ": Tessera loads " + describe(win) + " from " + via + "; other copies: " + list, "",
            false);
      }
    }
  }
}

// ---- GPU health (NVML) ---------------------------------------------------------------

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
