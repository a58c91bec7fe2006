// tessera-env beyond Tessera's own chain (issue 23), on the fixture trees of tests/data/env,
// fake library files with real ELF sonames written in temporary folders, an injected
// ld.so cache listing, a fake libnvidia-ml.so.1 built by the tests (tests/fake_nvml) with
// scripted values, and hand-built Reports. One file: the env tests compile once (CI cost).
#include "env_fixtures.hpp"
#include "env/text_scan.hpp"

#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <tuple>

using namespace tessera::env;
using namespace env_fixtures;

// ==== Python environments and their wheels; PTX ISA ==========================

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
  CHECK_THAT(summary(with_env(e, r), checks), Catch::StartsWith("FAIL: venv:cu13: driver supports CUDA 12.8"));
  // With a FAIL of Tessera's own, the summary leads with that one.
  Report both = with_env(e, r);
  both.cudnn.version = Version::from_cudnn(8907);
  CHECK_THAT(summary(both, check(both)), Catch::StartsWith("FAIL: cuDNN 8.9.7"));

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

// ==== the loader path: ELF sonames, ldconfig listings, shadowing =============

namespace {

/// A loader scan that sees only the fixture folders.
LoaderOptions fixture_loader(const std::string& ld_library_path, const std::string& cache) {
  LoaderOptions o;
  o.ld_library_path = ld_library_path;
  o.ld_cache_listing = cache;
  o.toolkit_dirs = std::vector<std::string>{};
  o.default_dirs = std::vector<std::string>{};
  o.tessera_binaries = std::vector<std::string>{};
  return o;
}

std::string cache_line(const std::string& soname, const std::string& path) {
  return "\t" + soname + " (libc6,x86-64) => " + path + "\n";
}

}  // namespace

TEST_CASE("env loader: ELF dynamic sections are read", "[env][loader]") {
  TempDir t;
  write_fake_elf(t.path / "libcudnn.so.9.1.0", "libcudnn.so.9", "$ORIGIN:/opt/x", {"libcudnn_graph.so.9", "libc.so.6"});
  const ElfDynamic e = read_elf_dynamic((t.path / "libcudnn.so.9.1.0").string());
  REQUIRE(e.ok);
  CHECK(e.soname == "libcudnn.so.9");
  CHECK(e.runpath == std::vector<std::string>{"$ORIGIN", "/opt/x"});
  CHECK(e.rpath.empty());
  CHECK(e.needed == std::vector<std::string>{"libcudnn_graph.so.9", "libc.so.6"});
  write_file(t.path / "not-elf.so", "just text");
  const ElfDynamic bad = read_elf_dynamic((t.path / "not-elf.so").string());
  CHECK_FALSE(bad.ok);
  CHECK_THAT(bad.error, Catch::Contains("is not an ELF file"));
  CHECK_FALSE(read_elf_dynamic((t.path / "missing.so").string()).ok);
  // A real shared object of this machine: libc's soname.
  const ElfDynamic libc = read_elf_dynamic("/proc/self/exe");
  CHECK(libc.ok);
  CHECK(std::find(libc.needed.begin(), libc.needed.end(), "libc.so.6") != libc.needed.end());
}

TEST_CASE("env loader: ldconfig -p listings", "[env][loader]") {
  const std::string listing =
      "914 libs found in cache `/etc/ld.so.cache'\n"
      "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n"
      "\tlibcudnn_ops.so.9 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn_ops.so.9\n"
      "\tlibcudnn.so.9 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn.so.9\n"
      "\tlibcudnn.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn.so\n"
      "\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda-12.4/lib64/libcudart.so.12\n"
      "\tlibnccl.so.2 (libc6,x86-64, OS ABI: Linux 3.2.0) => /usr/lib/x86_64-linux-gnu/libnccl.so.2\n"
      "\tlibcudart.so.12 (libc6) => /usr/lib/i386-linux-gnu/libcudart.so.12\n";
  const auto entries = parse_ld_cache_listing(listing);
  REQUIRE(entries.size() == 3);
  CHECK(entries[0] == std::make_pair(std::string("libcudnn.so.9"), std::string("/usr/lib/x86_64-linux-gnu/libcudnn.so.9")));
  CHECK(entries[1].first == "libcudart.so.12");
  CHECK(entries[2].first == "libnccl.so.2");
}

TEST_CASE("env loader: a shadowed libcudnn on LD_LIBRARY_PATH", "[env][loader]") {
  TempDir t;
  // An old cuDNN 9.0 in a folder on LD_LIBRARY_PATH, cuDNN 9.1 from the system package in the cache.
  install_library(t.path / "old-cudnn/lib", "libcudnn.so.9", "libcudnn.so.9.0.0");
  install_library(t.path / "usr-lib", "libcudnn.so.9", "libcudnn.so.9.1.0");
  install_library(t.path / "usr-lib", "libcudart.so.12", "libcudart.so.12.4.127");
  Report r = healthy_cuda12_report();
  r.python_envs.push_back(materialize_env("miniconda3/envs/torch-cu12", t.path / "conda-env", "conda:torch-cu12"));
  r.python_envs_scanned = true;
  const std::string cache =
      cache_line("libcudnn.so.9", (t.path / "usr-lib/libcudnn.so.9").string()) +
      cache_line("libcudart.so.12", (t.path / "usr-lib/libcudart.so.12").string());
  r.loader = scan_loader(r, fixture_loader((t.path / "old-cudnn/lib").string() + ":", cache));
  const LoaderReport& L = r.loader;
  CHECK(L.cache_source == "injected listing");
  CHECK(L.ld_library_path == std::vector<std::string>{(t.path / "old-cudnn/lib").string()});

  // Copies: three of libcudnn.so.9 (LD_LIBRARY_PATH, cache, wheel), with versions from the
  // file name and from the wheel's dist-info, and sonames from their ELF headers.
  int cudnn_copies = 0;
  for (const auto& c : L.copies) {
    if (c.file != "libcudnn.so.9") continue;
    ++cudnn_copies;
    CHECK(c.soname == "libcudnn.so.9");
    if (c.resolved_path.find("old-cudnn") != std::string::npos) CHECK((c.version == "9.0.0" && c.version_source == "file name"));
    if (c.resolved_path.find("conda-env") != std::string::npos)
      CHECK((c.version == "9.1.0.70" && c.version_source == "wheel nvidia-cudnn-cu12"));
  }
  CHECK(cudnn_copies == 3);
  REQUIRE(L.processes.size() == 2);
  CHECK(L.processes[1].process == "python:conda:torch-cu12");
  const auto [w, via] = resolve(L, L.processes[0], "libcudnn.so.9");
  REQUIRE(w >= 0);
  CHECK(via == "LD_LIBRARY_PATH");
  CHECK(L.copies[static_cast<size_t>(w)].version == "9.0.0");

  const auto checks = check(r);
  const Check s = require_check(checks, "shadow.libcudnn.so.9");
  CHECK(s.status == Status::WARN);
  CHECK_THAT(s.reason, Catch::Contains("(9.0.0) from LD_LIBRARY_PATH, which shadows the newer") && Catch::Contains("9.1.0"));
  CHECK_THAT(s.fix, Catch::Contains("in LD_LIBRARY_PATH"));
  const Check p = require_check(checks, "python.conda:torch-cu12.shadow.libcudnn.so.9");
  CHECK(p.status == Status::WARN);
  CHECK_THAT(p.reason, Catch::Contains("shadows the environment's own") && Catch::Contains("wheel nvidia-cudnn-cu12"));
  CHECK_THAT(p.fix, Catch::Contains("env -u LD_LIBRARY_PATH"));
  // libcudart.so.12: the cache's copy and the wheel's; nothing on LD_LIBRARY_PATH hides the wheel's.
  const Check rt = require_check(checks, "python.conda:torch-cu12.shadow.libcudart.so.12");
  CHECK(rt.status == Status::OK);
  CHECK_THAT(rt.reason, Catch::Contains("loads its own wheel's"));

  // Without the LD_LIBRARY_PATH entry: Tessera gets the cache's 9.1.0, the env its wheel.
  r.loader = scan_loader(r, fixture_loader("", cache));
  const auto clean = check(r);
  CHECK(require_check(clean, "shadow.libcudnn.so.9").status == Status::OK);
  CHECK(require_check(clean, "python.conda:torch-cu12.shadow.libcudnn.so.9").status == Status::OK);

  const auto j = nlohmann::json::parse(format_json(r, clean));
  CHECK(j["loader"]["cache_source"] == "injected listing");
  CHECK(j["loader"]["processes"][0]["loads"]["libcudnn.so.9"]["via"] == "ld.so.cache");
  CHECK_THAT(format_text(r, clean), Catch::Contains("Library copies on the loader's path"));
}

TEST_CASE("env loader: RPATH comes before LD_LIBRARY_PATH, RUNPATH after; $ORIGIN is expanded", "[env][loader]") {
  TempDir t;
  install_library(t.path / "app/lib", "libcublas.so.12", "libcublas.so.12.4.5.8");
  install_library(t.path / "env-lib", "libcublas.so.12", "libcublas.so.12.1.3.1");
  write_fake_elf(t.path / "app/bin/with-runpath", "", "$ORIGIN/../lib");
  write_fake_elf(t.path / "app/bin/with-rpath", "", "$ORIGIN/../lib", {}, true);
  Report r = healthy_cuda12_report();
  LoaderOptions o = fixture_loader((t.path / "env-lib").string(), "");
  o.tessera_binaries = std::vector<std::string>{(t.path / "app/bin/with-runpath").string()};
  r.loader = scan_loader(r, o);
  REQUIRE(r.loader.tessera_binaries.size() == 1);
  CHECK(r.loader.tessera_binaries[0].runpath == std::vector<std::string>{"$ORIGIN/../lib"});
  auto [w, via] = resolve(r.loader, r.loader.processes[0], "libcublas.so.12");
  REQUIRE(w >= 0);
  CHECK(via == "LD_LIBRARY_PATH");  // RUNPATH does not beat LD_LIBRARY_PATH
  const Check c = require_check(check(r), "shadow.libcublas.so.12");
  CHECK(c.status == Status::WARN);  // 12.1.3.1 shadows 12.4.5.8
  CHECK_THAT(c.reason, Catch::Contains("12.1.3.1") && Catch::Contains("12.4.5.8"));

  o.tessera_binaries = std::vector<std::string>{(t.path / "app/bin/with-rpath").string()};
  r.loader = scan_loader(r, o);
  CHECK(r.loader.tessera_binaries[0].rpath == std::vector<std::string>{"$ORIGIN/../lib"});
  std::tie(w, via) = resolve(r.loader, r.loader.processes[0], "libcublas.so.12");
  REQUIRE(w >= 0);
  CHECK(via == "RPATH of with-rpath");  // DT_RPATH (without DT_RUNPATH) comes first
  CHECK(r.loader.copies[static_cast<size_t>(w)].resolved_path == fs::canonical(t.path / "app/lib/libcublas.so.12.4.5.8").string());
  CHECK(require_check(check(r), "shadow.libcublas.so.12").status == Status::OK);
}

TEST_CASE("env loader: versions compare at the precision both copies have", "[env][loader]") {
  // cudaRuntimeGetVersion says 12.4; the wheel's dist-info says 12.4.127: the same release.
  TempDir t;
  install_library(t.path / "a", "libcudart.so.12", "libcudart.so.12.4");
  install_library(t.path / "b", "libcudart.so.12", "libcudart.so.12.4.127");
  install_library(t.path / "c", "libcudart.so.12", "libcudart.so.12.6.77");
  Report r = healthy_cuda12_report();
  LoaderOptions o = fixture_loader((t.path / "a").string() + ":" + (t.path / "b").string(), "");
  r.loader = scan_loader(r, o);
  CHECK(require_check(check(r), "shadow.libcudart.so.12").status == Status::OK);
  o.ld_library_path = (t.path / "a").string() + ":" + (t.path / "c").string();
  r.loader = scan_loader(r, o);
  const Check c = require_check(check(r), "shadow.libcudart.so.12");
  CHECK(c.status == Status::WARN);  // 12.4 shadows 12.6.77
  CHECK_THAT(c.reason, Catch::Contains("12.6.77"));
}

TEST_CASE("env loader: this machine", "[env][loader]") {
  const LoaderReport L = scan_loader(collect(CollectOptions{false, {}, false, {}}));
  CHECK(L.scanned);
  CHECK_FALSE(L.cache_source.empty());
  REQUIRE_FALSE(L.processes.empty());
  CHECK(L.processes[0].process == "tessera");
  REQUIRE_FALSE(L.tessera_binaries.empty());
  CHECK(L.tessera_binaries[0].error.empty());  // the test binary is a readable ELF file
  for (const auto& c : L.copies) {
    CHECK_FALSE(c.resolved_path.empty());
    CHECK_FALSE(c.found_via.empty());
  }
}

// ==== GPU health through the fake libnvidia-ml.so.1 (tests/fake_nvml) ========

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

// ==== --explain: every table entry in a state where its check fires ==========

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
    REQUIRE_FALSE(e.patterns.empty());
    for (const auto& p : e.patterns) CHECK(p.size() >= 8);  // specific enough not to match by accident
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
  CHECK(explain("cudaErrorInsufficientDriver", {}).at(0).entry->id == "insufficient-driver");  // code names
  CHECK(explain("CUDA DRIVER VERSION IS INSUFFICIENT FOR CUDA RUNTIME VERSION", {}).at(0).entry->id == "insufficient-driver");
  CHECK(explain("version `libcudnn_ops_infer.so.8' not found (required by libcudnn_cnn_infer.so.8)", {}).at(0).entry->id ==
        "cudnn-symbol-version");
  CHECK(explain("device cuda:1 is not available: ...", {}).at(0).entry->id == "tessera-cuda-unavailable");
  CHECK(explain("libcudnn.so.9: cannot open shared object file", {}).empty());  // not a cuDNN 8 sub-library
  const auto j = nlohmann::json::parse(format_explanations_json("x: CUBLAS_STATUS_NOT_INITIALIZED", explain("x: CUBLAS_STATUS_NOT_INITIALIZED", {})));
  CHECK(j["schema"] == kJsonSchema);
  CHECK(j["recognised"] == true);
  CHECK(j["explanations"][0]["id"] == "cublas-not-initialized");
  CHECK(nlohmann::json::parse(format_explanations_json("nothing", {}))["recognised"] == false);
}

// ==== the string scans that replace <regex> in src/env ===========================

TEST_CASE("env text scans: kernel module line, dotted numbers, Python assignments", "[env]") {
  using namespace tessera::env::detail;
  CHECK(kernel_module_release_from("NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.124.06  Wed Feb 26 23:43:51 UTC 2025") ==
        "570.124.06");
  CHECK(kernel_module_release_from("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  "
                                   "(dvs-builder@U16-I2-C07-33-3)") == "580.159.04");
  CHECK(kernel_module_release_from("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.82") == "470.82");
  CHECK(kernel_module_release_from("no module here 1.2.3").empty());
  CHECK(dotted_digits("13.0.96", 2));
  CHECK_FALSE(dotted_digits("13", 2));
  CHECK_FALSE(dotted_digits("13..0"));
  CHECK_FALSE(dotted_digits("x86_64"));
  std::string v;
  CHECK((python_string_assignment("cuda: Optional[str] = '12.4'", "cuda", v) && v == "12.4"));
  CHECK((python_string_assignment("__version__ = \"2.9.0+cu130\"", "__version__", v) && v == "2.9.0+cu130"));
  CHECK_FALSE(python_string_assignment("cuda: Optional[str] = None", "cuda", v));
  CHECK_FALSE(python_string_assignment("cudart = '1'", "cuda", v));
}
