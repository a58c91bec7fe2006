// The env report's rules, with hand-built Reports (no GPU needed), and collect() on this
// machine. The tables hold the combinations issue 5 lists, plus the neighbours of each rule.
#include <catch2/catch.hpp>

#include "tessera/build_config.hpp"
#include "env_fixtures.hpp"
#include "tessera/env/report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

using namespace tessera::env;

namespace {

constexpr const char* kDefaultArchs = "75-real,80-real,86-real,89-real,90";

/// A consistent CUDA 12.4 machine: the state every rule test starts from.
Report healthy_report() { return env_fixtures::healthy_cuda12_report(); }

using env_fixtures::find_check;

Status status_of(const Report& r, const std::string& name, CheckOptions o = {}) {
  const auto checks = check(r, o);
  const Check* c = find_check(checks, name);
  INFO("check " << name << " missing");
  REQUIRE(c != nullptr);
  return c->status;
}

std::string reason_of(const Report& r, const std::string& name, CheckOptions o = {}) {
  const auto checks = check(r, o);
  const Check* c = find_check(checks, name);
  REQUIRE(c != nullptr);
  return c->reason;
}

}  // namespace

TEST_CASE("env: Version decodes CUDA's encoding", "[env]") {
  auto [encoded, major, minor] = GENERATE(table<long, int, int>({
      {10000, 10, 0}, {10010, 10, 1}, {11040, 11, 4}, {11080, 11, 8}, {12010, 12, 1}, {12040, 12, 4}, {13000, 13, 0}}));
  const Version v = Version::from_cuda(encoded);
  CHECK(v.major == major);
  CHECK(v.minor == minor);
  CHECK(v.patch == -1);
  CHECK_FALSE(Version::from_cuda(0).known());
}

TEST_CASE("env: Version decodes cuDNN's encodings", "[env]") {
  // cuDNN: 1000*M + 100*m + p before 9.0, 10000*M + 100*m + p from 9.0.
  auto [cudnn, text] = GENERATE(table<long, std::string>({{7605, "7.6.5"},
                                                          {8003, "8.0.3"},
                                                          {8302, "8.3.2"},
                                                          {8500, "8.5.0"},
                                                          {8907, "8.9.7"},
                                                          {90100, "9.1.0"},
                                                          {91900, "9.19.0"}}));
  CHECK(Version::from_cudnn(cudnn).str() == text);
  CHECK_FALSE(Version::from_cudnn(0).known());
}

TEST_CASE("env: Version parses and orders", "[env]") {
  CHECK(Version::parse("13.0.88") == Version(13, 0, 88));
  CHECK(Version::parse("13.0.88").str() == "13.0.88");
  CHECK(Version::parse("12.4").str() == "12.4");
  CHECK(Version::parse("9").str() == "9.0");
  CHECK_FALSE(Version::parse("").known());
  CHECK_FALSE(Version::parse("abc").known());
  CHECK(Version::parse("").str() == "unknown");
  CHECK(Version(8, 0, 3) < Version(8, 3, 2));
  CHECK(Version(8, 9, 7) < Version(9, 0, 0));
  CHECK(Version(12, 4) == Version(12, 4, 0));
  CHECK_FALSE(Version(12, 4, 1) < Version(12, 4));
}

TEST_CASE("env: a consistent CUDA machine passes every check", "[env]") {
  const Report r = healthy_report();
  const auto checks = check(r);
  for (const auto& c : checks) {
    INFO(c.name << ": " << c.reason);
    CHECK(c.status == Status::OK);
    CHECK(c.fix.empty());
  }
  for (const char* name : {"build.cuda", "driver", "devices", "driver_vs_runtime", "runtime", "cublas",
                           "cublas_vs_runtime", "cudnn", "cudnn_vs_runtime", "gpu.0"})
    CHECK(find_check(checks, name) != nullptr);
  CHECK(worst(checks) == Status::OK);
  CHECK(usable(r));
  CHECK(cuda_unavailable_reason(r).empty());
  CHECK(device_unavailable_reason(r, 0).empty());
  CHECK_THAT(device_unavailable_reason(r, 1), Catch::Contains("does not exist"));
  CHECK_THAT(summary(r, checks), Catch::StartsWith("CUDA usable on 1 GPU(s): cuda:0 NVIDIA A100"));
}

TEST_CASE("env: driver versus CUDA runtime (minor-version compatibility from CUDA 11)", "[env]") {
  // driver API version, runtime version (compiled in), expected status, a phrase of the reason
  auto [driver, runtime, expected, phrase] = GENERATE(table<long, long, Status, std::string>({
      {10000, 10010, Status::FAIL, "no minor-version compatibility"},  // CUDA 10.x: none
      {9020, 10000, Status::FAIL, "does not cross major versions"},
      {11040, 11080, Status::WARN, "minor-version compatibility"},  // 11.4 driver runs 11.8 apps, no newer PTX JIT
      {12020, 12080, Status::WARN, "cannot be JIT-compiled"},
      {11080, 12010, Status::FAIL, "does not cross major versions"},  // major gap
      {12080, 13000, Status::FAIL, "needs a CUDA 13 driver"},
      {12040, 11080, Status::OK, "driver supports CUDA 12.4, runtime 11.8"},  // newer driver: fine
      {12040, 12040, Status::OK, "runtime 12.4"},
      {13000, 12080, Status::OK, "runtime 12.8"},
  }));
  Report r = healthy_report();
  r.driver.library.version = Version::from_cuda(driver);
  r.build.cuda_compiled = Version::from_cuda(runtime);
  r.cuda_runtime.version = Version::from_cuda(runtime);
  r.cublas_cuda_version = r.cudnn_cuda_version = Version::from_cuda(runtime);
  r.cublas.version = r.build.cublas_compiled = Version(static_cast<int>(runtime / 1000), 0, 0);
  r.gpus.clear();  // keep the architecture check out of this table
  INFO("driver " << driver << ", runtime " << runtime);
  CHECK(status_of(r, "driver_vs_runtime") == expected);
  CHECK_THAT(reason_of(r, "driver_vs_runtime"), Catch::Contains(phrase));
  const auto checks = check(r);
  CHECK(worst(checks) >= expected);
  if (expected != Status::OK) CHECK_FALSE(find_check(checks, "driver_vs_runtime")->fix.empty());
  // A FAIL here is why the backend is unavailable; a WARN still runs.
  r.gpus = healthy_report().gpus;
  CHECK(usable(r) == (expected != Status::FAIL));
}

TEST_CASE("env: the runtime in use is the loaded one when libcudart is linked shared", "[env]") {
  Report r = healthy_report();
  r.build.cuda_compiled = Version(12, 2, 140);
  r.driver.library.version = Version::from_cuda(12020);
  r.cuda_runtime.version = Version::from_cuda(12080);  // a newer libcudart.so.12 on the path
  r.cuda_runtime.preloaded = false;                    // static cudart: the on-disk one is not used
  CHECK(status_of(r, "driver_vs_runtime") == Status::OK);
  r.cuda_runtime.preloaded = true;  // linked shared: 12.8 is what runs, and the 12.2 driver is older
  CHECK(status_of(r, "driver_vs_runtime") == Status::WARN);
  CHECK_THAT(reason_of(r, "driver_vs_runtime"), Catch::Contains("runtime 12.8 (loaded)"));
  CHECK(status_of(r, "runtime") == Status::OK);

  // linked shared, but the loader found another major / an older minor
  r.driver.library.version = Version::from_cuda(13000);
  r.cuda_runtime.version = Version::from_cuda(11080);
  CHECK(status_of(r, "runtime") == Status::FAIL);
  r.cuda_runtime.version = Version::from_cuda(12010);
  CHECK(status_of(r, "runtime") == Status::WARN);
}

TEST_CASE("env: cuDNN loaded versus compiled against", "[env]") {
  // compiled, loaded (cudnnGetVersion encoding), expected
  auto [compiled, loaded, expected] = GENERATE(table<std::string, long, Status>({
      {"8.3.2", 8003, Status::FAIL},   // loaded minor older than the headers
      {"8.3.2", 8500, Status::OK},     // newer minor, same major
      {"8.3.2", 8300, Status::OK},     // older patch only
      {"8.3.2", 8302, Status::OK},
      {"8.9.7", 90100, Status::FAIL},  // 8.x against 9.x
      {"9.1.0", 8907, Status::FAIL},   // 9.x against 8.x
      {"9.1.0", 91900, Status::OK},
      {"9.19.0", 90100, Status::FAIL},
  }));
  Report r = healthy_report();
  r.build.cudnn_compiled = Version::parse(compiled);
  r.cudnn.version = Version::from_cudnn(loaded);
  INFO("compiled " << compiled << ", loaded " << r.cudnn.version.str());
  CHECK(status_of(r, "cudnn") == expected);
  if (expected == Status::FAIL) {
    CHECK_THAT(reason_of(r, "cudnn"), Catch::Contains(r.cudnn.version.str()) && Catch::Contains(compiled));
    CHECK_FALSE(usable(r));
    CHECK(cuda_unavailable_reason(r) == reason_of(r, "cudnn"));
  } else {
    CHECK(usable(r));
  }
}

TEST_CASE("env: cuDNN and cuBLAS must be built for the runtime's CUDA major", "[env]") {
  auto [built_for, runtime, expected] = GENERATE(table<long, long, Status>({
      {11080, 12040, Status::FAIL},
      {12080, 13000, Status::FAIL},
      {12020, 12040, Status::OK},
      {13010, 13000, Status::OK},  // cuDNN 9.19 for CUDA 13.1 on a 13.0 runtime: same major
  }));
  Report r = healthy_report();
  r.build.cuda_compiled = Version::from_cuda(runtime);
  r.cuda_runtime.version = Version::from_cuda(runtime);
  r.driver.library.version = Version::from_cuda(13000);
  r.cublas.version = r.build.cublas_compiled = Version(static_cast<int>(runtime / 1000), 0, 0);
  r.cublas_cuda_version = Version::from_cuda(runtime);
  r.cudnn_cuda_version = Version::from_cuda(built_for);
  CHECK(status_of(r, "cudnn_vs_runtime") == expected);
  CHECK(status_of(r, "cublas_vs_runtime") == Status::OK);
  r.cudnn_cuda_version = Version::from_cuda(runtime);
  r.cublas_cuda_version = Version::from_cuda(built_for);
  CHECK(status_of(r, "cublas_vs_runtime") == expected);
}

TEST_CASE("env: cuBLAS loaded versus compiled against", "[env]") {
  auto [compiled, loaded, expected] = GENERATE(table<std::string, std::string, Status>({
      {"12.4.5", "11.11.3", Status::FAIL},  // major mismatch
      {"12.4.5", "13.1.0", Status::FAIL},
      {"12.4.5", "12.1.3", Status::WARN},  // older minor
      {"12.4.5", "12.4.5", Status::OK},
      {"12.4.5", "12.8.4", Status::OK},
  }));
  Report r = healthy_report();
  r.build.cublas_compiled = Version::parse(compiled);
  r.cublas.version = Version::parse(loaded);
  CHECK(status_of(r, "cublas") == expected);

  r = healthy_report();
  r.cublas.found = false;
  r.cublas.error = "libcublas.so.12: cannot open shared object file";
  CHECK(status_of(r, "cublas") == Status::FAIL);
  CHECK_THAT(reason_of(r, "cublas"), Catch::Contains("cannot open shared object file"));
}

TEST_CASE("env: architecture coverage (SASS, PTX JIT, none)", "[env]") {
  auto [archs, major, minor, expected] = GENERATE(table<std::string, int, int, ArchSupport>({
      {"60-real,70-real,80-real", 5, 0, ArchSupport::NONE},  // cc 5.0, only sm_60+ and no PTX
      {"60,70", 5, 0, ArchSupport::NONE},                     // PTX, but all newer than 5.0
      {kDefaultArchs, 9, 0, ArchSupport::SASS},               // H100/H200
      {kDefaultArchs, 8, 6, ArchSupport::SASS},
      {kDefaultArchs, 8, 7, ArchSupport::SASS},  // sm_86 runs on 8.7 (same major, newer minor)
      {kDefaultArchs, 10, 0, ArchSupport::PTX_JIT},  // Blackwell: compute_90 PTX
      {kDefaultArchs, 12, 0, ArchSupport::PTX_JIT},
      {kDefaultArchs, 7, 0, ArchSupport::NONE},  // V100: older than sm_75, PTX only for 9.0
      {"75-real;90", 9, 0, ArchSupport::SASS},   // CMake's own separator
      {"80", 8, 6, ArchSupport::SASS},
      {"80-virtual", 8, 6, ArchSupport::PTX_JIT},
      {"80-virtual", 7, 5, ArchSupport::NONE},
      {"80-real", 9, 0, ArchSupport::NONE},  // SASS does not cross majors
      {"90a", 9, 0, ArchSupport::SASS},
      {"90a", 10, 0, ArchSupport::NONE},  // arch-specific: 9.0 only, PTX too
      {"100f-real", 10, 3, ArchSupport::SASS},
      {"100f-real", 12, 0, ArchSupport::NONE},
      {"native", 9, 0, ArchSupport::UNKNOWN},
      {"", 9, 0, ArchSupport::UNKNOWN},
      {"sm_90", 9, 0, ArchSupport::UNKNOWN},
  }));
  INFO(archs << " on cc " << major << "." << minor);
  const ArchCoverage cov = arch_coverage(archs, major, minor);
  CHECK(cov.support == expected);
  CHECK_FALSE(cov.detail.empty());
  CHECK(describe_architectures(kDefaultArchs) == "SASS sm_75 sm_80 sm_86 sm_89 sm_90; PTX compute_90");
}

TEST_CASE("env: a GPU the build cannot run on fails, and only that GPU", "[env]") {
  Report r = healthy_report();
  r.build.cuda_architectures = "60-real,70-real,80-real";
  r.gpus[0].name = "Quadro K620";
  r.gpus[0].cc_major = 5;
  r.gpus[0].cc_minor = 0;
  CHECK(status_of(r, "gpu.0") == Status::FAIL);
  CHECK_THAT(reason_of(r, "gpu.0"), Catch::Contains("cannot run") && Catch::Contains("cc 5.0"));
  CHECK_FALSE(usable(r));
  CHECK(cuda_unavailable_reason(r) == reason_of(r, "gpu.0"));

  Gpu ok = healthy_report().gpus[0];
  ok.index = 1;
  r.gpus.push_back(ok);  // a second, covered GPU: the backend is usable, device 0 is not
  CHECK(usable(r));
  CHECK_FALSE(device_unavailable_reason(r, 0).empty());
  CHECK(device_unavailable_reason(r, 1).empty());
  CHECK(worst(check(r)) == Status::FAIL);  // tessera-env still exits 1: cuda:0 cannot run
}

TEST_CASE("env: PTX JIT needs a driver as new as the toolkit that wrote the PTX", "[env]") {
  Report r = healthy_report();
  r.gpus[0].name = "NVIDIA B200";
  r.gpus[0].cc_major = 10;
  r.gpus[0].cc_minor = 0;
  CHECK(status_of(r, "gpu.0") == Status::OK);  // driver 12.4 = toolkit 12.4
  CHECK_THAT(reason_of(r, "gpu.0"), Catch::Contains("compute_90"));
  r.driver.library.version = Version::from_cuda(12020);
  r.cuda_runtime.version = Version::from_cuda(12020);
  CHECK(status_of(r, "driver_vs_runtime") == Status::WARN);
  CHECK(status_of(r, "gpu.0") == Status::FAIL);
  CHECK_FALSE(usable(r));
}

TEST_CASE("env: no driver is CPU only, a failure only when CUDA is required", "[env]") {
  Report r = healthy_report();
  r.driver = Driver{};
  r.driver.library.error = "libcuda.so.1: cannot open shared object file: No such file or directory";
  r.gpus.clear();
  const auto checks = check(r);
  CHECK(find_check(checks, "driver")->status == Status::WARN);
  CHECK(find_check(checks, "devices") == nullptr);
  CHECK(find_check(checks, "driver_vs_runtime") == nullptr);
  CHECK(worst(checks) == Status::WARN);  // exit 0: usable as configured (on the CPU)
  CHECK_FALSE(usable(r));
  CHECK_THAT(cuda_unavailable_reason(r), Catch::StartsWith("no NVIDIA driver (libcuda.so.1: cannot open"));
  CHECK_THAT(summary(r, checks), Catch::StartsWith("CPU only: no NVIDIA driver") &&
                                     Catch::Contains("runtime 12.4 found (/usr/local/cuda-12.4/lib64/libcudart.so.12)"));
  CHECK(status_of(r, "driver", CheckOptions{true}) == Status::FAIL);

  // A CPU-only build does not need one.
  r.build.with_cuda = false;
  CHECK(status_of(r, "driver") == Status::OK);
  CHECK(worst(check(r)) == Status::OK);
  CHECK_THAT(cuda_unavailable_reason(r), Catch::Contains("not compiled in"));
  CHECK(status_of(r, "build.cuda", CheckOptions{true}) == Status::FAIL);
}

TEST_CASE("env: no GPU visible is CPU only, a failure only when CUDA is required", "[env]") {
  Report r = healthy_report();
  r.gpus.clear();
  r.driver.init_result = 100;
  r.driver.init_error = "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected";
  r.cuda_visible_devices = "";
  CHECK(status_of(r, "driver") == Status::OK);
  CHECK(status_of(r, "devices") == Status::WARN);
  CHECK_THAT(reason_of(r, "devices"), Catch::Contains("CUDA_VISIBLE_DEVICES=\"\""));
  CHECK(worst(check(r)) == Status::WARN);
  CHECK_FALSE(usable(r));
  CHECK(status_of(r, "devices", CheckOptions{true}) == Status::FAIL);
}

TEST_CASE("env: a broken driver (cuInit fails) is a failure", "[env]") {
  Report r = healthy_report();
  r.gpus.clear();
  r.driver.init_result = 803;
  r.driver.init_error = "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH: system has unsupported display driver / cuda driver combination";
  CHECK(status_of(r, "driver") == Status::FAIL);
  const auto checks = check(r);
  CHECK_THAT(find_check(checks, "driver")->fix, Catch::Contains("reboot"));
  CHECK_THAT(cuda_unavailable_reason(r), Catch::Contains("SYSTEM_DRIVER_MISMATCH"));
}

TEST_CASE("env: TESSERA_DISABLE_CUDA switches CUDA off with a warning", "[env]") {
  // value, switches CUDA off, warns that the value is not recognised
  auto [value, disabled, unrecognised] = GENERATE(table<std::string, bool, bool>({
      {"1", true, false}, {"true", true, false}, {"YES", true, false}, {" on ", true, false},
      {"0", false, false}, {"", false, false}, {"off", false, false}, {"2", false, true}}));
  Report r = healthy_report();
  r.tessera_disable_cuda = value;
  const auto checks = check(r);
  const Check* c = find_check(checks, "env.TESSERA_DISABLE_CUDA");
  INFO("TESSERA_DISABLE_CUDA=" << value);
  CHECK((c != nullptr) == (disabled || unrecognised));
  CHECK(usable(r) == !disabled);
  if (unrecognised) {
    CHECK(c->status == Status::WARN);
    CHECK_THAT(c->reason, Catch::Contains("not a recognised value"));
  }
  if (disabled) {
    CHECK(c->status == Status::WARN);
    CHECK_THAT(cuda_unavailable_reason(r), Catch::Contains("TESSERA_DISABLE_CUDA"));
    CHECK(status_of(r, "env.TESSERA_DISABLE_CUDA", CheckOptions{true}) == Status::FAIL);
    // With CUDA off, a broken stack cannot stop the run: FAIL becomes WARN.
    r.cudnn.version = Version::from_cudnn(8907);
    CHECK(status_of(r, "cudnn") == Status::WARN);
    CHECK_THAT(reason_of(r, "cudnn"), Catch::Contains("no effect now"));
  }
}

TEST_CASE("env: a CPU-only build reports the stack it finds without failing on it", "[env]") {
  Report r = healthy_report();
  r.build.with_cuda = false;
  r.build.cuda_architectures.clear();
  r.build.cuda_compiled = r.build.cublas_compiled = r.build.cudnn_compiled = Version();
  r.driver.library.version = Version::from_cuda(11080);
  r.cuda_runtime.version = Version::from_cuda(12010);
  const auto checks = check(r);
  CHECK(find_check(checks, "build.cuda")->status == Status::OK);
  CHECK(find_check(checks, "driver_vs_runtime")->status == Status::WARN);  // would be FAIL
  CHECK(find_check(checks, "gpu.0") == nullptr);
  CHECK_THAT(find_check(checks, "runtime")->reason, Catch::Contains("not used: CPU-only build"));
  CHECK(worst(checks) == Status::WARN);
}

TEST_CASE("env: text and JSON say the same", "[env]") {
  Report r = healthy_report();
  r.cudnn.version = Version::from_cudnn(8907);  // one FAIL
  const auto checks = check(r);
  const std::string text = format_text(r, checks);
  CHECK_THAT(text, Catch::Contains("Summary: " + summary(r, checks)));
  CHECK_THAT(text, Catch::Contains("FAIL cudnn"));
  CHECK_THAT(text, Catch::Contains("NVIDIA A100-SXM4-40GB, cc 8.0, 40.0 GiB, 108 SMs, SASS sm_80"));
  const auto j = nlohmann::json::parse(format_json(r, checks));
  CHECK(j["summary"] == summary(r, checks));
  CHECK(j["cuda_usable"] == false);
  CHECK(j["worst"] == "FAIL");
  CHECK(j["checks"].size() == checks.size());
  CHECK(j["cudnn"]["version"] == "8.9.7");
  CHECK(j["build"]["compiled"]["cudnn"] == "9.1.0");
  CHECK(j["driver"]["cuda_version"] == "12.4");
  CHECK(j["gpus"][0]["compute_capability"] == "8.0");
  CHECK(j["gpus"][0]["code"] == "sass");
  CHECK(j["environment"]["TESSERA_DISABLE_CUDA"].is_null());
  CHECK_THAT(j["summary"].get<std::string>(), Catch::StartsWith("FAIL: cuDNN 8.9.7"));
}

TEST_CASE("env: collect() on this machine", "[env]") {
  const Report r = collect();
  CHECK(r.build.tessera_version == TESSERA_VERSION_STRING);
  CHECK(r.build.with_cuda == (TESSERA_WITH_CUDA_BUILD != 0));
  CHECK(r.build.cxx_standard >= 201703L);
  CHECK_FALSE(r.build.eigen_version.empty());
  CHECK(r.build.openmp_max_threads >= 1);
  if (!r.driver.library.found) {
    CHECK_FALSE(r.driver.library.error.empty());
    CHECK(r.gpus.empty());
  }
  for (const Library* lib : {&r.driver.library, &r.cuda_runtime, &r.cublas, &r.cudnn}) {
    CHECK_FALSE(lib->tried.empty());
    if (lib->found) {
      CHECK(lib->version.known());
      CHECK_FALSE(lib->path.empty());
    } else {
      CHECK_FALSE(lib->error.empty());
    }
  }
  for (const auto& g : r.gpus) {
    CHECK(g.cc_major >= 3);
    CHECK(g.total_memory_bytes > 0);
    CHECK(g.multiprocessor_count > 0);
  }
  // Libraries collect() opened itself do not count as linked on a second look.
  const Report again = collect();
  CHECK(again.cuda_runtime.preloaded == r.cuda_runtime.preloaded);
  CHECK(again.cudnn.preloaded == r.cudnn.preloaded);
  CHECK(&process_report() == &process_report());
  CHECK(cuda_unavailable_reason(process_report()) == cuda_unavailable_reason(again));
  const auto checks = check(r);
  CHECK_THAT(format_text(r, checks), Catch::Contains("Summary: "));
  CHECK_NOTHROW(nlohmann::json::parse(format_json(r, checks)));
}
