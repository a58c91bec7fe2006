// The env report as text (for people) and JSON (for scripts), and its one-line summary.
#include "tessera/env/report.hpp"

#include "tessera/build_config.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace tessera::env {

namespace {

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

std::string file_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// "path" or "path -> versioned-file" when the link resolves to another file name.
std::string location(const Library& lib) {
  if (lib.path.empty()) return "";
  std::string s = lib.path;
  if (!lib.resolved_path.empty() && file_name(lib.resolved_path) != file_name(lib.path))
    s += " -> " + file_name(lib.resolved_path);
  return s;
}

std::string compiled_str(const BuildInfo& b, const Version& v) {
  if (!b.with_cuda) return "-";
  return v.known() ? v.str() : "?";
}

std::string cc_str(const Gpu& g) { return std::to_string(g.cc_major) + "." + std::to_string(g.cc_minor); }

struct Counts {
  int ok = 0, warn = 0, fail = 0;
};

Counts count(const std::vector<Check>& checks) {
  Counts c;
  for (const auto& k : checks) {
    if (k.status == Status::OK) ++c.ok;
    else if (k.status == Status::WARN) ++c.warn;
    else ++c.fail;
  }
  return c;
}

nlohmann::ordered_json version_json(const Version& v) {
  return v.known() ? nlohmann::ordered_json(v.str()) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json library_json(const Library& lib) {
  nlohmann::ordered_json j;
  j["found"] = lib.found;
  j["version"] = version_json(lib.version);
  j["path"] = lib.path.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(lib.path);
  j["resolved_path"] = lib.resolved_path.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(lib.resolved_path);
  j["preloaded"] = lib.preloaded;
  j["error"] = lib.error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(lib.error);
  j["tried"] = lib.tried;
  return j;
}

nlohmann::ordered_json optional_json(const std::optional<std::string>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

}  // namespace

std::string summary(const Report& r, const std::vector<Check>& checks) {
  const Counts c = count(checks);
  std::string head;
  const std::string why = cuda_unavailable_reason(r);
  if (c.fail > 0) {
    // Tessera's own first FAIL; a Python environment's only when Tessera has none.
    const Check* first = nullptr;
    for (const auto& k : checks)
      if (k.status == Status::FAIL && (!first || (first->name.rfind("python.", 0) == 0 && k.name.rfind("python.", 0) != 0)))
        first = &k;
    head = "FAIL: " + first->reason;
    if (!why.empty()) head += " (CPU only)";
  } else if (why.empty()) {
    std::string gpus;
    for (const auto& g : r.gpus)
      gpus += (gpus.empty() ? "" : ", ") + ("cuda:" + std::to_string(g.index) + " " + g.name + " (cc " + cc_str(g) + ")");
    head = "CUDA usable on " + std::to_string(r.gpus.size()) + " GPU(s): " + gpus;
  } else {
    head = "CPU only: " + why;
  }
  std::string stack;
  if (r.cuda_runtime.found)
    stack = "runtime " + r.cuda_runtime.version.str() + " found (" + r.cuda_runtime.path + ")";
  else
    stack = "no CUDA runtime library found";
  const Library& drv = r.driver.library;
  if (drv.found)
    stack += ", driver " + (r.driver.release.empty() ? std::string() : r.driver.release + " ") + "(CUDA " +
             drv.version.str() + ")";
  else if (head.find("no NVIDIA driver") == std::string::npos)
    stack += ", no driver";
  if (r.cublas.found) stack += ", cuBLAS " + r.cublas.version.str();
  if (r.cudnn.found) stack += ", cuDNN " + r.cudnn.version.str();
  std::string line = head + "; " + stack + "; checks: " + std::to_string(c.ok) + " OK, " + std::to_string(c.warn) +
                     " WARN, " + std::to_string(c.fail) + " FAIL";
#if TESSERA_CUDA_EMULATED
  // TESSERA_CUDA=EMULATE: device cuda is the host emulator, whatever the real stack says.
  line = "CUDA backend EMULATED on the host (tests/cuda_emu, for testing; not a GPU); the real stack: " + line;
#endif
  return line;
}

std::string format_text(const Report& r, const std::vector<Check>& checks) {
  std::ostringstream os;
  const BuildInfo& b = r.build;
  os << "Tessera " << b.tessera_version << " environment report\n\n";
  os << "Build\n";
  os << "  " << pad("compiler", 16) << b.compiler_id << " " << b.compiler_version << ", C++ " << b.cxx_standard
     << ", " << (b.build_type.empty() ? "(no build type)" : b.build_type) << "\n";
  if (b.with_cuda && TESSERA_CUDA_EMULATED) {
    os << "  " << pad("CUDA backend", 16) << "EMULATED on the host (TESSERA_CUDA=EMULATE, tests/cuda_emu; not a GPU: "
       << "the report below is about the real CUDA stack, which the emulated backend does not use)\n";
  } else if (b.with_cuda) {
    os << "  " << pad("CUDA backend", 16) << "built (CUDA " << b.cuda_compiled.str() << ", cuBLAS "
       << b.cublas_compiled.str() << ", cuDNN " << b.cudnn_compiled.str() << ")\n";
    os << "  " << pad("architectures", 16) << b.cuda_architectures << " ("
       << describe_architectures(b.cuda_architectures) << ")\n";
  } else {
    os << "  " << pad("CUDA backend", 16) << "not built (CPU only)\n";
  }
  os << "  " << pad("Eigen", 16) << b.eigen_version << "\n";
  if (b.openmp)
    os << "  " << pad("OpenMP", 16) << b.openmp_max_threads << " threads (OpenMP " << b.openmp_version << ")\n";
  else
    os << "  " << pad("OpenMP", 16) << "off\n";

  os << "\n" << pad("GPU stack", 18) << pad("compiled", 12) << pad("loaded", 12) << "library\n";
  const Library& drv = r.driver.library;
  {
    std::string loaded = drv.found ? drv.version.str() : "none";
    std::string where = drv.found ? location(drv) : drv.error;
    if (drv.found && !r.driver.release.empty()) where += " (driver " + r.driver.release + ")";
    os << "  " << pad("NVIDIA driver", 16) << pad("-", 12) << pad(loaded, 12) << where << "\n";
    if (drv.found && r.driver.init_result != 0) os << "  " << pad("", 40) << "cuInit: " << r.driver.init_error << "\n";
  }
  auto row = [&](const char* label, const Library& lib, const Version& compiled, const Version& built_for) {
    std::string where = lib.found ? location(lib) : lib.error;
    if (lib.found && built_for.known()) where += " (built for CUDA " + built_for.str() + ")";
    os << "  " << pad(label, 16) << pad(compiled_str(b, compiled), 12) << pad(lib.found ? lib.version.str() : "none", 12)
       << where << "\n";
  };
  row("CUDA runtime", r.cuda_runtime, b.cuda_compiled, Version());
  row("cuBLAS", r.cublas, b.cublas_compiled, r.cublas_cuda_version);
  row("cuDNN", r.cudnn, b.cudnn_compiled, r.cudnn_cuda_version);

  os << "\nGPUs\n";
  if (r.gpus.empty()) os << "  (none visible)\n";
  for (const auto& g : r.gpus) {
    os << "  cuda:" << g.index << "  " << g.name << ", cc " << cc_str(g) << ", " << gib(g.total_memory_bytes) << ", "
       << g.multiprocessor_count << " SMs";
    if (b.with_cuda) {
      const ArchCoverage cov = arch_coverage(b.cuda_architectures, g.cc_major, g.cc_minor);
      os << ", " << cov.detail;
    }
    os << "\n";
  }

  if (r.nvml.queried) {
    const Nvml& n = r.nvml;
    os << "\nGPU health (NVML)\n";
    if (!n.found) {
      os << "  not available: " << n.error << "\n";
    } else if (n.init_result != 0) {
      os << "  " << n.path << ": nvmlInit failed: " << n.init_error << "\n";
    } else {
      os << "  " << n.path << (n.driver_version.empty() ? "" : ", driver " + n.driver_version) << "\n";
      for (const auto& g : n.gpus) {
        os << "  " << g.index << "  " << g.name << (g.uuid.empty() ? "" : " (" + g.uuid + ")");
        if (g.memory_known) os << ", " << gib(g.memory_used) << " of " << gib(g.memory_total) << " in use";
        if (g.processes >= 0) os << ", " << g.processes << " process(es)";
        os << "\n";
      }
    }
  }

  if (r.python_envs_scanned) {
    os << "\nPython environments (read from their dist-info, Python not run)\n";
    if (r.python_envs.empty()) os << "  (none found)\n";
    for (const auto& e : r.python_envs) {
      os << "  " << e.label << "  (" << e.found_by << "; " << e.distributions_scanned << " distribution(s)";
      if (e.distributions.empty()) os << ", no GPU packages";
      os << ")\n";
      if (!e.torch_version.empty())
        os << "    torch/version.py: " << e.torch_version << ", CUDA " << (e.torch_cuda.empty() ? "none (CPU build)" : e.torch_cuda)
           << "\n";
      std::string line;
      for (const auto& d : e.distributions) {
        const std::string item = d.name + " " + d.version;
        if (line.size() + item.size() > 90) {
          os << "    " << line << "\n";
          line.clear();
        }
        line += (line.empty() ? "" : ", ") + item;
      }
      if (!line.empty()) os << "    " << line << "\n";
    }
  }

  if (r.loader.scanned) {
    const LoaderReport& L = r.loader;
    os << "\nLibrary copies on the loader's path (ld.so cache: " << L.cache_source << ")\n";
    os << "  " << pad("LD_LIBRARY_PATH", 16);
    if (L.ld_library_path.empty()) os << "(unset)";
    for (size_t i = 0; i < L.ld_library_path.size(); ++i) os << (i ? ":" : "") << L.ld_library_path[i];
    os << "\n";
    if (L.copies.empty()) os << "  (no copy of libcudart, libcublas, libcudnn or libnccl found)\n";
    for (const auto& c : L.copies) {
      os << "  " << pad(c.file, 18) << pad(c.version.empty() ? "?" : c.version, 12) << c.resolved_path;
      std::string via;
      for (const auto& v : c.found_via) via += (via.empty() ? "" : ", ") + v;
      os << "  [" << via << (c.version_source.empty() ? "" : "; version: " + c.version_source) << "]\n";
    }
    for (const auto& p : L.processes) {
      std::vector<std::string> files;
      for (const auto& c : L.copies)
        if (std::find(files.begin(), files.end(), c.file) == files.end()) files.push_back(c.file);
      std::string loads;
      for (const auto& f : files) {
        const auto [i, via] = resolve(L, p, f);
        if (i >= 0) loads += "\n    " + pad(f, 18) + L.copies[static_cast<size_t>(i)].resolved_path + "  (" + via + ")";
      }
      if (!loads.empty()) os << "  " << p.process << " loads:" << loads << "\n";
    }
    for (const auto& b : L.tessera_binaries) {
      auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : ":") + x;
        return s.empty() ? std::string("(none)") : s;
      };
      os << "  " << file_name(b.path) << ": RPATH " << join(b.rpath) << ", RUNPATH " << join(b.runpath)
         << (b.error.empty() ? "" : " (" + b.error + ")") << "\n";
    }
  }

  os << "\nEnvironment\n";
  os << "  " << pad("TESSERA_DISABLE_CUDA", 24) << (r.tessera_disable_cuda ? *r.tessera_disable_cuda : "(unset)") << "\n";
  os << "  " << pad("CUDA_VISIBLE_DEVICES", 24) << (r.cuda_visible_devices ? *r.cuda_visible_devices : "(unset)") << "\n";

  os << "\nChecks\n";
  size_t width = 0;
  for (const auto& c : checks) width = std::max(width, c.name.size());
  for (const auto& c : checks) {
    os << "  " << pad(to_string(c.status), 5) << pad(c.name, width + 1) << c.reason << "\n";
    if (!c.fix.empty()) os << "  " << std::string(5 + width + 1, ' ') << "fix: " << c.fix << "\n";
  }
  os << "\nSummary: " << summary(r, checks) << "\n";
  return os.str();
}

std::string format_json(const Report& r, const std::vector<Check>& checks, int indent) {
  using json = nlohmann::ordered_json;
  const BuildInfo& b = r.build;
  json j;
  j["schema"] = kJsonSchema;
  j["summary"] = summary(r, checks);
  const std::string why = cuda_unavailable_reason(r);
  j["cuda_usable"] = why.empty();
  j["unavailable_reason"] = why.empty() ? json(nullptr) : json(why);
  j["worst"] = to_string(worst(checks));

  json build;
  build["tessera_version"] = b.tessera_version;
  build["build_type"] = b.build_type;
  build["compiler"] = {{"id", b.compiler_id}, {"version", b.compiler_version}};
  build["cxx_standard"] = b.cxx_standard;
  build["cuda_backend"] = b.with_cuda;
  build["cuda_architectures"] = b.cuda_architectures;
  build["cuda_architectures_described"] = describe_architectures(b.cuda_architectures);
  build["compiled"] = {{"cuda", version_json(b.cuda_compiled)},
                       {"cublas", version_json(b.cublas_compiled)},
                       {"cudnn", version_json(b.cudnn_compiled)}};
  build["eigen"] = b.eigen_version;
  build["openmp"] = {{"enabled", b.openmp}, {"version", b.openmp_version}, {"max_threads", b.openmp_max_threads}};
  j["build"] = build;

  json driver = library_json(r.driver.library);
  driver["cuda_version"] = driver["version"];
  driver.erase("version");
  driver["release"] = r.driver.release.empty() ? json(nullptr) : json(r.driver.release);
  driver["init_result"] = r.driver.init_result;
  driver["init_error"] = r.driver.init_error.empty() ? json(nullptr) : json(r.driver.init_error);
  j["driver"] = driver;
  j["cuda_runtime"] = library_json(r.cuda_runtime);
  json cublas = library_json(r.cublas);
  cublas["built_for_cuda"] = version_json(r.cublas_cuda_version);
  j["cublas"] = cublas;
  json cudnn = library_json(r.cudnn);
  cudnn["built_for_cuda"] = version_json(r.cudnn_cuda_version);
  j["cudnn"] = cudnn;

  json gpus = json::array();
  for (const auto& g : r.gpus) {
    json gj;
    gj["index"] = g.index;
    gj["name"] = g.name;
    gj["compute_capability"] = cc_str(g);
    gj["total_memory_bytes"] = g.total_memory_bytes;
    gj["multiprocessor_count"] = g.multiprocessor_count;
    if (b.with_cuda) {
      const ArchCoverage cov = arch_coverage(b.cuda_architectures, g.cc_major, g.cc_minor);
      gj["code"] = to_string(cov.support);
      gj["code_detail"] = cov.detail;
    } else {
      gj["code"] = nullptr;
      gj["code_detail"] = nullptr;
    }
    gpus.push_back(gj);
  }
  j["gpus"] = gpus;
  if (r.python_envs_scanned) {
    json envs = json::array();
    for (const auto& e : r.python_envs) {
      json ej;
      ej["label"] = e.label;
      ej["kind"] = e.kind;
      ej["prefix"] = e.prefix;
      ej["found_by"] = e.found_by;
      ej["site_packages"] = e.site_packages;
      ej["distributions_scanned"] = e.distributions_scanned;
      ej["torch_version"] = e.torch_version.empty() ? json(nullptr) : json(e.torch_version);
      ej["torch_cuda"] = e.torch_cuda.empty() ? json(nullptr) : json(e.torch_cuda);
      json ds = json::array();
      for (const auto& d : e.distributions) {
        json dj;
        dj["name"] = d.name;
        dj["version"] = d.version;
        const int m = distribution_cuda_major(d);
        dj["cuda_major"] = m > 0 ? json(m) : json(nullptr);
        dj["dist_info"] = d.dist_info;
        json pins = json::array();
        for (const auto& q : d.requires_nvidia) pins.push_back({{"name", q.name}, {"version", q.version.empty() ? json(nullptr) : json(q.version)}});
        dj["requires_nvidia"] = pins;
        dj["libraries"] = d.libraries;
        ds.push_back(dj);
      }
      ej["distributions"] = ds;
      envs.push_back(ej);
    }
    j["python_envs"] = envs;
  } else {
    j["python_envs"] = nullptr;
  }
  if (r.nvml.queried) {
    const Nvml& n = r.nvml;
    auto opt_int = [](int v) { return v < 0 ? json(nullptr) : json(v); };
    json nj;
    nj["found"] = n.found;
    nj["path"] = n.path.empty() ? json(nullptr) : json(n.path);
    nj["error"] = n.error.empty() ? json(nullptr) : json(n.error);
    nj["init_result"] = n.init_result;
    nj["init_error"] = n.init_error.empty() ? json(nullptr) : json(n.init_error);
    nj["driver_version"] = n.driver_version.empty() ? json(nullptr) : json(n.driver_version);
    json gs = json::array();
    for (const auto& g : n.gpus)
      gs.push_back({{"index", g.index},
                    {"name", g.name},
                    {"uuid", g.uuid.empty() ? json(nullptr) : json(g.uuid)},
                    {"ecc_current", opt_int(g.ecc_current)},
                    {"ecc_pending", opt_int(g.ecc_pending)},
                    {"ecc_uncorrected_volatile", g.ecc_uncorrected_volatile < 0 ? json(nullptr) : json(g.ecc_uncorrected_volatile)},
                    {"retired_pages_pending", opt_int(g.retired_pages_pending)},
                    {"remapped_rows_pending", opt_int(g.remapped_rows_pending)},
                    {"remapping_failed", opt_int(g.remapping_failed)},
                    {"mig_current", opt_int(g.mig_current)},
                    {"mig_pending", opt_int(g.mig_pending)},
                    {"compute_mode", opt_int(g.compute_mode)},
                    {"persistence", opt_int(g.persistence)},
                    {"memory_total_bytes", g.memory_known ? json(g.memory_total) : json(nullptr)},
                    {"memory_used_bytes", g.memory_known ? json(g.memory_used) : json(nullptr)},
                    {"processes", opt_int(g.processes)},
                    {"clock_event_reasons", g.clock_events_known ? json(g.clock_event_reasons) : json(nullptr)},
                    {"clock_events", g.clock_events_known ? json(describe_clock_events(g.clock_event_reasons)) : json(nullptr)}});
    nj["gpus"] = gs;
    j["nvml"] = nj;
  } else {
    j["nvml"] = nullptr;
  }
  if (r.loader.scanned) {
    const LoaderReport& L = r.loader;
    json lj;
    lj["ld_library_path"] = L.ld_library_path;
    lj["cache_source"] = L.cache_source;
    json copies = json::array();
    for (const auto& c : L.copies)
      copies.push_back({{"library", c.library}, {"file", c.file}, {"paths", c.paths}, {"resolved_path", c.resolved_path},
                        {"soname", c.soname.empty() ? json(nullptr) : json(c.soname)},
                        {"version", c.version.empty() ? json(nullptr) : json(c.version)},
                        {"version_source", c.version_source.empty() ? json(nullptr) : json(c.version_source)},
                        {"found_via", c.found_via}});
    lj["copies"] = copies;
    json procs = json::array();
    for (const auto& p : L.processes) {
      json steps = json::array();
      for (const auto& st : p.steps) steps.push_back({{"dir", st.dir.empty() ? json(nullptr) : json(st.dir)}, {"via", st.via}});
      json loads = json::object();
      for (const auto& c : L.copies) {
        if (loads.contains(c.file)) continue;
        const auto [i, via] = resolve(L, p, c.file);
        loads[c.file] = i < 0 ? json(nullptr) : json({{"path", L.copies[static_cast<size_t>(i)].resolved_path}, {"via", via}});
      }
      procs.push_back({{"process", p.process}, {"description", p.description}, {"steps", steps}, {"loads", loads}});
    }
    lj["processes"] = procs;
    json bins = json::array();
    for (const auto& b : L.tessera_binaries)
      bins.push_back({{"path", b.path}, {"rpath", b.rpath}, {"runpath", b.runpath},
                      {"error", b.error.empty() ? json(nullptr) : json(b.error)}});
    lj["tessera_binaries"] = bins;
    j["loader"] = lj;
  } else {
    j["loader"] = nullptr;
  }
  j["environment"] = {{"TESSERA_DISABLE_CUDA", optional_json(r.tessera_disable_cuda)},
                      {"CUDA_VISIBLE_DEVICES", optional_json(r.cuda_visible_devices)}};
  json cj = json::array();
  for (const auto& c : checks)
    cj.push_back({{"name", c.name}, {"status", to_string(c.status)}, {"reason", c.reason},
                  {"fix", c.fix.empty() ? json(nullptr) : json(c.fix)}});
  j["checks"] = cj;
  return j.dump(indent);
}

std::string format_explanations_json(const std::string& text, const std::vector<Explanation>& found, int indent) {
  using json = nlohmann::ordered_json;
  json j;
  j["schema"] = kJsonSchema;
  j["message"] = text;
  j["recognised"] = !found.empty();
  json xs = json::array();
  for (const auto& x : found) {
    json f = json::array();
    for (const auto& c : x.firing)
      f.push_back({{"name", c.name}, {"status", to_string(c.status)}, {"reason", c.reason},
                   {"fix", c.fix.empty() ? json(nullptr) : json(c.fix)}});
    xs.push_back({{"id", x.entry->id}, {"meaning", x.entry->meaning}, {"source", x.entry->source},
                  {"fix", x.entry->fix}, {"checks", x.entry->checks}, {"firing", f}});
  }
  j["explanations"] = xs;
  return j.dump(indent);
}

}  // namespace tessera::env
