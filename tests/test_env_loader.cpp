// tessera-env's loader scan (issue 23): ELF dynamic sections, the ld.so cache listing, and
// which copy of a CUDA library Tessera and each Python environment load, on fake library
// files with real ELF sonames in temporary folders.
#include "env_fixtures.hpp"

#include <cstdlib>
#include <tuple>

using namespace tessera::env;
using namespace env_fixtures;

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
