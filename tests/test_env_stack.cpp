// tessera-env beyond Tessera's own chain (issue 23), on fixture trees (tests/data/env) and
// hand-built Reports: Python environments and their wheels.
#include "env_fixtures.hpp"

using namespace tessera::env;
using namespace env_fixtures;

namespace {

Report with_env(const PythonEnv& e, Report r = healthy_cuda12_report()) {
  r.python_envs.push_back(e);
  r.python_envs_scanned = true;
  return r;
}

}  // namespace

TEST_CASE("env python: distribution names and CUDA majors", "[env][python]") {
  CHECK(normalize_distribution_name("Nvidia_CUDNN.cu12") == "nvidia-cudnn-cu12");
  CHECK(normalize_distribution_name("torch") == "torch");
  auto major = [](std::string name, std::string version) {
    Distribution d;
    d.name = name;
    d.version = version;
    return distribution_cuda_major(d);
  };
  CHECK(major("nvidia-cudnn-cu12", "9.1.0.70") == 12);  // cuDNN's version is not CUDA's
  CHECK(major("nvidia-cudnn-cu13", "9.13.0.50") == 13);
  CHECK(major("nvidia-cuda-runtime-cu12", "12.4.127") == 12);
  CHECK(major("nvidia-cuda-runtime", "13.0.96") == 13);  // CUDA 13's toolkit wheels: no suffix, read the version
  CHECK(major("nvidia-cublas", "13.1.0.3") == 13);
  CHECK(major("nvidia-cufft", "12.0.0.15") == -1);  // cuFFT's version is its own: cannot tell
  CHECK(major("nvidia-nccl-cu13", "2.27.7") == 13);
  CHECK(major("jax-cuda12-plugin", "0.4.35") == 12);
  CHECK(major("cupy-cuda12x", "13.3.0") == 12);
  CHECK(major("cupy-cuda11x", "13.3.0") == 11);
  CHECK(major("torch", "2.5.1+cu124") == 12);
  CHECK(major("torch", "1.12.1+cu116") == 11);
  CHECK(major("torch", "2.9.0+cu130") == 13);
  CHECK(major("torch", "2.5.1") == -1);
  CHECK(major("numpy", "2.1.3") == -1);
}

TEST_CASE("env python: dist-info, RECORD and torch/version.py are read", "[env][python]") {
  const PythonEnv e = fixture_env("venv-cu13", "venv:cu13");
  CHECK(e.kind == "given");
  CHECK(e.torch_version == "2.9.0+cu130");
  CHECK(e.torch_cuda == "13.0");
  const Distribution* torch = e.find("torch");
  REQUIRE(torch);
  CHECK(torch->version == "2.9.0+cu130");
  REQUIRE(torch->requires_nvidia.size() == 4);
  CHECK(torch->requires_nvidia[2].name == "nvidia-cudnn-cu13");
  CHECK(torch->requires_nvidia[2].version == "9.13.0.50");
  const Distribution* rt = e.find("nvidia-cuda-runtime");
  REQUIRE(rt);
  CHECK(rt->version == "13.0.96");
  REQUIRE(rt->libraries.size() == 1);
  CHECK_THAT(rt->libraries[0], Catch::EndsWith("site-packages/nvidia/cu13/lib/libcudart.so.13"));
  const Distribution* cublas = e.find("nvidia-cublas");
  REQUIRE(cublas);
  CHECK(cublas->libraries.size() == 2);  // libcublas and libcublasLt share nvidia/cu13/lib
  CHECK(e.distributions.size() == 5);
}

TEST_CASE("env python: discovery finds conda, environments.txt, VIRTUAL_ENV, pyenv, WORKON_HOME, system", "[env][python]") {
  TempDir home;
  fs::create_directory_symlink(data_dir() + "/miniconda3", home.path / "miniconda3");
  write_file(home.path / ".conda/environments.txt",
             "# conda's registry of environments\n" + data_dir() + "/elsewhere/cupy-env\n" + data_dir() +
                 "/miniconda3/envs/mixed\n");
  fs::create_directories(home.path / ".pyenv/versions/3.12.1/lib/python3.12/site-packages");
  fs::create_directories(home.path / ".virtualenvs/proj/lib/python3.11/site-packages");
  write_file(home.path / ".virtualenvs/proj/pyvenv.cfg", "version = 3.11.2\n");
  DiscoveryOptions o = fixture_discovery(home.str(), {{"VIRTUAL_ENV", data_dir() + "/venv-cu13"},
                                                      {"CONDA_PREFIX", data_dir() + "/miniconda3/envs/torch-cu12"}});
  o.conda_roots = std::vector<std::string>{home.str() + "/miniconda3"};
  const auto envs = find_python_envs(o);
  std::vector<std::string> labels;
  for (const auto& e : envs) labels.push_back(e.label + " <- " + e.found_by);
  INFO([&] {
    std::string s;
    for (const auto& l : labels) s += l + "\n";
    return s;
  }());
  auto find = [&](const std::string& label) -> const PythonEnv* {
    for (const auto& e : envs)
      if (e.label == label) return &e;
    return nullptr;
  };
  REQUIRE(find("conda:torch-cu12"));
  CHECK(find("conda:torch-cu12")->found_by == "CONDA_PREFIX");  // the active env first, listed once
  REQUIRE(find("conda:base"));
  CHECK(find("conda:base")->distributions.empty());
  CHECK(find("conda:base")->distributions_scanned == 1);
  REQUIRE(find("conda:two-cudnn"));
  REQUIRE(find("conda:mixed"));
  CHECK(find("conda:mixed")->found_by != "~/.conda/environments.txt");  // already found in the installation
  REQUIRE(find("conda:cupy-env"));
  CHECK(find("conda:cupy-env")->found_by == "~/.conda/environments.txt");
  REQUIRE(find("venv:" + data_dir() + "/venv-cu13"));
  CHECK(find("venv:" + data_dir() + "/venv-cu13")->found_by == "VIRTUAL_ENV");
  REQUIRE(find("venv:" + home.str() + "/.virtualenvs/proj"));
  REQUIRE(find("pyenv:3.12.1"));
  REQUIRE(find("system:" + data_dir() + "/system/dist-packages"));
  CHECK(envs.size() == 9);
  CHECK(envs.front().label == "conda:torch-cu12");
}

TEST_CASE("env python: a consistent CUDA 12 env passes", "[env][python]") {
  const Report r = with_env(fixture_env("miniconda3/envs/torch-cu12", "conda:torch-cu12"));
  const auto checks = check(r);
  for (const char* n : {"python.conda:torch-cu12.wheels", "python.conda:torch-cu12.cudnn", "python.conda:torch-cu12.driver"}) {
    const Check c = require_check(checks, n);
    INFO(c.reason);
    CHECK(c.status == Status::OK);
  }
  CHECK_THAT(require_check(checks, "python.conda:torch-cu12.wheels").reason, Catch::Contains("CUDA 12 throughout (5 GPU packages)"));
  CHECK_THAT(require_check(checks, "python.conda:torch-cu12.cudnn").reason,
             Catch::Contains("nvidia-cudnn-cu12 9.1.0.70 satisfies torch 2.5.1+cu124"));
  CHECK(worst(checks) == Status::OK);
}

TEST_CASE("env python: the CUDA 13 layout is consistent, and torch/driver mismatches are judged", "[env][python]") {
  const PythonEnv e = fixture_env("venv-cu13", "venv:cu13");
  Report r = healthy_cuda12_report();
  r.driver.library.version = Version::from_cuda(13000);
  auto checks = check(with_env(e, r));
  CHECK(require_check(checks, "python.venv:cu13.wheels").status == Status::OK);
  CHECK(require_check(checks, "python.venv:cu13.cudnn").status == Status::OK);
  CHECK(require_check(checks, "python.venv:cu13.driver").status == Status::OK);

  // driver 12.8 (e.g. 570) with torch for CUDA 13: a major apart, FAIL with both fixes
  r.driver.library.version = Version::from_cuda(12080);
  checks = check(with_env(e, r));
  const Check d = require_check(checks, "python.venv:cu13.driver");
  CHECK(d.status == Status::FAIL);
  CHECK_THAT(d.reason, Catch::Contains("nvidia-cuda-runtime 13.0.96") && Catch::Contains("does not cross major versions"));
  CHECK_THAT(d.fix, Catch::Contains("supports CUDA 13.0") && Catch::Contains("whl/cu128"));
  // Another program's problem does not make Tessera's own CUDA unusable.
  CHECK(worst(checks) == Status::FAIL);
  CHECK(usable(with_env(e, r)));

  // same major, older minor: minor-version compatibility, WARN
  Report r12 = healthy_cuda12_report();
  r12.driver.library.version = Version::from_cuda(12020);
  const Check w = require_check(check(with_env(fixture_env("miniconda3/envs/torch-cu12", "c"), r12)), "python.c.driver");
  CHECK(w.status == Status::WARN);
  CHECK_THAT(w.reason, Catch::Contains("minor-version compatibility"));

  // no driver at all
  Report none = healthy_cuda12_report();
  none.driver.library = Library{};
  none.driver.library.error = "libcuda.so.1: cannot open shared object file";
  const Check n = require_check(check(with_env(e, none)), "python.venv:cu13.driver");
  CHECK(n.status == Status::WARN);
  CHECK_THAT(n.reason, Catch::Contains("CPU only"));
}

TEST_CASE("env python: torch for cu12 with a cuDNN wheel for cu13", "[env][python]") {
  const auto checks = check(with_env(fixture_env("miniconda3/envs/mixed", "conda:mixed")));
  const Check w = require_check(checks, "python.conda:mixed.wheels");
  CHECK(w.status == Status::FAIL);
  CHECK_THAT(w.reason, Catch::Contains("different CUDA major versions") && Catch::Contains("CUDA 13: nvidia-cudnn-cu13 9.13.0.50"));
  CHECK_THAT(w.fix, Catch::Contains("pip uninstall nvidia-cudnn-cu13"));
  const Check c = require_check(checks, "python.conda:mixed.cudnn");
  CHECK(c.status == Status::WARN);  // torch's pin is not installed, another cuDNN is
  CHECK_THAT(c.reason, Catch::Contains("needs nvidia-cudnn-cu12==9.1.0.70, which is not installed"));
  CHECK(c.fix == "pip install nvidia-cudnn-cu12==9.1.0.70");
}

TEST_CASE("env python: two cuDNN majors in one env", "[env][python]") {
  const auto checks = check(with_env(fixture_env("miniconda3/envs/two-cudnn", "conda:two-cudnn")));
  const Check c = require_check(checks, "python.conda:two-cudnn.cudnn");
  CHECK(c.status == Status::FAIL);
  CHECK_THAT(c.reason, Catch::Contains("two cuDNN majors") && Catch::Contains("nvidia-cudnn-cu11 8.9.6.50") &&
                           Catch::Contains("nvidia-cudnn-cu12 9.1.0.70"));
  CHECK_THAT(c.fix, Catch::Contains("torch needs nvidia-cudnn-cu12==9.1.0.70"));
  CHECK(require_check(checks, "python.conda:two-cudnn.wheels").status == Status::FAIL);
}

TEST_CASE("env python: pins against installed versions, torch built with an older cuDNN", "[env][python]") {
  PythonEnv e = fixture_env("miniconda3/envs/torch-cu12", "e");
  for (auto& d : e.distributions)
    if (d.name == "nvidia-cudnn-cu12") d.version = "9.0.0.312";  // older minor than the 9.1 torch was built with
  auto checks = check(with_env(e));
  CHECK(require_check(checks, "python.e.cudnn").status == Status::FAIL);
  CHECK_THAT(require_check(checks, "python.e.cudnn").reason, Catch::Contains("an older minor"));
  CHECK(require_check(checks, "python.e.wheels").status == Status::WARN);
  CHECK_THAT(require_check(checks, "python.e.wheels").reason,
             Catch::Contains("pins nvidia-cudnn-cu12==9.1.0.70, installed 9.0.0.312"));
}

TEST_CASE("env python: text and JSON list the environments", "[env][python]") {
  const Report r = with_env(fixture_env("venv-cu13", "venv:cu13"));
  const auto checks = check(r);
  const std::string text = format_text(r, checks);
  CHECK_THAT(text, Catch::Contains("Python environments") && Catch::Contains("venv:cu13") &&
                       Catch::Contains("torch/version.py: 2.9.0+cu130, CUDA 13.0") &&
                       Catch::Contains("nvidia-cudnn-cu13 9.13.0.50"));
  const auto j = nlohmann::json::parse(format_json(r, checks));
  CHECK(j["schema"] == kJsonSchema);
  REQUIRE(j["python_envs"].size() == 1);
  CHECK(j["python_envs"][0]["torch_cuda"] == "13.0");
  bool saw = false;
  for (const auto& d : j["python_envs"][0]["distributions"])
    if (d["name"] == "nvidia-cuda-runtime") {
      saw = true;
      CHECK(d["cuda_major"] == 13);
      CHECK(d["libraries"].size() == 1);
    }
  CHECK(saw);
}

TEST_CASE("env ptx: the PTX ISA table", "[env][ptx]") {
  auto [cuda, isa] = GENERATE(table<std::string, std::string>({{"9.0", "6.0"},
                                                               {"10.2", "6.5"},
                                                               {"11.0", "7.0"},
                                                               {"11.8", "7.8"},
                                                               {"12.4", "8.4"},
                                                               {"12.5", "8.5"},
                                                               {"12.6", "8.5"},  // 12.6 kept ISA 8.5
                                                               {"12.8", "8.7"},
                                                               {"12.9", "8.8"},
                                                               {"13.0", "9.0"}}));
  CHECK(ptx_isa_of_toolkit(Version::parse(cuda)).str() == isa);
  CHECK(max_ptx_isa_of_driver(Version::parse(cuda)).str() == isa);
  CHECK_FALSE(ptx_isa_of_toolkit(Version(8, 0)).known());
  CHECK_FALSE(ptx_isa_of_toolkit(Version(99, 0)).known());
  bool beyond = false;
  CHECK(max_ptx_isa_of_driver(Version(99, 0), &beyond).str() == "9.1");
  CHECK(beyond);
  int rows = 0;
  const PtxIsaRow* t = ptx_isa_table(&rows);
  REQUIRE(rows > 20);
  for (int i = 1; i < rows; ++i) {  // ordered by release, ISA never going back
    CHECK(Version(t[i - 1].cuda_major, t[i - 1].cuda_minor) < Version(t[i].cuda_major, t[i].cuda_minor));
    CHECK_FALSE(Version(t[i].ptx_major, t[i].ptx_minor) < Version(t[i - 1].ptx_major, t[i - 1].ptx_minor));
  }
}

TEST_CASE("env ptx: PTX newer than the driver can JIT", "[env][ptx]") {
  Report r = healthy_cuda12_report();  // PTX compute_90 in the binary
  r.build.cuda_compiled = Version(12, 8, 93);
  r.cuda_runtime.version = Version(12, 8);
  r.cublas_cuda_version = r.cudnn_cuda_version = Version(12, 8);
  r.driver.library.version = Version::from_cuda(12040);
  // The A100 has SASS: the PTX is unused there, a WARN that names error 222.
  Check c = require_check(check(r), "ptx");
  CHECK(c.status == Status::WARN);
  CHECK_THAT(c.reason, Catch::Contains("ISA 8.7 (nvcc 12.8)") && Catch::Contains("up to ISA 8.4") && Catch::Contains("(222)"));
  CHECK_THAT(c.fix, Catch::Contains("supports CUDA 12.8"));
  // A GPU without SASS needs the PTX: FAIL, for ptx and for that GPU.
  r.gpus[0].name = "NVIDIA B200";
  r.gpus[0].cc_major = 10;
  const auto checks = check(r);
  c = require_check(checks, "ptx");
  CHECK(c.status == Status::FAIL);
  CHECK_THAT(c.reason, Catch::Contains("the provided PTX was compiled with an unsupported toolchain"));
  CHECK(require_check(checks, "gpu.0").status == Status::FAIL);
  CHECK_THAT(require_check(checks, "gpu.0").reason, Catch::Contains("PTX ISA 8.7"));
  // nvcc 12.6 still writes ISA 8.5, which a 12.5 driver JITs.
  r.build.cuda_compiled = Version(12, 6, 85);
  r.cuda_runtime.version = Version(12, 6);
  r.driver.library.version = Version::from_cuda(12050);
  CHECK(require_check(check(r), "ptx").status == Status::OK);
  CHECK(require_check(check(r), "gpu.0").status == Status::OK);
  // No PTX in the binary: no ptx check.
  r.build.cuda_architectures = "80-real,90-real";
  CHECK(find_check(check(r), "ptx") == nullptr);
}
