// tessera-env --explain (issue 23): every entry of the table (src/env/explain_table.cpp) is
// tried against a state of this test file in which its check fires.
#include "env_fixtures.hpp"

#include <functional>
#include <map>
#include <regex>
#include <set>

using namespace tessera::env;
using namespace env_fixtures;

namespace {

Report with_nvml_gpu(const std::function<void(GpuHealth&)>& edit) {
  Report r = healthy_cuda12_report();
  r.nvml.queried = r.nvml.found = true;
  r.nvml.init_result = 0;
  r.nvml.path = "libnvidia-ml.so.1";
  GpuHealth g;
  g.name = "NVIDIA A100-SXM4-40GB";
  g.compute_mode = 0;
  g.memory_known = true;
  g.memory_total = 40ull << 30;
  g.memory_used = 1ull << 29;
  g.processes = 0;
  edit(g);
  r.nvml.gpus.push_back(g);
  return r;
}

Report with_env(const std::string& relative, const std::string& label) {
  Report r = healthy_cuda12_report();
  r.python_envs.push_back(fixture_env(relative, label));
  r.python_envs_scanned = true;
  return r;
}

/// Two copies of libcudnn.so.9, the older one first on LD_LIBRARY_PATH (no files needed:
/// resolve() works on the recorded paths).
Report with_shadowed_cudnn() {
  Report r = healthy_cuda12_report();
  LoaderReport& L = r.loader;
  L.scanned = true;
  L.ld_library_path = {"/opt/old/lib"};
  for (auto [dir, version, via] : {std::tuple<std::string, std::string, std::string>{"/opt/old/lib", "9.0.0", "LD_LIBRARY_PATH"},
                                   {"/usr/lib/x86_64-linux-gnu", "9.1.0", "ld.so.cache"}}) {
    LibraryCopy c;
    c.library = "cudnn";
    c.file = "libcudnn.so.9";
    c.paths = {dir + "/libcudnn.so.9"};
    c.resolved_path = dir + "/libcudnn.so.9." + version.substr(2);
    c.soname = "libcudnn.so.9";
    c.version = version;
    c.version_source = "file name";
    c.found_via = {via};
    L.copies.push_back(c);
  }
  L.cache = {{"libcudnn.so.9", "/usr/lib/x86_64-linux-gnu/libcudnn.so.9"}};
  ProcessSearch p;
  p.process = "tessera";
  p.steps = {{"/opt/old/lib", "LD_LIBRARY_PATH"}, {"", "ld.so.cache"}};
  L.processes.push_back(p);
  return r;
}

/// For each entry id: a state in which one of its checks fires, and that check's name.
std::map<std::string, std::pair<std::function<Report()>, std::string>> fixtures() {
  return {
      {"insufficient-driver",
       {[] {
          Report r = healthy_cuda12_report();
          r.driver.library.version = Version::from_cuda(11080);
          return r;
        },
        "driver_vs_runtime"}},
      {"no-kernel-image",
       {[] {
          Report r = healthy_cuda12_report();
          r.gpus[0].name = "Tesla V100-SXM2-16GB";
          r.gpus[0].cc_major = 7;
          return r;
        },
        "gpu.0"}},
      {"unsupported-ptx",
       {[] {
          Report r = healthy_cuda12_report();
          r.build.cuda_compiled = Version(12, 8, 93);
          r.gpus[0].cc_major = 10;
          return r;
        },
        "ptx"}},
      {"cudnn-not-initialized",
       {[] { return with_nvml_gpu([](GpuHealth& g) { g.memory_used = 39ull << 30, g.processes = 3; }); }, "nvml.0.memory"}},
      {"cudnn8-sublibrary-missing", {[] { return with_env("miniconda3/envs/two-cudnn", "e"); }, "python.e.cudnn"}},
      {"cudnn-could-not-load",
       {[] {
          Report r = healthy_cuda12_report();
          r.cudnn = Library{};
          r.cudnn.error = "libcudnn.so.9: cannot open shared object file";
          return r;
        },
        "cudnn"}},
      {"cudnn-symbol-version", {with_shadowed_cudnn, "shadow.libcudnn.so.9"}},
      {"cublas-not-initialized",
       {[] { return with_nvml_gpu([](GpuHealth& g) { g.memory_used = 39ull << 30, g.processes = 1; }); }, "nvml.0.memory"}},
      {"out-of-memory",
       {[] { return with_nvml_gpu([](GpuHealth& g) { g.memory_used = 30ull << 30, g.processes = 2; }); }, "nvml.0.memory"}},
      {"devices-unavailable", {[] { return with_nvml_gpu([](GpuHealth& g) { g.compute_mode = 3; }); }, "nvml.0.compute_mode"}},
      {"nvml-version-mismatch",
       {[] {
          Report r = with_nvml_gpu([](GpuHealth&) {});
          r.nvml.gpus.clear();
          r.nvml.init_result = 18;
          r.nvml.init_error = "Driver/library version mismatch";
          return r;
        },
        "nvml"}},
      {"ecc-uncorrectable", {[] { return with_nvml_gpu([](GpuHealth& g) { g.ecc_uncorrected_volatile = 2; }); }, "nvml.0.ecc"}},
      {"no-driver-or-device",
       {[] {
          Report r = healthy_cuda12_report();
          r.driver = Driver{};
          r.driver.library.error = "libcuda.so.1: cannot open shared object file: No such file or directory";
          r.gpus.clear();
          return r;
        },
        "driver"}},
      {"cudart-missing", {[] { return with_env("miniconda3/envs/mixed", "m"); }, "python.m.wheels"}},
      {"tessera-cuda-unavailable",
       {[] {
          Report r = healthy_cuda12_report();
          r.tessera_disable_cuda = "1";
          return r;
        },
        "env.TESSERA_DISABLE_CUDA"}},
  };
}

}  // namespace

TEST_CASE("env explain: the table is well formed", "[env][explain]") {
  std::set<std::string> ids;
  for (const auto& e : explain_table()) {
    INFO(e.id);
    CHECK(ids.insert(e.id).second);
    CHECK_NOTHROW(std::regex(e.pattern, std::regex::ECMAScript | std::regex::icase));
    CHECK_FALSE(e.meaning.empty());
    CHECK_FALSE(e.fix.empty());
    CHECK_FALSE(e.checks.empty());
    CHECK_FALSE(e.source.empty());
    CHECK((e.source.rfind("https://", 0) == 0 || e.source.rfind("Tessera's own", 0) == 0));
  }
  // The messages the issue lists are all known.
  for (const char* m : {"CUDA driver version is insufficient for CUDA runtime version",
                        "no kernel image is available for execution on the device", "CUDNN_STATUS_NOT_INITIALIZED",
                        "libcudnn_ops_infer.so.8: cannot open shared object file",
                        "Could not load library libcudnn_cnn_infer.so.8", "version `libcudnn_ops_infer.so.8' not found",
                        "PTX was compiled with an unsupported toolchain", "CUBLAS_STATUS_NOT_INITIALIZED",
                        "CUDA out of memory"}) {
    INFO(m);
    CHECK_FALSE(explain(m, {}).empty());
  }
}

TEST_CASE("env explain: every entry, in a state where its check fires", "[env][explain]") {
  const auto states = fixtures();
  const Report healthy = healthy_cuda12_report();
  const auto healthy_checks = check(healthy);
  for (const auto& e : explain_table()) {
    INFO("entry " << e.id);
    auto it = states.find(e.id);
    REQUIRE(it != states.end());  // a new entry needs a state here
    const auto& [make, expected] = it->second;
    const auto checks = check(make());
    const auto found = explain(e.example, checks);
    const Explanation* mine = nullptr;
    for (const auto& x : found)
      if (x.entry->id == e.id) mine = &x;
    REQUIRE(mine != nullptr);  // the example matches its own pattern
    bool fired = false;
    for (const auto& c : mine->firing) fired = fired || c.name == expected;
    CHECK(fired);
    const std::string text = format_explanations(e.example, found);
    CHECK_THAT(text, Catch::Contains("Recognised: " + e.id) && Catch::Contains("On this machine:") &&
                         Catch::Contains(expected) && Catch::Contains(e.source));
    // On a healthy machine the same message is recognised, nothing here explains it, and the usual fix is given.
    for (const auto& x : explain(e.example, healthy_checks))
      if (x.entry->id == e.id) {
        CHECK(x.firing.empty());
        CHECK_THAT(format_explanations(e.example, {x}), Catch::Contains("no check explains it now") && Catch::Contains(e.fix));
      }
  }
  CHECK(states.size() == explain_table().size());
}

TEST_CASE("env explain: unknown messages, several matches, JSON", "[env][explain]") {
  CHECK(explain("the flux capacitor overheated", {}).empty());
  CHECK_THAT(format_explanations("the flux capacitor overheated", {}), Catch::Contains("does not know this message"));
  // Both cuDNN 8 entries match this line.
  const auto both = explain("Could not load library libcudnn_cnn_infer.so.8. Error: libcudnn_ops_infer.so.8: cannot open "
                            "shared object file: No such file or directory",
                            {});
  REQUIRE(both.size() == 2);
  CHECK(both[0].entry->id == "cudnn8-sublibrary-missing");
  CHECK(both[1].entry->id == "cudnn-could-not-load");
  CHECK(explain("cudaErrorInsufficientDriver", {}).at(0).entry->id == "insufficient-driver");  // case and code names
  const auto j = nlohmann::json::parse(format_explanations_json("x: CUBLAS_STATUS_NOT_INITIALIZED", explain("x: CUBLAS_STATUS_NOT_INITIALIZED", {})));
  CHECK(j["schema"] == kJsonSchema);
  CHECK(j["recognised"] == true);
  CHECK(j["explanations"][0]["id"] == "cublas-not-initialized");
  CHECK(nlohmann::json::parse(format_explanations_json("nothing", {}))["recognised"] == false);
}
