// tessera-env's GPU health (issue 23) through a fake libnvidia-ml.so.1 built by the tests
// (tests/fake_nvml) that answers from a script file.
#include "env_fixtures.hpp"

#include <cstdlib>

using namespace tessera::env;
using namespace env_fixtures;

namespace {

/// Points the fake NVML at `script` for the next collect_nvml(), and back at nothing after.
struct ScriptedNvml {
  TempDir dir;
  explicit ScriptedNvml(const std::string& script) {
    write_file(dir.path / "nvml.script", script);
    ::setenv("TESSERA_FAKE_NVML_SCRIPT", (dir.path / "nvml.script").c_str(), 1);
  }
  ~ScriptedNvml() { ::unsetenv("TESSERA_FAKE_NVML_SCRIPT"); }
  Nvml collect() const { return collect_nvml(TESSERA_FAKE_NVML); }
};

/// One healthy H100 as NVML describes it, with `extra` lines overriding.
std::string h100(const std::string& extra = "") {
  return "driver 570.124.06\ncount 1\n0.name NVIDIA H100 80GB HBM3\n0.uuid GPU-0f2a\n0.ecc 1 1\n0.ecc_uncorrected 0\n"
         "0.retired_pending 0\n0.remap 0 0\n0.mig 0 0\n0.compute_mode 0\n0.persistence 1\n"
         "0.memory 85520809984 560000000\n0.processes 0\n0.clocks 0x1\n" +
         extra;
}

Report with_nvml(const Nvml& n) {
  Report r = healthy_cuda12_report();
  r.nvml = n;
  return r;
}

}  // namespace

TEST_CASE("env nvml: a healthy GPU", "[env][nvml]") {
  const ScriptedNvml s(h100());
  const Nvml n = s.collect();
  REQUIRE(n.found);
  CHECK(n.init_result == 0);
  CHECK(n.driver_version == "570.124.06");
  REQUIRE(n.gpus.size() == 1);
  const GpuHealth& g = n.gpus[0];
  CHECK(g.name == "NVIDIA H100 80GB HBM3");
  CHECK(g.uuid == "GPU-0f2a");
  CHECK((g.ecc_current == 1 && g.ecc_pending == 1 && g.ecc_uncorrected_volatile == 0));
  CHECK((g.mig_current == 0 && g.compute_mode == 0 && g.persistence == 1 && g.processes == 0));
  CHECK((g.memory_known && g.memory_total == 85520809984ull && g.memory_used == 560000000ull));
  CHECK((g.clock_events_known && g.clock_event_reasons == 1));
  const auto checks = check(with_nvml(n));
  CHECK(require_check(checks, "nvml").status == Status::OK);
  const Check c = require_check(checks, "nvml.0");
  CHECK(c.status == Status::OK);
  CHECK_THAT(c.reason, Catch::Contains("ECC on, no uncorrectable errors") && Catch::Contains("compute mode Default") &&
                           Catch::Contains("clock events: GpuIdle"));
  CHECK(worst(checks) == Status::OK);
  const auto j = nlohmann::json::parse(format_json(with_nvml(n), checks));
  CHECK(j["nvml"]["gpus"][0]["memory_total_bytes"] == 85520809984ull);
  CHECK(j["nvml"]["gpus"][0]["clock_events"] == "GpuIdle");
}

TEST_CASE("env nvml: ECC, MIG and compute-mode warnings", "[env][nvml]") {
  struct Case {
    std::string lines, check;
    Status status;
    std::string phrase, fix;
  };
  auto [lines, name, status, phrase, fix] = GENERATE(values<Case>({
      {"0.ecc_uncorrected 3\n", "nvml.0.ecc", Status::WARN, "3 uncorrectable ECC error(s)", "nvidia-smi -r -i 0"},
      {"0.retired_pending 1\n", "nvml.0.ecc", Status::WARN, "pages wait for retirement", "reboot"},
      {"0.remap 1 0\n", "nvml.0.ecc", Status::WARN, "rows wait for remapping", "reset it"},
      {"0.remap 0 1\n", "nvml.0.ecc", Status::WARN, "remapping FAILED", "RMA"},
      {"0.ecc 1 0\n", "nvml.0.ecc", Status::WARN, "from on to off at the next reboot", "reboot"},
      {"0.mig 1 1\n", "nvml.0.mig", Status::WARN, "MIG mode is on", "CUDA_VISIBLE_DEVICES"},
      {"0.mig 0 1\n", "nvml.0.mig", Status::WARN, "turns on at the next GPU reset", "-mig 0"},
      {"0.compute_mode 2\n", "nvml.0.compute_mode", Status::FAIL, "Prohibited", "-c DEFAULT"},
      {"0.compute_mode 3\n", "nvml.0.compute_mode", Status::WARN, "Exclusive_Process", "-c DEFAULT"},
      {"0.persistence 0\n", "nvml.0.persistence", Status::WARN, "persistence mode is off", "nvidia-persistenced"},
      {"0.memory 85520809984 40000000000\n0.processes 2\n", "nvml.0.memory", Status::WARN, "by 2 process(es)",
       "--query-compute-apps"},
      {"0.clocks 0x48\n", "nvml.0.clocks", Status::WARN, "HwSlowdown, HwThermalSlowdown", "cooling"},
  }));
  const ScriptedNvml s(h100(lines));  // later lines override the healthy ones
  const auto checks = check(with_nvml(s.collect()));
  INFO(lines);
  const Check c = require_check(checks, name);
  CHECK(c.status == status);
  CHECK_THAT(c.reason, Catch::Contains(phrase));
  CHECK_THAT(c.fix, Catch::Contains(fix));
  CHECK(find_check(checks, "nvml.0") == nullptr);  // the OK summary only when nothing fires
}

TEST_CASE("env nvml: driver/library version mismatch, unsupported queries, no NVML", "[env][nvml]") {
  {
    const ScriptedNvml s("init 18\n");
    const Nvml n = s.collect();
    CHECK(n.found);
    CHECK(n.init_result == 18);
    CHECK(n.init_error == "Driver/library version mismatch");
    const Check c = require_check(check(with_nvml(n)), "nvml");
    CHECK(c.status == Status::FAIL);
    CHECK_THAT(c.fix, Catch::Contains("reboot"));
  }
  {
    // A GPU that supports none of the queries (GeForce boards lack ECC and MIG): nothing fires.
    const ScriptedNvml s("count 1\n0.name NVIDIA GeForce RTX 4090\n");
    const Nvml n = s.collect();
    REQUIRE(n.gpus.size() == 1);
    CHECK(n.gpus[0].ecc_current == -1);
    CHECK(n.gpus[0].processes == -1);
    CHECK_FALSE(n.gpus[0].memory_known);
    CHECK(require_check(check(with_nvml(n)), "nvml.0").status == Status::OK);
  }
  const Nvml none = collect_nvml("/nonexistent/libnvidia-ml.so.1");
  CHECK(none.queried);
  CHECK_FALSE(none.found);
  CHECK_FALSE(none.error.empty());
  const auto checks = check(with_nvml(none));
  CHECK(find_check(checks, "nvml") == nullptr);
  CHECK(describe_clock_events(0x1 | 0x4 | 0x80) == "GpuIdle, SwPowerCap, HwPowerBrakeSlowdown");
}

TEST_CASE("env json: a report with every section filled", "[env][json]") {
  // Python environment, loader copies, NVML health, a GPU: the document env:json-schema
  // validates against docs/tessera-env.schema.json (written where TESSERA_ENV_JSON_OUT says).
  TempDir t;
  Report r = healthy_cuda12_report();
  r.python_envs.push_back(materialize_env("venv-cu13", t.path / "venv", "venv:cu13"));
  r.python_envs_scanned = true;
  install_library(t.path / "lib", "libcudnn.so.9", "libcudnn.so.9.1.0");
  LoaderOptions lo;
  lo.ld_library_path = (t.path / "lib").string();
  lo.ld_cache_listing = "";
  lo.toolkit_dirs = lo.default_dirs = std::vector<std::string>{};
  r.loader = scan_loader(r, lo);
  const ScriptedNvml s(h100("0.persistence 0\n"));
  r.nvml = s.collect();
  const auto checks = check(r);
  const std::string doc = format_json(r, checks);
  const auto j = nlohmann::json::parse(doc);
  CHECK(j["schema"] == "tessera-env/2");
  CHECK(j["nvml"]["gpus"].size() == 1);
  CHECK(j["loader"]["copies"].size() >= 2);
  CHECK(j["python_envs"][0]["distributions"].size() == 5);
  CHECK(j["gpus"].size() == 1);
  if (const char* out = std::getenv("TESSERA_ENV_JSON_OUT")) std::ofstream(out) << doc;
}
