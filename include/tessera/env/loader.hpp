// Which copy of libcudart, libcublas, libcudnn and libnccl each kind of process loads: the
// copies on the dynamic loader's path (LD_LIBRARY_PATH, RPATH/RUNPATH, the ld.so cache, the
// default folders, the CUDA toolkit's folders, the Python wheels' lib folders), read from the
// files' ELF dynamic sections without loading them. Part of the env report.
//
// The search order is ld.so(8)'s: DT_RPATH of the object asking (only when it has no
// DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, /etc/ld.so.cache, the default folders.
#pragma once
#include "tessera/env/python_envs.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tessera::env {

struct Version;
struct Report;

/// The parts of an ELF file's dynamic section the loader's search depends on.
struct ElfDynamic {
  bool ok = false;
  std::string error;                 ///< why it could not be read ("not an ELF file", ...)
  std::string soname;                ///< DT_SONAME, "" when absent
  std::vector<std::string> needed;   ///< DT_NEEDED
  std::vector<std::string> rpath;    ///< DT_RPATH, split at ':' ($ORIGIN not expanded)
  std::vector<std::string> runpath;  ///< DT_RUNPATH, split at ':'
};

/// Reads the dynamic section of a 64- or 32-bit, little- or big-endian ELF shared object or
/// executable (only its headers, dynamic segment and string table are read). Never throws.
ElfDynamic read_elf_dynamic(const std::string& path);

/// One copy of a CUDA library on the machine: one real file, reachable through `paths`.
struct LibraryCopy {
  std::string library;                ///< "cudart", "cublas", "cudnn", "nccl"
  std::string file;                   ///< the name the loader searches for: "libcudnn.so.9"
  std::vector<std::string> paths;     ///< folder/file paths that reach it (symlinks included)
  std::string resolved_path;          ///< the real file
  std::string soname;                 ///< its DT_SONAME ("" when unreadable)
  std::string version;                ///< best known version, "" when only the soname's major is known
  std::string version_source;         ///< "loaded by tessera-env", "wheel nvidia-cudnn-cu12", "toolkit headers", "file name"
  std::vector<std::string> found_via; ///< "LD_LIBRARY_PATH", "ld.so.cache", "toolkit folder", "python:<env> wheel", ...
};

/// One step of a search: a folder, or the ld.so cache.
struct SearchStep {
  std::string dir;  ///< "" for the cache
  std::string via;  ///< "LD_LIBRARY_PATH", "RUNPATH of libtessera.so", "ld.so.cache", "default folder", ...
};

/// The search a kind of process makes: Tessera (this program) or the Python environments.
struct ProcessSearch {
  std::string process;          ///< "tessera" or "python:<env label>"
  std::string description;      ///< how the order was derived
  std::vector<SearchStep> steps;
  std::vector<std::string> own; ///< copies (resolved paths) that belong to it: the env's wheels
};

/// RPATH/RUNPATH of one of Tessera's binaries.
struct BinaryPaths {
  std::string path;
  std::vector<std::string> rpath, runpath;  ///< as written ($ORIGIN kept)
  std::string error;
};

/// Everything scan_loader() finds.
struct LoaderReport {
  bool scanned = false;
  std::vector<std::string> ld_library_path;
  std::string cache_source;  ///< "ldconfig -p", "injected listing", or why there is none
  std::vector<std::pair<std::string, std::string>> cache;  ///< soname -> path, for the four libraries
  std::vector<LibraryCopy> copies;
  std::vector<ProcessSearch> processes;
  std::vector<BinaryPaths> tessera_binaries;  ///< the executable and libtessera (when shared)
};

/// Where scan_loader() looks; the tests replace each with fixtures.
struct LoaderOptions {
  std::optional<std::string> ld_library_path;  ///< default: $LD_LIBRARY_PATH
  /// Text in `ldconfig -p`'s format ("\tlibcudnn.so.9 (libc6,x86-64) => /path"); default: runs ldconfig -p.
  std::optional<std::string> ld_cache_listing;
  /// CUDA toolkit library folders. Default: the build's toolkit folder, $CUDA_HOME/$CUDA_PATH
  /// lib64, /usr/local/cuda*/lib64, /usr/local/cuda*/lib, /usr/local/cuda*/targets/*/lib.
  std::optional<std::vector<std::string>> toolkit_dirs;
  /// The loader's default folders. Default: /lib/<multiarch>, /usr/lib/<multiarch>, /lib64, /usr/lib64, /lib, /usr/lib.
  std::optional<std::vector<std::string>> default_dirs;
  /// Tessera's binaries whose RPATH/RUNPATH count. Default: /proc/self/exe and the shared
  /// object holding libtessera's code.
  std::optional<std::vector<std::string>> tessera_binaries;
};

/// Parses `ldconfig -p` output: the entries for libcudart/libcublas/libcudnn/libnccl.so.N
/// of this machine's ABI (x86-64 / AArch64 flags).
std::vector<std::pair<std::string, std::string>> parse_ld_cache_listing(const std::string& text);

/// Finds the copies and the search of each process kind (Tessera, then each Python
/// environment of `report` with CUDA wheels). Uses the report's loaded libraries and wheels
/// to tell versions. Never throws.
LoaderReport scan_loader(const Report& report, const LoaderOptions& options = {});

/// The copy `search` loads for `file` ("libcudnn.so.9"): its index in `loader.copies` and the
/// step that finds it, or {-1, ""} when nothing on the search has that file.
std::pair<int, std::string> resolve(const LoaderReport& loader, const ProcessSearch& search, const std::string& file);

}  // namespace tessera::env
