// collect(): what this build is and what the machine loads, found with dlopen/dlsym so
// that no CUDA header or library is needed to build it. The function-pointer types below
// follow cuda.h, cuda_runtime_api.h, cublas_api.h and cudnn_graph.h (CUresult,
// cudaError_t, cublasStatus_t are int-sized enums; CUdevice is int).
#include "tessera/env/report.hpp"

#include "fs_util.hpp"

#include "tessera/build_config.hpp"
#include "text_scan.hpp"

#include <Eigen/Core>
#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sys/stat.h>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tessera::env {

namespace {

using cuInit_t = int (*)(unsigned int);
using cuDriverGetVersion_t = int (*)(int*);
using cuDeviceGetCount_t = int (*)(int*);
using cuDeviceGet_t = int (*)(int*, int);
using cuDeviceGetAttribute_t = int (*)(int*, int, int);
using cuDeviceGetName_t = int (*)(char*, int, int);
using cuDeviceTotalMem_t = int (*)(size_t*, int);
using cuGetErrorText_t = int (*)(int, const char**);
using cudaRuntimeGetVersion_t = int (*)(int*);
using cublasGetProperty_t = int (*)(int, int*);  // libraryPropertyType: 0 major, 1 minor, 2 patch
using size_getter_t = size_t (*)();              // cudnnGetVersion, cudnnGetCudartVersion, cublasGetCudartVersion

constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CUDA_ERROR_STUB_LIBRARY = 34;

template <typename F>
F symbol(void* handle, const char* name) {
  return reinterpret_cast<F>(dlsym(handle, name));
}

using fs_util::is_file;

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  return std::string(v);
}

/// Handles collect() opened itself, so that a later collect() does not mistake them for
/// libraries the program was linked with.
std::mutex g_opened_mutex;
std::set<void*> g_opened;

/// Opens the first loadable candidate (sonames go through the loader's search; paths are
/// opened as given) and fills lib.path/resolved_path/preloaded/tried/error. Returns the
/// handle or nullptr. Handles stay open on purpose.
void* open_first(Library& lib, const std::vector<std::string>& candidates) {
  std::set<std::string> seen;
  std::string first_error;
  for (const auto& c : candidates) {
    if (!seen.insert(c).second) continue;
    lib.tried.push_back(c);
    dlerror();
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    bool pre = false;
    {
      std::lock_guard<std::mutex> lock(g_opened_mutex);
      if (h) pre = g_opened.count(h) == 0;
      if (!h) {
        h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (h) g_opened.insert(h);
      }
    }
    if (!h) {
      const char* e = dlerror();
      if (first_error.empty() && e) first_error = e;
      continue;
    }
    lib.preloaded = pre;
    struct link_map* lm = nullptr;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && lm->l_name[0]) lib.path = lm->l_name;
    else lib.path = c;
    char buf[PATH_MAX];
    if (::realpath(lib.path.c_str(), buf)) lib.resolved_path = buf;
    lib.error.clear();
    return h;
  }
  lib.error = first_error.empty() ? "not found" : first_error;
  return nullptr;
}

/// Sonames to try: lib<name>.so.<major> for each major in order, then lib<name>.so; then
/// the same file names in `dirs` where they exist.
std::vector<std::string> candidates(const std::string& name, const std::vector<int>& majors,
                                    const std::vector<std::string>& dirs) {
  std::vector<std::string> names;
  for (int m : majors)
    if (m > 0) names.push_back("lib" + name + ".so." + std::to_string(m));
  names.push_back("lib" + name + ".so");
  std::vector<std::string> out = names;
  for (const auto& d : dirs) {
    if (d.empty()) continue;
    for (const auto& n : names)
      if (is_file(d + "/" + n)) out.push_back(d + "/" + n);
  }
  return out;
}

std::vector<std::string> toolkit_dirs(const BuildInfo& b, const std::string& extra = "") {
  std::vector<std::string> dirs;
  if (!extra.empty()) dirs.push_back(extra);
  if (!b.cuda_library_dir.empty()) dirs.push_back(b.cuda_library_dir);
  for (const char* var : {"CUDA_PATH", "CUDA_HOME"}) {
    if (const char* v = std::getenv(var)) {
      dirs.push_back(std::string(v) + "/lib64");
      dirs.push_back(std::string(v) + "/lib");
    }
  }
  dirs.push_back("/usr/local/cuda/lib64");
  dirs.push_back("/usr/local/cuda/lib");
  return dirs;
}

std::string error_text(void* libcuda, int code) {
  auto name_fn = symbol<cuGetErrorText_t>(libcuda, "cuGetErrorName");
  auto str_fn = symbol<cuGetErrorText_t>(libcuda, "cuGetErrorString");
  const char* name = nullptr;
  const char* text = nullptr;
  if (name_fn) name_fn(code, &name);
  if (str_fn) str_fn(code, &text);
  std::string s = name ? name : "CUresult " + std::to_string(code);
  if (text) s += std::string(": ") + text;
  return s;
}

/// "570.124.06" from /proc/driver/nvidia/version, or "".
std::string kernel_module_release() {
  std::ifstream f("/proc/driver/nvidia/version");
  std::string line;
  if (!f || !std::getline(f, line)) return "";
  return detail::kernel_module_release_from(line);
}

BuildInfo build_info() {
  BuildInfo b;
  b.tessera_version = TESSERA_VERSION_STRING;
  b.build_type = TESSERA_BUILD_TYPE;
  b.compiler_id = TESSERA_CXX_COMPILER_ID;
  b.compiler_version = TESSERA_CXX_COMPILER_VERSION;
  b.cxx_standard = __cplusplus;
  b.with_cuda = TESSERA_WITH_CUDA_BUILD != 0;
  b.cuda_architectures = TESSERA_CUDA_ARCHITECTURES;
  b.cuda_compiled = Version::parse(TESSERA_CUDA_COMPILED_VERSION);
  b.cudnn_compiled = Version::parse(TESSERA_CUDNN_COMPILED_VERSION);
#ifdef TESSERA_CUBLAS_COMPILED_VERSION
  b.cublas_compiled = Version::parse(TESSERA_CUBLAS_COMPILED_VERSION);
#endif
#ifdef TESSERA_CUDA_LIBRARY_DIR
  b.cuda_library_dir = TESSERA_CUDA_LIBRARY_DIR;
#endif
#ifdef TESSERA_CUDNN_LIBRARY_DIR
  b.cudnn_library_dir = TESSERA_CUDNN_LIBRARY_DIR;
#endif
  b.eigen_version = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                    std::to_string(EIGEN_MINOR_VERSION);
#ifdef _OPENMP
  b.openmp = true;
  b.openmp_version = _OPENMP;
  b.openmp_max_threads = omp_get_max_threads();
#endif
  return b;
}

void collect_driver(Report& r) {
  Driver& d = r.driver;
  d.release = kernel_module_release();
  void* h = open_first(d.library, {"libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1", "/usr/lib/wsl/lib/libcuda.so.1"});
  if (!h) {
    if (!d.release.empty())
      d.library.error += "; the kernel module " + d.release +
                         " is loaded, but its user-space library libcuda.so.1 is not on the loader path";
    return;
  }
  auto get_version = symbol<cuDriverGetVersion_t>(h, "cuDriverGetVersion");
  if (!get_version) {
    d.library.error = d.library.path + " has no cuDriverGetVersion";
    return;
  }
  int v = 0;
  const int rc = get_version(&v);
  if (rc == CUDA_ERROR_STUB_LIBRARY) {
    d.library.error = d.library.path + " is the CUDA toolkit's stub library, not a driver";
    return;
  }
  if (rc != 0) {
    d.library.error = "cuDriverGetVersion failed: " + error_text(h, rc);
    return;
  }
  d.library.found = true;
  d.library.version = Version::from_cuda(v);

  auto init = symbol<cuInit_t>(h, "cuInit");
  if (!init) {
    d.init_error = "libcuda has no cuInit";
    return;
  }
  d.init_result = init(0);
  if (d.init_result != 0) {
    d.init_error = error_text(h, d.init_result);
    return;
  }
  auto get_count = symbol<cuDeviceGetCount_t>(h, "cuDeviceGetCount");
  auto get_device = symbol<cuDeviceGet_t>(h, "cuDeviceGet");
  auto get_attr = symbol<cuDeviceGetAttribute_t>(h, "cuDeviceGetAttribute");
  auto get_name = symbol<cuDeviceGetName_t>(h, "cuDeviceGetName");
  auto total_mem = symbol<cuDeviceTotalMem_t>(h, "cuDeviceTotalMem_v2");
  int count = 0;
  if (!get_count || !get_device || !get_attr || get_count(&count) != 0) return;
  for (int i = 0; i < count; ++i) {
    int dev = 0;
    if (get_device(&dev, i) != 0) continue;
    Gpu g;
    g.index = i;
    char name[256] = {0};
    if (get_name && get_name(name, sizeof(name) - 1, dev) == 0) g.name = name;
    size_t bytes = 0;
    if (total_mem && total_mem(&bytes, dev) == 0) g.total_memory_bytes = bytes;
    get_attr(&g.cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    get_attr(&g.cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    get_attr(&g.multiprocessor_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
    r.gpus.push_back(g);
  }
}

void collect_runtime(Report& r) {
  Library& lib = r.cuda_runtime;
  void* h = open_first(lib, candidates("cudart", {r.build.cuda_compiled.major, 13, 12, 11}, toolkit_dirs(r.build)));
  if (!h) return;
  auto get = symbol<cudaRuntimeGetVersion_t>(h, "cudaRuntimeGetVersion");
  int v = 0;
  if (!get) {
    lib.error = lib.path + " has no cudaRuntimeGetVersion";
  } else if (const int rc = get(&v); rc != 0) {
    lib.error = "cudaRuntimeGetVersion failed with cudaError " + std::to_string(rc);
  } else {
    lib.found = true;
    lib.version = Version::from_cuda(v);
  }
}

void collect_cublas(Report& r) {
  Library& lib = r.cublas;
  void* h = open_first(lib, candidates("cublas", {r.build.cublas_compiled.major, r.build.cuda_compiled.major, 13, 12, 11},
                                       toolkit_dirs(r.build)));
  if (!h) return;
  auto prop = symbol<cublasGetProperty_t>(h, "cublasGetProperty");
  int ma = 0, mi = 0, pa = 0;
  if (!prop) {
    lib.error = lib.path + " has no cublasGetProperty";
    return;
  }
  if (prop(0, &ma) != 0 || prop(1, &mi) != 0 || prop(2, &pa) != 0) {
    lib.error = "cublasGetProperty failed";
    return;
  }
  lib.found = true;
  lib.version = Version(ma, mi, pa);
  if (auto cudart = symbol<size_getter_t>(h, "cublasGetCudartVersion"))
    r.cublas_cuda_version = Version::from_cuda(static_cast<long>(cudart()));
}

void collect_cudnn(Report& r) {
  Library& lib = r.cudnn;
  void* h = open_first(lib, candidates("cudnn", {r.build.cudnn_compiled.major, 9, 8},
                                       toolkit_dirs(r.build, r.build.cudnn_library_dir)));
  if (!h) return;
  auto get = symbol<size_getter_t>(h, "cudnnGetVersion");
  if (!get) {
    lib.error = lib.path + " has no cudnnGetVersion";
    return;
  }
  lib.found = true;
  lib.version = Version::from_cudnn(static_cast<long>(get()));
  if (auto cudart = symbol<size_getter_t>(h, "cudnnGetCudartVersion"))
    r.cudnn_cuda_version = Version::from_cuda(static_cast<long>(cudart()));
}

}  // namespace

Report collect(const CollectOptions& options) {
  Report r;
  r.build = build_info();
  r.tessera_disable_cuda = env_value("TESSERA_DISABLE_CUDA");
  r.cuda_visible_devices = env_value("CUDA_VISIBLE_DEVICES");
  collect_driver(r);
  collect_runtime(r);
  collect_cublas(r);
  collect_cudnn(r);
  if (options.python_envs) {
    r.python_envs = find_python_envs(options.discovery);
    r.python_envs_scanned = true;
  }
  if (options.loader) r.loader = scan_loader(r, options.loader_options);
  if (options.nvml) r.nvml = collect_nvml(options.nvml_library);
  return r;
}

const Report& process_report() {
  static const Report report = [] {
    CollectOptions core;
    core.python_envs = false;
    core.loader = false;
    core.nvml = false;
    return collect(core);
  }();
  return report;
}

}  // namespace tessera::env
