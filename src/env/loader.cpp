// scan_loader(): every copy of the CUDA libraries on the loader's path and which one each
// kind of process loads, from ELF headers and folder listings (nothing is loaded).
// ELF layout: the System V ABI (<elf.h>); search order: ld.so(8).
#include "tessera/env/loader.hpp"

#include "tessera/env/report.hpp"

#include "fs_util.hpp"
#include "text_scan.hpp"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

namespace tessera::env {

namespace {

using fs_util::base_name;
using fs_util::dir_of;
using fs_util::is_dir;
using fs_util::real_path;
using fs_util::strip_slash;
using fs_util::is_file;

std::vector<std::string> split_path_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ":") {
    if (c == ':' || c == ';') {
      if (!cur.empty()) out.push_back(strip_slash(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

std::vector<std::string> glob_paths(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  ::globfree(&g);
  return out;
}

/// "cudnn" for libcudnn.so.9, "" for anything else (sub-libraries included).
std::string library_of(const std::string& file) {
  std::string_view stem, rest;
  if (!detail::split_shared_object(file, stem, rest)) return "";
  if (stem != "cudart" && stem != "cublas" && stem != "cudnn" && stem != "nccl") return "";
  if (rest.size() < 2 || rest[0] != '.' || !detail::all_digits(rest.substr(1))) return "";
  return std::string(stem);
}

/// Expands $ORIGIN / ${ORIGIN} in a RUNPATH entry of the object at `object_path`.
std::string expand_origin(const std::string& entry, const std::string& object_path) {
  const std::string origin = dir_of(real_path(object_path).empty() ? object_path : real_path(object_path));
  std::string out = entry;
  for (const std::string token : {"${ORIGIN}", "$ORIGIN"}) {
    size_t at;
    while ((at = out.find(token)) != std::string::npos) out.replace(at, token.size(), origin);
  }
  return strip_slash(out);
}

template <typename Ehdr, typename Phdr, typename Dyn>
ElfDynamic read_elf_class(std::ifstream& f, bool swap) {
  auto fix = [swap](auto v) {
    if (!swap) return v;
    decltype(v) out{};
    auto* a = reinterpret_cast<unsigned char*>(&v);
    auto* b = reinterpret_cast<unsigned char*>(&out);
    for (size_t i = 0; i < sizeof(v); ++i) b[i] = a[sizeof(v) - 1 - i];
    return out;
  };
  ElfDynamic d;
  Ehdr eh{};
  f.seekg(0);
  if (!f.read(reinterpret_cast<char*>(&eh), sizeof(eh))) return d.error = "truncated ELF header", d;
  const auto phoff = fix(eh.e_phoff);
  const auto phnum = fix(eh.e_phnum);
  if (fix(eh.e_phentsize) != sizeof(Phdr) || phnum == 0 || phnum > 4096) return d.error = "no program headers", d;
  std::vector<Phdr> ph(phnum);
  f.seekg(static_cast<std::streamoff>(phoff));
  if (!f.read(reinterpret_cast<char*>(ph.data()), static_cast<std::streamsize>(sizeof(Phdr) * phnum)))
    return d.error = "truncated program headers", d;
  const Phdr* dyn = nullptr;
  for (const auto& p : ph)
    if (fix(p.p_type) == PT_DYNAMIC) dyn = &p;
  if (!dyn) return d.error = "no dynamic section (a static executable or not a shared object)", d;
  const auto dyn_size = fix(dyn->p_filesz);
  if (dyn_size == 0 || dyn_size > (1u << 24)) return d.error = "bad dynamic section size", d;
  std::vector<Dyn> entries(dyn_size / sizeof(Dyn));
  f.seekg(static_cast<std::streamoff>(fix(dyn->p_offset)));
  if (!f.read(reinterpret_cast<char*>(entries.data()), static_cast<std::streamsize>(entries.size() * sizeof(Dyn))))
    return d.error = "truncated dynamic section", d;
  std::uint64_t strtab = 0, strsz = 0;
  bool has_strtab = false;
  for (const auto& e : entries) {
    const auto tag = static_cast<std::int64_t>(fix(e.d_tag));
    if (tag == DT_NULL) break;
    if (tag == DT_STRTAB) strtab = fix(e.d_un.d_ptr), has_strtab = true;
    if (tag == DT_STRSZ) strsz = fix(e.d_un.d_val);
  }
  if (!has_strtab || strsz == 0 || strsz > (1u << 26)) return d.error = "no string table", d;
  // The string table's address is virtual: map it to a file offset through the PT_LOAD segments.
  std::int64_t str_off = -1;
  for (const auto& p : ph) {
    if (fix(p.p_type) != PT_LOAD) continue;
    const std::uint64_t va = fix(p.p_vaddr), sz = fix(p.p_filesz);
    if (strtab >= va && strtab + strsz <= va + sz) str_off = static_cast<std::int64_t>(fix(p.p_offset) + (strtab - va));
  }
  if (str_off < 0) return d.error = "string table outside the loaded segments", d;
  std::string strings(strsz, '\0');
  f.seekg(str_off);
  if (!f.read(strings.data(), static_cast<std::streamsize>(strsz))) return d.error = "truncated string table", d;
  auto str = [&](std::uint64_t off) { return off < strings.size() ? std::string(strings.c_str() + off) : std::string(); };
  for (const auto& e : entries) {
    const auto tag = static_cast<std::int64_t>(fix(e.d_tag));
    if (tag == DT_NULL) break;
    const auto v = fix(e.d_un.d_val);
    if (tag == DT_SONAME) d.soname = str(v);
    else if (tag == DT_NEEDED) d.needed.push_back(str(v));
    else if (tag == DT_RPATH) d.rpath = split_path_list(str(v));
    else if (tag == DT_RUNPATH) d.runpath = split_path_list(str(v));
  }
  d.ok = true;
  return d;
}

/// `#define NAME value` from a header, or -1.
long header_define(const std::string& header, const std::string& name) {
  std::ifstream f(header);
  std::string line;
  while (std::getline(f, line)) {
    std::string_view v = detail::trim(line);
    if (!detail::starts_with(v, "#")) continue;
    v = detail::trim(v.substr(1));
    if (!detail::starts_with(v, "define")) continue;
    v = detail::trim(v.substr(6));
    if (!detail::starts_with(v, name) || v.size() == name.size() ||
        !std::isspace(static_cast<unsigned char>(v[name.size()])))
      continue;
    v = detail::trim(v.substr(name.size()));
    size_t end = 0;
    while (end < v.size() && std::isdigit(static_cast<unsigned char>(v[end]))) ++end;
    if (end > 0) return std::stol(std::string(v.substr(0, end)));
  }
  return -1;
}

/// The version the toolkit's headers beside a library folder announce (<dir>/../include).
std::string header_version(const std::string& library, const std::string& dir) {
  for (const auto& inc : {dir + "/../include", dir + "/../../include"}) {
    if (!is_dir(inc)) continue;
    if (library == "cudart") {
      const long v = header_define(inc + "/cuda_runtime_api.h", "CUDART_VERSION");
      if (v > 0) return Version::from_cuda(v).str();
    } else {
      static const std::map<std::string, std::pair<std::string, std::vector<std::string>>> defs = {
          {"cublas", {"cublas_api.h", {"CUBLAS_VER_MAJOR", "CUBLAS_VER_MINOR", "CUBLAS_VER_PATCH"}}},
          {"cudnn", {"cudnn_version.h", {"CUDNN_MAJOR", "CUDNN_MINOR", "CUDNN_PATCHLEVEL"}}},
          {"nccl", {"nccl.h", {"NCCL_MAJOR", "NCCL_MINOR", "NCCL_PATCH"}}}};
      const auto& [file, names] = defs.at(library);
      long parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = header_define(inc + "/" + file, names[static_cast<size_t>(i)]);
      if (parts[0] >= 0 && parts[1] >= 0)
        return Version(static_cast<int>(parts[0]), static_cast<int>(parts[1]), static_cast<int>(parts[2])).str();
    }
  }
  return "";
}

class Scanner {
 public:
  Scanner(const Report& r, const LoaderOptions& o) : r_(r), o_(o) {}

  LoaderReport run() {
    LoaderReport& L = out_;
    L.scanned = true;
    if (o_.ld_library_path) L.ld_library_path = split_path_list(*o_.ld_library_path);
    else if (const char* v = std::getenv("LD_LIBRARY_PATH")) L.ld_library_path = split_path_list(v);
    read_cache();
    // Toolkit folders and default folders.
    std::vector<std::string> toolkit;
    if (o_.toolkit_dirs) {
      toolkit = *o_.toolkit_dirs;
    } else {
      if (!r_.build.cuda_library_dir.empty()) toolkit.push_back(r_.build.cuda_library_dir);
      for (const char* var : {"CUDA_HOME", "CUDA_PATH"})
        if (const char* v = std::getenv(var)) toolkit.push_back(std::string(v) + "/lib64");
      for (const char* pat : {"/usr/local/cuda*/lib64", "/usr/local/cuda*/lib", "/usr/local/cuda*/targets/*/lib"})
        for (const auto& p : glob_paths(pat)) toolkit.push_back(p);
    }
    std::vector<std::string> defaults;
    if (o_.default_dirs) {
      defaults = *o_.default_dirs;
    } else {
#if defined(__x86_64__)
      const std::string multiarch = "x86_64-linux-gnu";
#elif defined(__aarch64__)
      const std::string multiarch = "aarch64-linux-gnu";
#else
      const std::string multiarch;
#endif
      if (!multiarch.empty()) defaults = {"/lib/" + multiarch, "/usr/lib/" + multiarch};
      for (const char* d : {"/lib64", "/usr/lib64", "/lib", "/usr/lib"}) defaults.push_back(d);
    }

    // Tessera's process: RPATH (without RUNPATH), LD_LIBRARY_PATH, RUNPATH, cache, defaults.
    std::vector<std::string> binaries;
    if (o_.tessera_binaries) {
      binaries = *o_.tessera_binaries;
    } else {
      binaries.push_back(real_path("/proc/self/exe"));
      Dl_info info{};
      if (dladdr(reinterpret_cast<void*>(&scan_loader), &info) && info.dli_fname) {
        const std::string lib = real_path(info.dli_fname);
        if (!lib.empty() && lib != binaries[0]) binaries.push_back(lib);
      }
    }
    ProcessSearch t;
    t.process = "tessera";
    t.description = "this program and libtessera: DT_RPATH (when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, "
                    "ld.so.cache, the default folders, then tessera-env's own fallback, the toolkit folders";
    std::vector<SearchStep> rpath_steps, runpath_steps;
    for (const auto& b : binaries) {
      if (b.empty()) continue;
      BinaryPaths bp;
      bp.path = b;
      const ElfDynamic e = read_elf_dynamic(b);
      if (!e.ok) bp.error = e.error;
      bp.rpath = e.rpath;
      bp.runpath = e.runpath;
      L.tessera_binaries.push_back(bp);
      const std::string name = base_name(b);
      if (e.runpath.empty())
        for (const auto& p : e.rpath) rpath_steps.push_back({expand_origin(p, b), "RPATH of " + name});
      for (const auto& p : e.runpath) runpath_steps.push_back({expand_origin(p, b), "RUNPATH of " + name});
    }
    t.steps = rpath_steps;
    for (const auto& d : L.ld_library_path) t.steps.push_back({d, "LD_LIBRARY_PATH"});
    t.steps.insert(t.steps.end(), runpath_steps.begin(), runpath_steps.end());
    t.steps.push_back({"", "ld.so.cache"});
    for (const auto& d : defaults) t.steps.push_back({d, "default folder"});
    for (const auto& d : toolkit) t.steps.push_back({d, "toolkit folder (tessera-env's fallback)"});
    L.processes.push_back(t);

    // Each Python environment with CUDA wheels: torch's libraries carry RUNPATH entries
    // $ORIGIN/../../nvidia/<x>/lib, so LD_LIBRARY_PATH comes before the env's own wheels.
    for (const auto& env : r_.python_envs) {
      std::vector<std::string> wheel_dirs, own;
      for (const auto& d : env.distributions)
        for (const auto& lib : d.libraries)
          if (!library_of(base_name(lib)).empty()) {
            const std::string dir = dir_of(lib);
            if (std::find(wheel_dirs.begin(), wheel_dirs.end(), dir) == wheel_dirs.end()) wheel_dirs.push_back(dir);
            const std::string rp = real_path(lib);
            if (!rp.empty()) own.push_back(rp);
          }
      if (wheel_dirs.empty()) continue;
      ProcessSearch p;
      p.process = "python:" + env.label;
      p.description = "a Python process of " + env.label +
                      ": LD_LIBRARY_PATH, the wheels' lib folders (RUNPATH $ORIGIN/../../nvidia/*/lib of the "
                      "framework's libraries), ld.so.cache, the default folders";
      for (const auto& d : L.ld_library_path) p.steps.push_back({d, "LD_LIBRARY_PATH"});
      for (const auto& d : wheel_dirs) p.steps.push_back({d, "python:" + env.label + " wheel"});
      p.steps.push_back({"", "ld.so.cache"});
      for (const auto& d : defaults) p.steps.push_back({d, "default folder"});
      p.own = own;
      L.processes.push_back(p);
    }

    // The copies: every file named libX.so.N in every folder any search visits, and the cache's.
    std::set<std::string> visited;
    for (const auto& p : L.processes)
      for (const auto& s : p.steps)
        if (!s.dir.empty() && visited.insert(s.dir + "\n" + s.via).second) scan_dir(s.dir, s.via);
    for (const auto& [soname, path] : L.cache) add_copy(path, soname, "ld.so.cache");
    std::sort(L.copies.begin(), L.copies.end(), [](const LibraryCopy& a, const LibraryCopy& b) {
      return a.file != b.file ? a.file < b.file : a.resolved_path < b.resolved_path;
    });
    return std::move(out_);
  }

 private:
  void read_cache() {
    std::string text;
    if (o_.ld_cache_listing) {
      text = *o_.ld_cache_listing;
      out_.cache_source = "injected listing";
    } else {
      const char* ldconfig = is_file("/sbin/ldconfig") ? "/sbin/ldconfig" : is_file("/usr/sbin/ldconfig") ? "/usr/sbin/ldconfig" : nullptr;
      if (!ldconfig) {
        out_.cache_source = "none: ldconfig not found";
        return;
      }
      if (FILE* p = ::popen((std::string(ldconfig) + " -p 2>/dev/null").c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
        ::pclose(p);
        out_.cache_source = std::string(ldconfig) + " -p";
      } else {
        out_.cache_source = "none: could not run ldconfig -p";
        return;
      }
    }
    out_.cache = parse_ld_cache_listing(text);
  }

  void scan_dir(const std::string& dir, const std::string& via) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) names.push_back(e->d_name);
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names)
      if (!library_of(n).empty()) add_copy(dir + "/" + n, n, via);
  }

  void add_copy(const std::string& path, const std::string& file, const std::string& via) {
    const std::string resolved = real_path(path);
    if (resolved.empty() || !is_file(resolved)) return;
    auto it = std::find_if(out_.copies.begin(), out_.copies.end(),
                           [&](const LibraryCopy& c) { return c.resolved_path == resolved && c.file == file; });
    if (it == out_.copies.end()) {
      LibraryCopy c;
      c.library = library_of(file);
      c.file = file;
      c.resolved_path = resolved;
      const ElfDynamic e = read_elf_dynamic(resolved);
      c.soname = e.soname;
      tell_version(c, dir_of(path));
      out_.copies.push_back(c);
      it = out_.copies.end() - 1;
    }
    if (std::find(it->paths.begin(), it->paths.end(), path) == it->paths.end()) it->paths.push_back(path);
    if (std::find(it->found_via.begin(), it->found_via.end(), via) == it->found_via.end()) it->found_via.push_back(via);
  }

  void tell_version(LibraryCopy& c, const std::string& dir) {
    // 1. the copy tessera-env loaded and asked
    for (const Library* lib : {&r_.cuda_runtime, &r_.cublas, &r_.cudnn}) {
      if (!lib->found || lib->resolved_path.empty() || lib->resolved_path != c.resolved_path) continue;
      c.version = lib->version.str();
      c.version_source = "loaded by tessera-env";
      return;
    }
    // 2. the wheel that installed it
    for (const auto& env : r_.python_envs)
      for (const auto& d : env.distributions)
        for (const auto& lib : d.libraries)
          if (d.name.rfind("nvidia-", 0) == 0 && real_path(lib) == c.resolved_path) {
            c.version = d.version;
            c.version_source = "wheel " + d.name;
            return;
          }
    // 3. a versioned real file name: libcudnn.so.9.1.0
    std::string_view stem, rest;
    const std::string real = base_name(c.resolved_path);
    if (detail::split_shared_object(real, stem, rest) && rest.size() > 1 && rest[0] == '.' &&
        detail::dotted_digits(rest.substr(1), 2)) {
      c.version = std::string(rest.substr(1));
      c.version_source = "file name";
      return;
    }
    // 4. the toolkit's headers beside the folder
    const std::string h = header_version(c.library, dir);
    if (!h.empty() && Version::parse(h).major == std::atoi(c.file.substr(c.file.rfind(".so.") + 4).c_str())) {
      c.version = h;
      c.version_source = "toolkit headers";
    }
  }

  const Report& r_;
  const LoaderOptions& o_;
  LoaderReport out_;
};

}  // namespace

ElfDynamic read_elf_dynamic(const std::string& path) {
  ElfDynamic d;
  std::ifstream f(path, std::ios::binary);
  if (!f) return d.error = "cannot open " + path, d;
  unsigned char ident[EI_NIDENT] = {0};
  if (!f.read(reinterpret_cast<char*>(ident), EI_NIDENT) || std::memcmp(ident, ELFMAG, SELFMAG) != 0)
    return d.error = path + " is not an ELF file", d;
  const bool little = ident[EI_DATA] == ELFDATA2LSB;
  const unsigned one = 1;
  const bool host_little = *reinterpret_cast<const unsigned char*>(&one) == 1;
  const bool swap = little != host_little;
  ElfDynamic out;
  if (ident[EI_CLASS] == ELFCLASS64) out = read_elf_class<Elf64_Ehdr, Elf64_Phdr, Elf64_Dyn>(f, swap);
  else if (ident[EI_CLASS] == ELFCLASS32) out = read_elf_class<Elf32_Ehdr, Elf32_Phdr, Elf32_Dyn>(f, swap);
  else out.error = "unknown ELF class";
  if (!out.ok && out.error.find(path) == std::string::npos) out.error = path + ": " + out.error;
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_ld_cache_listing(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string line;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    line = text.substr(start, end - start);
    start = end + 1;
    // "\tlibcudnn.so.9 (libc6,x86-64[, OS ABI: Linux 3.2.0]) => /path"
    const std::string_view v = detail::trim(line);
    const size_t space = v.find_first_of(" \t"), open = v.find('('), close = v.find(')'), arrow = v.find("=>");
    if (space == std::string_view::npos || open == std::string_view::npos || close == std::string_view::npos ||
        arrow == std::string_view::npos || !(space < open && open < close && close < arrow))
      continue;
    const std::string soname(v.substr(0, space));
    const std::string flags(v.substr(open + 1, close - open - 1));
    const std::string path(detail::trim(v.substr(arrow + 2)));
    if (path.empty()) continue;
    if (library_of(soname).empty()) continue;
#if defined(__x86_64__)
    if (flags.find("x86-64") == std::string::npos) continue;
#elif defined(__aarch64__)
    if (flags.find("AArch64") == std::string::npos) continue;
#else
    (void)flags;
#endif
    out.emplace_back(soname, path);
  }
  return out;
}

LoaderReport scan_loader(const Report& report, const LoaderOptions& options) { return Scanner(report, options).run(); }

std::pair<int, std::string> resolve(const LoaderReport& L, const ProcessSearch& search, const std::string& file) {
  auto index_of_path = [&](const std::string& path) -> int {
    for (size_t i = 0; i < L.copies.size(); ++i)
      if (L.copies[i].file == file &&
          std::find(L.copies[i].paths.begin(), L.copies[i].paths.end(), path) != L.copies[i].paths.end())
        return static_cast<int>(i);
    return -1;
  };
  for (const auto& s : search.steps) {
    if (s.dir.empty()) {
      for (const auto& [soname, path] : L.cache)
        if (soname == file) {
          const int i = index_of_path(path);
          if (i >= 0) return {i, s.via};
        }
      continue;
    }
    const int i = index_of_path(s.dir + "/" + file);
    if (i >= 0) return {i, s.via};
  }
  return {-1, ""};
}

}  // namespace tessera::env
