// Shared by the env tests: a temporary folder, a fake HOME pointing at the fixture trees of
// tests/data/env, and lookups of checks by name.
#pragma once
#include "tessera/env/report.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

namespace env_fixtures {

namespace fs = std::filesystem;

inline std::string data_dir() { return std::string(TESSERA_TEST_DATA_DIR) + "/env"; }

/// A fresh folder under the system's temporary folder, removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("tessera-env-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

/// Writes a minimal 64-bit little-endian ELF shared object: one PT_LOAD covering the file,
/// a PT_DYNAMIC with DT_SONAME, DT_RUNPATH (DT_RPATH when `as_rpath`), DT_NEEDED (those
/// given), DT_STRTAB and DT_STRSZ.
/// Enough for read_elf_dynamic and ldconfig; not loadable.
inline void write_fake_elf(const fs::path& p, const std::string& soname, const std::string& runpath = "",
                           const std::vector<std::string>& needed = {}, bool as_rpath = false) {
  std::string strtab(1, '\0');
  auto add_str = [&](const std::string& s) {
    const auto off = strtab.size();
    strtab += s;
    strtab += '\0';
    return static_cast<Elf64_Xword>(off);
  };
  std::vector<Elf64_Dyn> dyn;
  auto entry = [&](Elf64_Sxword tag, Elf64_Xword v) {
    Elf64_Dyn d{};
    d.d_tag = tag;
    d.d_un.d_val = v;
    dyn.push_back(d);
  };
  for (const auto& n : needed) entry(DT_NEEDED, add_str(n));
  if (!soname.empty()) entry(DT_SONAME, add_str(soname));
  if (!runpath.empty()) entry(as_rpath ? DT_RPATH : DT_RUNPATH, add_str(runpath));
  const Elf64_Off str_off = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr);
  Elf64_Off dyn_off = str_off + strtab.size();
  dyn_off = (dyn_off + 7) / 8 * 8;
  entry(DT_STRTAB, str_off);
  entry(DT_STRSZ, strtab.size());
  entry(DT_NULL, 0);
  const Elf64_Xword total = dyn_off + dyn.size() * sizeof(Elf64_Dyn);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_DYN;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 2;
  Elf64_Phdr load{}, dynamic{};
  load.p_type = PT_LOAD;
  load.p_flags = PF_R;
  load.p_filesz = load.p_memsz = total;
  load.p_align = 0x1000;
  dynamic.p_type = PT_DYNAMIC;
  dynamic.p_flags = PF_R;
  dynamic.p_offset = dynamic.p_vaddr = dynamic.p_paddr = dyn_off;
  dynamic.p_filesz = dynamic.p_memsz = dyn.size() * sizeof(Elf64_Dyn);
  dynamic.p_align = 8;
  std::string bytes(total, '\0');
  std::memcpy(&bytes[0], &eh, sizeof(eh));
  std::memcpy(&bytes[sizeof(eh)], &load, sizeof(load));
  std::memcpy(&bytes[sizeof(eh) + sizeof(load)], &dynamic, sizeof(dynamic));
  std::memcpy(&bytes[str_off], strtab.data(), strtab.size());
  std::memcpy(&bytes[dyn_off], dyn.data(), dyn.size() * sizeof(Elf64_Dyn));
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

/// A versioned library file `dir/<real>` with soname `soname` and the link `dir/<soname>` to it,
/// as packages install them (libcudnn.so.9 -> libcudnn.so.9.1.0).
inline void install_library(const fs::path& dir, const std::string& soname, const std::string& real) {
  write_fake_elf(dir / real, soname);
  fs::create_symlink(real, dir / soname);
}

/// An environment map for DiscoveryOptions::getenv.
inline std::function<std::optional<std::string>(const std::string&)> vars(std::map<std::string, std::string> m) {
  return [m](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

/// Discovery that sees only the fixture trees: HOME at `home`, no system or default roots.
inline tessera::env::DiscoveryOptions fixture_discovery(const std::string& home, std::map<std::string, std::string> env = {}) {
  tessera::env::DiscoveryOptions o;
  env["HOME"] = home;
  o.getenv = vars(env);
  o.system_site_packages = std::vector<std::string>{data_dir() + "/system/dist-packages"};
  o.conda_roots = std::vector<std::string>{};
  return o;
}

inline const tessera::env::Check* find_check(const std::vector<tessera::env::Check>& checks, const std::string& name) {
  auto it = std::find_if(checks.begin(), checks.end(), [&](const tessera::env::Check& c) { return c.name == name; });
  return it == checks.end() ? nullptr : &*it;
}

/// The check named `name`; fails the test case when it is missing.
inline tessera::env::Check require_check(const std::vector<tessera::env::Check>& checks, const std::string& name) {
  const tessera::env::Check* c = find_check(checks, name);
  if (!c) {
    std::string names;
    for (const auto& k : checks) names += k.name + " ";
    FAIL("check " << name << " missing; present: " << names);
  }
  return *c;
}

/// A consistent CUDA 12.4 machine (driver 550, one A100) without Python environments.
inline tessera::env::Report healthy_cuda12_report() {
  using namespace tessera::env;
  Report r;
  r.build.tessera_version = "0.1.0";
  r.build.with_cuda = true;
  r.build.cuda_architectures = "75-real,80-real,86-real,89-real,90";
  r.build.cuda_compiled = Version(12, 4, 131);
  r.build.cublas_compiled = Version(12, 4, 5);
  r.build.cudnn_compiled = Version(9, 1, 0);
  r.driver.library.found = true;
  r.driver.library.path = "/usr/lib/x86_64-linux-gnu/libcuda.so.1";
  r.driver.library.version = Version::from_cuda(12040);
  r.driver.release = "550.54.15";
  r.driver.init_result = 0;
  r.cuda_runtime.found = true;
  r.cuda_runtime.path = "/usr/local/cuda-12.4/lib64/libcudart.so.12";
  r.cuda_runtime.version = Version::from_cuda(12040);
  r.cublas.found = true;
  r.cublas.path = "/usr/local/cuda-12.4/lib64/libcublas.so.12";
  r.cublas.version = Version(12, 4, 5);
  r.cublas_cuda_version = Version::from_cuda(12040);
  r.cudnn.found = true;
  r.cudnn.path = "/usr/lib/x86_64-linux-gnu/libcudnn.so.9";
  r.cudnn.version = Version::from_cudnn(90100);
  r.cudnn_cuda_version = Version::from_cuda(12020);
  Gpu g;
  g.name = "NVIDIA A100-SXM4-40GB";
  g.cc_major = 8;
  g.total_memory_bytes = 40ull << 30;
  g.multiprocessor_count = 108;
  r.gpus.push_back(g);
  return r;
}

/// The fixture environment at tests/data/env/<relative prefix>, read as discovery would.
inline tessera::env::PythonEnv fixture_env(const std::string& relative, const std::string& label) {
  tessera::env::DiscoveryOptions o = fixture_discovery("/nonexistent");
  o.system_site_packages = std::vector<std::string>{};
  o.extra = {data_dir() + "/" + relative};
  auto envs = tessera::env::find_python_envs(o);
  REQUIRE(envs.size() == 1);
  envs[0].label = label;
  return envs[0];
}

/// Copies the fixture environment tests/data/env/<relative> into `into` and creates every
/// library its wheels' RECORDs list as a fake ELF file with the file name as soname; returns
/// it read back with the given label.
inline tessera::env::PythonEnv materialize_env(const std::string& relative, const fs::path& into, const std::string& label) {
  fs::copy(data_dir() + "/" + relative, into, fs::copy_options::recursive);
  tessera::env::DiscoveryOptions o = fixture_discovery("/nonexistent");
  o.system_site_packages = std::vector<std::string>{};
  o.extra = {into.string()};
  auto envs = tessera::env::find_python_envs(o);
  REQUIRE(envs.size() == 1);
  for (const auto& d : envs[0].distributions)
    for (const auto& lib : d.libraries) write_fake_elf(lib, fs::path(lib).filename().string());
  envs[0].label = label;
  return envs[0];
}

}  // namespace env_fixtures
