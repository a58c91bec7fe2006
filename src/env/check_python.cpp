// The python.<env>.* checks: each Python environment's GPU wheels judged against each other
// and against the driver, a pure function of the report.
#include "check_stack.hpp"

#include <map>
#include <set>

namespace tessera::env::detail {

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

}  // namespace tessera::env::detail
