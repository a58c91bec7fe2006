// The pure part of the env report: versions, architecture coverage and the checks.
// Nothing here touches the machine; every rule is unit-tested with hand-built Reports.
#include "tessera/env/report.hpp"

#include "check_stack.hpp"
#include "text_scan.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace tessera::env {

// ---- Version ----------------------------------------------------------------------

std::string Version::str() const {
  if (!known()) return "unknown";
  std::string s = std::to_string(major) + "." + std::to_string(minor);
  if (patch >= 0) s += "." + std::to_string(patch);
  return s;
}

Version Version::parse(std::string_view text) {
  int parts[3] = {-1, -1, -1};
  size_t i = 0;
  for (int k = 0; k < 3; ++k) {
    if (i >= text.size() || !std::isdigit(static_cast<unsigned char>(text[i]))) break;
    long v = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      v = v * 10 + (text[i] - '0');
      if (v > 1000000) return {};
      ++i;
    }
    parts[k] = static_cast<int>(v);
    if (i < text.size() && text[i] == '.') ++i; else break;
  }
  if (parts[0] < 0) return {};
  return Version(parts[0], parts[1] < 0 ? 0 : parts[1], parts[2]);
}

Version Version::from_cuda(long encoded) {
  if (encoded <= 0) return {};
  return Version(static_cast<int>(encoded / 1000), static_cast<int>((encoded % 1000) / 10));
}

Version Version::from_cudnn(long encoded) {
  if (encoded <= 0) return {};
  if (encoded >= 90000)  // cuDNN 9+: 10000*major + 100*minor + patch
    return Version(static_cast<int>(encoded / 10000), static_cast<int>((encoded % 10000) / 100),
                   static_cast<int>(encoded % 100));
  return Version(static_cast<int>(encoded / 1000), static_cast<int>((encoded % 1000) / 100),
                 static_cast<int>(encoded % 100));
}

bool operator<(const Version& a, const Version& b) {
  const int pa = a.patch < 0 ? 0 : a.patch, pb = b.patch < 0 ? 0 : b.patch;
  if (a.major != b.major) return a.major < b.major;
  if (a.minor != b.minor) return a.minor < b.minor;
  return pa < pb;
}

bool operator==(const Version& a, const Version& b) {
  return !(a < b) && !(b < a);
}

const char* to_string(Status s) {
  switch (s) {
    case Status::OK: return "OK";
    case Status::WARN: return "WARN";
    case Status::FAIL: return "FAIL";
  }
  return "?";
}

const char* to_string(ArchSupport s) {
  switch (s) {
    case ArchSupport::SASS: return "sass";
    case ArchSupport::PTX_JIT: return "ptx-jit";
    case ArchSupport::NONE: return "none";
    case ArchSupport::UNKNOWN: return "unknown";
  }
  return "?";
}

// ---- architectures ----------------------------------------------------------------

namespace {

struct ArchEntry {
  int major = 0, minor = 0;
  char variant = 0;  // 0, 'a' (arch-specific) or 'f' (family)
  bool sass = false, ptx = false;
  std::string suffix() const {
    return std::to_string(major) + std::to_string(minor) + (variant ? std::string(1, variant) : "");
  }
};

enum class ArchParse { Ok, Symbolic, Bad, Empty };

ArchParse parse_architectures(const std::string& spec, std::vector<ArchEntry>& out, std::string& token_out) {
  std::string token;
  std::vector<std::string> tokens;
  for (char c : spec + ",") {
    if (c == ',' || c == ';' || std::isspace(static_cast<unsigned char>(c))) {
      if (!token.empty()) tokens.push_back(token);
      token.clear();
    } else {
      token += c;
    }
  }
  if (tokens.empty()) return ArchParse::Empty;
  for (const auto& t : tokens) {
    if (t == "all" || t == "all-major" || t == "native") {
      token_out = t;
      return ArchParse::Symbolic;
    }
    // <digits>[a|f][-real|-virtual]
    std::string_view v = t, kind;
    for (std::string_view k : {"-real", "-virtual"})
      if (v.size() > k.size() && v.substr(v.size() - k.size()) == k) kind = k, v.remove_suffix(k.size());
    char variant = 0;
    if (!v.empty() && (v.back() == 'a' || v.back() == 'f')) variant = v.back(), v.remove_suffix(1);
    if (!detail::all_digits(v) || v.size() > 4) {
      token_out = t;
      return ArchParse::Bad;
    }
    const int n = std::stoi(std::string(v));
    ArchEntry e;
    e.major = n / 10;
    e.minor = n % 10;
    e.variant = variant;
    e.sass = kind != "-virtual";
    e.ptx = kind != "-real";
    out.push_back(e);
  }
  return ArchParse::Ok;
}

/// Whether code for `e` (SASS when `sass`, else PTX) runs on a device of cc major.minor.
bool runs_on(const ArchEntry& e, bool sass, int major, int minor) {
  if (e.variant == 'a') return e.major == major && e.minor == minor;
  if (e.variant == 'f' || sass) return e.major == major && e.minor <= minor;
  return e.major < major || (e.major == major && e.minor <= minor);  // PTX: forward compatible
}

std::string cc_str(int major, int minor) { return std::to_string(major) + "." + std::to_string(minor); }

}  // namespace

ArchCoverage arch_coverage(const std::string& architectures, int cc_major, int cc_minor) {
  std::vector<ArchEntry> entries;
  std::string token;
  switch (parse_architectures(architectures, entries, token)) {
    case ArchParse::Empty:
      return {ArchSupport::UNKNOWN, "no CUDA architectures recorded in the build"};
    case ArchParse::Symbolic:
      return {ArchSupport::UNKNOWN, "architectures given as \"" + token + "\"; the build record does not say which"};
    case ArchParse::Bad:
      return {ArchSupport::UNKNOWN, "cannot read architecture \"" + token + "\" in \"" + architectures + "\""};
    case ArchParse::Ok: break;
  }
  const ArchEntry* best_sass = nullptr;
  const ArchEntry* best_ptx = nullptr;
  for (const auto& e : entries) {
    if (e.sass && runs_on(e, true, cc_major, cc_minor) &&
        (!best_sass || best_sass->major * 10 + best_sass->minor < e.major * 10 + e.minor))
      best_sass = &e;
    if (e.ptx && runs_on(e, false, cc_major, cc_minor) &&
        (!best_ptx || best_ptx->major * 10 + best_ptx->minor < e.major * 10 + e.minor))
      best_ptx = &e;
  }
  const std::string cc = cc_str(cc_major, cc_minor);
  if (best_sass) {
    std::string d = "SASS sm_" + best_sass->suffix();
    if (best_sass->minor != cc_minor) d += " (binary compatible with cc " + cc + ")";
    return {ArchSupport::SASS, d};
  }
  if (best_ptx) return {ArchSupport::PTX_JIT, "JIT-compiled from compute_" + best_ptx->suffix() + " PTX at first launch"};
  std::string sass, ptx;
  for (const auto& e : entries) {
    if (e.sass) sass += (sass.empty() ? "" : " ") + ("sm_" + e.suffix());
    if (e.ptx) ptx += (ptx.empty() ? "" : " ") + ("compute_" + e.suffix());
  }
  std::string d = "no SASS for cc " + cc + " (SASS: " + (sass.empty() ? "none" : sass) + ") and no PTX it can JIT (PTX: " +
                  (ptx.empty() ? "none" : ptx) + ")";
  return {ArchSupport::NONE, d};
}

std::string describe_architectures(const std::string& architectures) {
  std::vector<ArchEntry> entries;
  std::string token;
  switch (parse_architectures(architectures, entries, token)) {
    case ArchParse::Empty: return "none recorded";
    case ArchParse::Symbolic: return "\"" + token + "\" (resolved by CMake at configure time)";
    case ArchParse::Bad: return "unreadable entry \"" + token + "\"";
    case ArchParse::Ok: break;
  }
  std::string sass, ptx;
  for (const auto& e : entries) {
    if (e.sass) sass += " sm_" + e.suffix();
    if (e.ptx) ptx += " compute_" + e.suffix();
  }
  return "SASS" + (sass.empty() ? std::string(" none") : sass) + "; PTX" + (ptx.empty() ? std::string(" none") : ptx);
}

// ---- checks -----------------------------------------------------------------------

namespace {

/// TESSERA_DISABLE_CUDA's meaning: 1 on ("1", "true", "yes", "on"), 0 off (unset, "",
/// "0", "false", "no", "off"), -1 not recognised (treated as off, with a warning).
int flag_value(const std::optional<std::string>& v) {
  if (!v) return 0;
  std::string s;
  for (char c : *v)
    if (!std::isspace(static_cast<unsigned char>(c))) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "1" || s == "true" || s == "yes" || s == "on") return 1;
  if (s.empty() || s == "0" || s == "false" || s == "no" || s == "off") return 0;
  return -1;
}

Version major_minor(const Version& v) { return v.known() ? Version(v.major, v.minor) : Version(); }

/// The CUDA runtime whose driver requirement counts: the loaded libcudart when it is
/// linked shared (mapped before collect() looked) or the build has no CUDA backend,
/// otherwise the one compiled in.
struct RuntimeInUse {
  Version version;
  std::string how;  // "compiled against", "loaded"
};

RuntimeInUse runtime_in_use(const Report& r) {
  if (r.build.with_cuda) {
    if (r.cuda_runtime.found && r.cuda_runtime.preloaded && r.cuda_runtime.version.known())
      return {major_minor(r.cuda_runtime.version), "loaded"};
    if (r.build.cuda_compiled.known()) return {major_minor(r.build.cuda_compiled), "compiled against"};
  }
  if (r.cuda_runtime.found && r.cuda_runtime.version.known()) return {major_minor(r.cuda_runtime.version), "loaded"};
  return {};
}

std::string where(const Library& lib) { return lib.path.empty() ? std::string() : " at " + lib.path; }

std::string gpu_label(const Gpu& g) {
  return "cuda:" + std::to_string(g.index) + " " + g.name + " (cc " + cc_str(g.cc_major, g.cc_minor) + ")";
}

/// Whether PTX written by the nvcc of CUDA `toolkit` is newer than a driver for CUDA `driver`
/// can JIT: by PTX ISA when the table knows both, else by CUDA version.
bool ptx_too_new(const Version& toolkit, const Version& driver) {
  const Version isa = ptx_isa_of_toolkit(toolkit);
  bool beyond = false;
  const Version limit = max_ptx_isa_of_driver(driver, &beyond);
  if (isa.known() && limit.known()) return limit < isa && !beyond;
  return driver < toolkit;
}

std::string ptx_isa_words(const Version& toolkit) {
  const Version isa = ptx_isa_of_toolkit(toolkit);
  return isa.known() ? " (PTX ISA " + isa.str() + ")" : std::string();
}

}  // namespace

namespace detail {

std::string driver_fix(const Version& need) {
  return "install an NVIDIA driver that supports CUDA " + need.str() +
         " or newer (nvidia-smi shows the CUDA version a driver supports)";
}

Verdict judge_driver(const Version& d, const Version& v, const std::string& pair) {
  if (!(d < v)) return {Status::OK, pair, ""};
  if (d.major == v.major && v.major >= 11)
    return {Status::WARN,
            pair + ": runs under CUDA's minor-version compatibility (same major, CUDA 11 and later), but PTX "
                   "from the newer toolkit cannot be JIT-compiled and calls that need the newer driver fail "
                   "with cudaErrorCallRequiresNewerDriver",
            driver_fix(v)};
  if (d.major == v.major)
    return {Status::FAIL,
            pair + ": CUDA " + std::to_string(v.major) +
                ".x has no minor-version compatibility (it began with CUDA 11), so the runtime fails with "
                "cudaErrorInsufficientDriver",
            driver_fix(v)};
  return {Status::FAIL,
          pair + ": a CUDA " + std::to_string(v.major) + " runtime needs a CUDA " + std::to_string(v.major) +
              " driver; minor-version compatibility does not cross major versions (cudaErrorInsufficientDriver)",
          driver_fix(v)};
}

}  // namespace detail

using detail::driver_fix;

std::vector<Check> check(const Report& r, const CheckOptions& o) {
  std::vector<Check> out;
  const int disable_flag = flag_value(r.tessera_disable_cuda);
  const bool disabled = disable_flag == 1;
  const bool cuda_on = r.build.with_cuda && !disabled;
  const std::string off_why = !r.build.with_cuda ? "CPU-only build" : "TESSERA_DISABLE_CUDA is set";
  // Stack problems cannot stop a run that does not use CUDA: report them as WARN there.
  auto add = [&](std::string name, Status s, std::string reason, std::string fix, bool stack) {
    if (stack && !cuda_on && s == Status::FAIL) {
      s = Status::WARN;
      reason += " (no effect now: " + off_why + ")";
    }
    if (s == Status::OK) fix.clear();
    out.push_back(Check{std::move(name), s, std::move(reason), std::move(fix)});
  };
  // A condition that leaves Tessera on the CPU: FAIL only when CUDA is required.
  const Status cpu_only = o.require_cuda ? Status::FAIL : Status::WARN;

  // build.cuda
  if (r.build.with_cuda) {
    add("build.cuda", Status::OK,
        "CUDA backend built against CUDA " + r.build.cuda_compiled.str() + " for architectures " +
            (r.build.cuda_architectures.empty() ? "(unrecorded)" : r.build.cuda_architectures),
        "", false);
  } else {
    add("build.cuda", o.require_cuda ? Status::FAIL : Status::OK,
        "the CUDA backend is not compiled in (CPU-only build)",
        "reconfigure with -DTESSERA_CUDA=ON (needs nvcc, cuBLAS and cuDNN) and rebuild", false);
  }

  // env.TESSERA_DISABLE_CUDA
  if (disabled) {
    add("env.TESSERA_DISABLE_CUDA", cpu_only,
        "TESSERA_DISABLE_CUDA=" + *r.tessera_disable_cuda + " switches the CUDA backend off",
        "unset TESSERA_DISABLE_CUDA (or set it to 0) to use the GPU", false);
  } else if (disable_flag < 0) {
    add("env.TESSERA_DISABLE_CUDA", Status::WARN,
        "TESSERA_DISABLE_CUDA=\"" + *r.tessera_disable_cuda + "\" is not a recognised value and is ignored (CUDA stays on)",
        "set TESSERA_DISABLE_CUDA=1 (or true/yes/on) to switch CUDA off, 0 or unset to keep it", false);
  }

  // driver
  const Library& drv = r.driver.library;
  const bool driver_ok = drv.found && (r.driver.init_result == 0 || r.driver.init_result == 100);
  if (!drv.found) {
    const Status s = o.require_cuda ? Status::FAIL : (r.build.with_cuda ? Status::WARN : Status::OK);
    add("driver", s, "no NVIDIA driver (" + (drv.error.empty() ? std::string("libcuda.so.1 not found") : drv.error) + ")",
        "install the NVIDIA driver; in a container, start it with the NVIDIA Container Toolkit (--gpus all)", false);
  } else if (!driver_ok) {
    std::string fix = "check `nvidia-smi` and `dmesg`; reinstall the driver if they show errors";
    if (r.driver.init_result == 803)
      fix = "the driver's user-space library and kernel module differ: reboot, or reinstall the driver";
    else if (r.driver.init_result == 804)
      fix = "this GPU does not support the CUDA forward-compatibility package: take cuda-compat off the loader path";
    else if (r.driver.init_result == 999 || r.driver.init_result == 101)
      fix = "the GPU is in a bad state or misconfigured: check `nvidia-smi`, `dmesg`, CUDA_VISIBLE_DEVICES";
    add("driver", Status::FAIL,
        "NVIDIA driver" + where(drv) + " loaded but cuInit failed: " +
            (r.driver.init_error.empty() ? "error " + std::to_string(r.driver.init_result) : r.driver.init_error),
        fix, true);
  } else {
    add("driver", Status::OK,
        "NVIDIA driver " + (r.driver.release.empty() ? std::string() : r.driver.release + " ") + "supports CUDA " +
            drv.version.str() + where(drv),
        "", false);
  }

  // devices
  if (driver_ok) {
    if (r.gpus.empty()) {
      const Status s = o.require_cuda ? Status::FAIL : (r.build.with_cuda ? Status::WARN : Status::OK);
      std::string reason = "no CUDA device visible";
      if (r.cuda_visible_devices) reason += " (CUDA_VISIBLE_DEVICES=\"" + *r.cuda_visible_devices + "\")";
      add("devices", s, reason,
          "check `nvidia-smi`; unset or correct CUDA_VISIBLE_DEVICES; in a container pass --gpus", false);
    } else {
      std::string names;
      for (const auto& g : r.gpus) names += (names.empty() ? "" : ", ") + gpu_label(g);
      add("devices", Status::OK, std::to_string(r.gpus.size()) + " GPU(s) visible: " + names, "", false);
    }
  }

  // driver_vs_runtime
  const RuntimeInUse rt = runtime_in_use(r);
  if (drv.found && drv.version.known() && rt.version.known()) {
    const Version d = major_minor(drv.version), v = rt.version;
    const std::string pair = "driver supports CUDA " + d.str() + ", runtime " + v.str() + " (" + rt.how + ")";
    detail::Verdict verdict = detail::judge_driver(d, v, pair);
    if (verdict.status == Status::FAIL && d.major < v.major)
      verdict.fix += ", or build Tessera against CUDA " + std::to_string(d.major) + ".x";
    add("driver_vs_runtime", verdict.status, verdict.reason, verdict.fix, true);
  }

  // runtime
  const Library& crt = r.cuda_runtime;
  if (r.build.with_cuda) {
    const Version c = r.build.cuda_compiled;
    if (crt.found && crt.preloaded && c.known() && crt.version.known()) {
      if (crt.version.major != c.major) {
        add("runtime", Status::FAIL,
            "CUDA runtime " + crt.version.str() + " loaded" + where(crt) + ", compiled against " + c.str() +
                ": different major versions",
            "put the CUDA " + std::to_string(c.major) + " libcudart first on the loader path (LD_LIBRARY_PATH)", true);
      } else if (major_minor(crt.version) < major_minor(c)) {
        add("runtime", Status::WARN,
            "CUDA runtime " + crt.version.str() + " loaded" + where(crt) + " is older than the " + c.str() +
                " compiled against: functions added since fail",
            "install CUDA runtime " + major_minor(c).str() + " or newer", true);
      } else {
        add("runtime", Status::OK,
            "CUDA runtime " + crt.version.str() + " loaded" + where(crt) + " (compiled against " + c.str() + ")", "",
            true);
      }
    } else if (crt.found) {
      add("runtime", Status::OK,
          "CUDA runtime " + c.str() + " linked in statically; runtime " + crt.version.str() + " also found" + where(crt),
          "", true);
    } else {
      add("runtime", Status::OK,
          "CUDA runtime " + c.str() + " linked in statically; no shared libcudart found (" + crt.error + ")", "", true);
    }
  } else if (crt.found) {
    add("runtime", Status::OK, "CUDA runtime " + crt.version.str() + " found" + where(crt) + " (not used: CPU-only build)",
        "", false);
  }

  // cublas, cudnn: compiled against versus loaded
  auto library_check = [&](const std::string& name, const std::string& label, const Library& lib,
                           const Version& compiled, bool minor_older_fails, const std::string& package) {
    if (!r.build.with_cuda) {
      if (lib.found)
        add(name, Status::OK, label + " " + lib.version.str() + " found" + where(lib) + " (not used: CPU-only build)", "",
            false);
      return;
    }
    if (!lib.found) {
      add(name, Status::FAIL,
          label + " not found (" + (lib.error.empty() ? std::string("no library") : lib.error) + ")",
          "install " + package + (compiled.known() ? " " + std::to_string(compiled.major) + ".x" : std::string()) +
              " or add its folder to LD_LIBRARY_PATH",
          true);
      return;
    }
    const Version l = lib.version;
    const std::string pair = label + " " + l.str() + " loaded" + where(lib) + ", compiled against " + compiled.str();
    if (!compiled.known() || !l.known()) {
      add(name, Status::OK, label + " " + l.str() + " loaded" + where(lib) + " (compiled version not recorded)", "", true);
    } else if (l.major != compiled.major) {
      add(name, Status::FAIL, pair + ": major versions differ, and " + label + " is only compatible within a major version",
          "make the " + label + " " + std::to_string(compiled.major) + ".x library (" + package + " " +
              std::to_string(compiled.major) + ".x, minor >= " + std::to_string(compiled.minor) +
              ") the one loaded, or rebuild Tessera against " + label + " " + std::to_string(l.major),
          true);
    } else if (l.minor < compiled.minor) {
      add(name, minor_older_fails ? Status::FAIL : Status::WARN,
          pair + ": the loaded minor is older than the headers compiled against, so functions and behaviour the code "
                 "relies on may be missing",
          "install " + label + " " + major_minor(compiled).str() + " or a newer " + std::to_string(compiled.major) +
              ".x and put it first on the loader path",
          true);
    } else {
      add(name, Status::OK, pair, "", true);
    }
  };
  auto built_for_check = [&](const std::string& name, const std::string& label, const Library& lib,
                             const Version& built_for, const std::string& fix) {
    if (!lib.found || !built_for.known() || !rt.version.known()) return;
    if (built_for.major != rt.version.major) {
      add(name, Status::FAIL,
          label + " " + lib.version.str() + " was built for CUDA " + major_minor(built_for).str() +
              ", the CUDA runtime in use is " + rt.version.str() + ": different CUDA major versions",
          fix + std::to_string(rt.version.major), true);
    } else {
      add(name, Status::OK,
          label + " " + lib.version.str() + " built for CUDA " + major_minor(built_for).str() + ", runtime " +
              rt.version.str(),
          "", true);
    }
  };

  library_check("cublas", "cuBLAS", r.cublas, r.build.cublas_compiled, false, "cuBLAS (libcublas)");
  built_for_check("cublas_vs_runtime", "cuBLAS", r.cublas, r.cublas_cuda_version,
                  "use the cuBLAS that ships with the CUDA toolkit of the runtime: CUDA ");
  library_check("cudnn", "cuDNN", r.cudnn, r.build.cudnn_compiled, true, "cuDNN (libcudnn)");
  built_for_check("cudnn_vs_runtime", "cuDNN", r.cudnn, r.cudnn_cuda_version,
                  "install the cuDNN build for the runtime's CUDA major (cudnn9-cuda-N / nvidia-cudnn-cuN): N = ");

  // gpu.N
  if (r.build.with_cuda) {
    for (const auto& g : r.gpus) {
      const ArchCoverage cov = arch_coverage(r.build.cuda_architectures, g.cc_major, g.cc_minor);
      const std::string name = "gpu." + std::to_string(g.index);
      const std::string label = gpu_label(g);
      const std::string rebuild = "rebuild with -DCMAKE_CUDA_ARCHITECTURES=\"" + std::to_string(g.cc_major) +
                                  std::to_string(g.cc_minor) + "-real;" +
                                  (r.build.cuda_architectures.empty() ? std::string("...") : r.build.cuda_architectures) +
                                  "\"";
      switch (cov.support) {
        case ArchSupport::SASS:
          add(name, Status::OK, label + ": " + cov.detail, "", true);
          break;
        case ArchSupport::PTX_JIT: {
          const Version c = major_minor(r.build.cuda_compiled);
          if (drv.found && drv.version.known() && c.known() && ptx_too_new(c, major_minor(drv.version))) {
            add(name, Status::FAIL,
                label + ": needs PTX " + cov.detail.substr(cov.detail.find("compute_")) + " written by CUDA " + c.str() +
                    ptx_isa_words(c) + ", but the driver supports only CUDA " + major_minor(drv.version).str() +
                    " and cannot JIT-compile newer PTX (cudaErrorUnsupportedPtxVersion, 222)",
                driver_fix(c) + ", or " + rebuild, true);
          } else {
            add(name, Status::OK, label + ": " + cov.detail + " (slower first start; the driver caches the result)", "",
                true);
          }
          break;
        }
        case ArchSupport::NONE:
          add(name, Status::FAIL, label + " cannot run Tessera's kernels: " + cov.detail,
              rebuild + " if the CUDA toolkit still supports cc " + cc_str(g.cc_major, g.cc_minor) +
                  ", or use a newer GPU",
              true);
          break;
        case ArchSupport::UNKNOWN:
          add(name, Status::WARN, label + ": " + cov.detail,
              "configure with an explicit list, e.g. -DCMAKE_CUDA_ARCHITECTURES=\"" + std::to_string(g.cc_major) +
                  std::to_string(g.cc_minor) + "\"",
              true);
          break;
      }
    }
  }
  // ptx: the PTX in the binary against the driver's JIT
  if (r.build.with_cuda && drv.found && drv.version.known() && r.build.cuda_compiled.known()) {
    std::vector<ArchEntry> entries;
    std::string token;
    bool has_ptx = false;
    if (parse_architectures(r.build.cuda_architectures, entries, token) == ArchParse::Ok)
      for (const auto& e : entries) has_ptx = has_ptx || e.ptx;
    if (has_ptx) {
      const Version c = major_minor(r.build.cuda_compiled), d = major_minor(drv.version);
      const Version isa = ptx_isa_of_toolkit(c);
      bool beyond = false;
      const Version limit = max_ptx_isa_of_driver(d, &beyond);
      const std::string pair =
          "PTX in the binary: " + (isa.known() ? "ISA " + isa.str() : std::string("ISA unknown")) + " (nvcc " + c.str() +
          "); the driver (CUDA " + d.str() + ") JITs PTX up to ISA " + (limit.known() ? limit.str() : std::string("?")) +
          (beyond ? " or newer" : "");
      if (!ptx_too_new(c, d)) {
        add("ptx", Status::OK, pair, "", true);
      } else {
        std::string needing;
        for (const auto& g : r.gpus)
          if (arch_coverage(r.build.cuda_architectures, g.cc_major, g.cc_minor).support == ArchSupport::PTX_JIT)
            needing += (needing.empty() ? "" : ", ") + gpu_label(g);
        const std::string fix = driver_fix(c) + "; or rebuild with SASS for the GPU (-DCMAKE_CUDA_ARCHITECTURES=\"<cc>-real;...\") "
                                "or with a CUDA toolkit not newer than " + d.str();
        if (!needing.empty())
          add("ptx", Status::FAIL,
              pair + ": " + needing + " has no SASS in the binary and needs this PTX, so the first kernel launch fails "
                     "with cudaErrorUnsupportedPtxVersion (222): \"the provided PTX was compiled with an unsupported toolchain\"",
              fix, true);
        else
          add("ptx", Status::WARN,
              pair + ": unused on these GPUs (they have SASS), but on a GPU without SASS the launch fails with "
                     "cudaErrorUnsupportedPtxVersion (222)",
              fix, true);
      }
    }
  }

  if (r.python_envs_scanned) detail::check_python_envs(r, add);
  if (r.loader.scanned) detail::check_loader(r, add);
  if (r.nvml.queried) detail::check_nvml(r, add);
  return out;
}

Status worst(const std::vector<Check>& checks) {
  Status w = Status::OK;
  for (const auto& c : checks) w = std::max(w, c.status);
  return w;
}

namespace {
/// Checks of other programs on the machine (Python environments): never Tessera's availability.
bool about_other_programs(const Check& c) { return c.name.rfind("python.", 0) == 0; }
}  // namespace

std::string cuda_unavailable_reason(const Report& report) {
  const auto checks = check(report, CheckOptions{true});
  for (const auto& c : checks)
    if (c.status == Status::FAIL && c.name.rfind("gpu.", 0) != 0 && !about_other_programs(c)) return c.reason;
  const Check* first_gpu_fail = nullptr;
  bool any_gpu_ok = false;
  for (const auto& c : checks) {
    if (c.name.rfind("gpu.", 0) != 0) continue;
    if (c.status == Status::FAIL) {
      if (!first_gpu_fail) first_gpu_fail = &c;
    } else {
      any_gpu_ok = true;
    }
  }
  if (first_gpu_fail && !any_gpu_ok) return first_gpu_fail->reason;
  return "";
}

bool usable(const Report& report) { return cuda_unavailable_reason(report).empty(); }

std::string device_unavailable_reason(const Report& report, int index) {
  std::string why = cuda_unavailable_reason(report);
  if (!why.empty()) return why;
  if (index < 0 || index >= static_cast<int>(report.gpus.size()))
    return "device cuda:" + std::to_string(index) + " does not exist (" + std::to_string(report.gpus.size()) +
           " visible)";
  const std::string name = "gpu." + std::to_string(report.gpus[static_cast<size_t>(index)].index);
  for (const auto& c : check(report, CheckOptions{true}))
    if (c.name == name && c.status == Status::FAIL) return c.reason;
  return "";
}

}  // namespace tessera::env
