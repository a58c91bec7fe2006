// The GPU-stack consistency report behind `tessera-env`: what this copy of Tessera was
// built with, what the machine loads at run time (NVIDIA driver, CUDA runtime, cuBLAS,
// cuDNN, found with dlopen so that CPU-only builds can look too), the GPUs, and a list of
// OK / WARN / FAIL checks with a reason and a fix for each. Beyond Tessera's own chain it
// looks at the machine (issue 23): Python environments and their wheels (python_envs.hpp),
// the copies of the CUDA libraries on the loader's path (loader.hpp), PTX ISA against the
// driver (ptx.hpp), GPU health through NVML (nvml.hpp), and explains pasted error
// messages (explain.hpp).
//
//   auto report = tessera::env::collect();        // looks at the machine
//   auto checks = tessera::env::check(report);    // pure function of the report
//   std::cout << tessera::env::format_text(report, checks);
//
// The CUDA backend decides its availability with cuda_unavailable_reason(process_report()),
// so `tessera::cuda::unavailable_reason()` and `tessera-env` never disagree.
//
// Version encodings follow NVIDIA's: CUDA driver/runtime versions are 1000*major + 10*minor
// (cudaRuntimeGetVersion, cuDriverGetVersion); cuDNN is 1000*major + 100*minor + patch up to
// 8.x and 10000*major + 100*minor + patch from 9.0 (cudnnGetVersion).
#pragma once
#include "tessera/env/explain.hpp"
#include "tessera/env/loader.hpp"
#include "tessera/env/nvml.hpp"
#include "tessera/env/ptx.hpp"
#include "tessera/env/python_envs.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::env {

/// A dotted version. major < 0 means unknown (not found, not built with it).
/// patch < 0 means the source gave only major.minor (CUDA's encoded versions do).
struct Version {
  int major = -1;
  int minor = 0;
  int patch = -1;

  constexpr Version() = default;
  constexpr Version(int ma, int mi, int pa = -1) : major(ma), minor(mi), patch(pa) {}

  bool known() const { return major >= 0; }
  /// "13.0", "9.19.0", or "unknown".
  std::string str() const;
  /// Parses "13", "13.0", "13.0.88" (extra components are ignored). Unknown on anything else.
  static Version parse(std::string_view text);
  /// From CUDA's encoding 1000*major + 10*minor (e.g. 12040 -> 12.4). Unknown when <= 0.
  static Version from_cuda(long encoded);
  /// From cudnnGetVersion(): 1000*M + 100*m + p before 9.0, 10000*M + 100*m + p from 9.0
  /// (cudnn_version.h). Unknown when <= 0.
  static Version from_cudnn(long encoded);

  /// Order by (major, minor, patch); an absent patch counts as 0.
  friend bool operator<(const Version& a, const Version& b);
  friend bool operator==(const Version& a, const Version& b);
  friend bool operator!=(const Version& a, const Version& b) { return !(a == b); }
};

/// How this copy of Tessera was built (from the generated tessera/build_config.hpp and
/// the library's own compile).
struct BuildInfo {
  std::string tessera_version;
  std::string build_type;           ///< CMAKE_BUILD_TYPE
  std::string compiler_id;          ///< "GNU", "Clang", ...
  std::string compiler_version;
  long cxx_standard = 0;            ///< __cplusplus of the library's compile, e.g. 201703
  bool with_cuda = false;           ///< the CUDA backend is compiled in
  /// CMAKE_CUDA_ARCHITECTURES joined with commas, e.g. "75-real,80-real,86-real,89-real,90":
  /// a bare number is SASS + PTX, "-real" SASS only, "-virtual" PTX only.
  std::string cuda_architectures;
  Version cuda_compiled;            ///< CUDA toolkit compiled against (CUDAToolkit_VERSION)
  Version cublas_compiled;          ///< cuBLAS headers compiled against (cublas_api.h)
  Version cudnn_compiled;           ///< cuDNN headers compiled against (cudnn_version.h)
  std::string cuda_library_dir;     ///< the toolkit's library folder at configure time
  std::string cudnn_library_dir;    ///< the folder of the cuDNN library found at configure time
  std::string eigen_version;        ///< e.g. "3.4.0"
  bool openmp = false;              ///< compiled with OpenMP
  int openmp_version = 0;           ///< _OPENMP, e.g. 201511
  int openmp_max_threads = 1;       ///< omp_get_max_threads() at collect() time
};

/// One shared library looked up at run time.
struct Library {
  bool found = false;
  Version version;                  ///< as the library reports it at run time
  std::string path;                 ///< as the dynamic loader opened it (link map name)
  std::string resolved_path;        ///< realpath of `path` (the versioned file)
  bool preloaded = false;           ///< already mapped in the process (linked) before collect() looked
  std::string error;                ///< why it was not found / could not be queried
  std::vector<std::string> tried;   ///< names and paths tried, in order
};

/// The NVIDIA driver (libcuda.so.1).
struct Driver {
  Library library;                  ///< version: highest CUDA version it supports (cuDriverGetVersion)
  std::string release;              ///< kernel module release from /proc/driver/nvidia/version, e.g. "570.124.06"
  int init_result = -1;             ///< cuInit(0)'s CUresult; 0 success, -1 not called
  std::string init_error;           ///< "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected"
};

/// One GPU as the driver reports it.
struct Gpu {
  int index = 0;                    ///< CUDA ordinal (after CUDA_VISIBLE_DEVICES)
  std::string name;
  int cc_major = 0;                 ///< compute capability
  int cc_minor = 0;
  std::uint64_t total_memory_bytes = 0;
  int multiprocessor_count = 0;     ///< SM count
};

/// Everything collect() finds. A plain struct: tests build them by hand.
struct Report {
  BuildInfo build;
  Driver driver;
  Library cuda_runtime;             ///< libcudart: version from cudaRuntimeGetVersion
  Library cublas;                   ///< libcublas: version from cublasGetProperty
  Library cudnn;                    ///< libcudnn: version from cudnnGetVersion
  Version cublas_cuda_version;      ///< CUDA version cuBLAS was built for (cublasGetCudartVersion)
  Version cudnn_cuda_version;       ///< CUDA version cuDNN was built for (cudnnGetCudartVersion)
  std::vector<Gpu> gpus;
  std::optional<std::string> tessera_disable_cuda;  ///< $TESSERA_DISABLE_CUDA, nullopt when unset
  std::optional<std::string> cuda_visible_devices;  ///< $CUDA_VISIBLE_DEVICES, nullopt when unset
  /// Python environments on the machine and their GPU wheels (CollectOptions::python_envs).
  std::vector<PythonEnv> python_envs;
  bool python_envs_scanned = false;  ///< false: not looked for (no python.* checks)
  /// The copies of the CUDA libraries on the loader's path and who loads which (CollectOptions::loader).
  LoaderReport loader;
  /// GPU health from NVML (CollectOptions::nvml).
  Nvml nvml;
};

/// What collect() looks at beyond Tessera's own chain, and where (tests inject fixtures).
struct CollectOptions {
  /// Look for Python environments and read their dist-info (find_python_envs).
  bool python_envs = true;
  DiscoveryOptions discovery;
  /// Scan the loader's path for copies of the CUDA libraries (scan_loader), after the Python
  /// environments so that their wheels' folders count.
  bool loader = true;
  LoaderOptions loader_options;
  /// Ask NVML about the GPUs' health (collect_nvml).
  bool nvml = true;
  std::string nvml_library = "libnvidia-ml.so.1";
};

/// Builds a Report for this process and machine: build configuration, then dlopen of
/// libcuda.so.1 (cuDriverGetVersion, cuInit, device queries), libcudart.so.<compiled major>
/// (then other majors, then the toolkit's library folder), libcublas, libcudnn. Never links
/// CUDA and never throws for a missing or broken library: that is recorded in the Report.
/// Libraries it opens stay loaded (unloading the driver after cuInit is unsafe). Then, as
/// `options` asks (all by default): the Python environments (find_python_envs), the copies
/// on the loader's path (scan_loader) and NVML (collect_nvml).
Report collect(const CollectOptions& options = {});

/// collect() of Tessera's own chain only (no Python environments, loader scan or NVML) once
/// per process (thread-safe), for start-up decisions such as the CUDA backend's
/// availability. Environment changes after the first call are not seen.
const Report& process_report();

// ---- checks -----------------------------------------------------------------------

enum class Status { OK, WARN, FAIL };
/// "OK", "WARN", "FAIL".
const char* to_string(Status s);

/// One verdict: `name` is stable ("driver", "driver_vs_runtime", "cudnn", "gpu.0", ...),
/// `reason` one line, `fix` a concrete action (empty when status is OK).
struct Check {
  std::string name;
  Status status = Status::OK;
  std::string reason;
  std::string fix;
};

struct CheckOptions {
  /// CUDA must be usable: conditions that otherwise mean "CPU only" (CPU-only build, no
  /// driver, no GPU, TESSERA_DISABLE_CUDA) become FAIL.
  bool require_cuda = false;
};

/// The checks, a pure function of the report (no I/O, no environment):
/// - build.cuda: the CUDA backend is compiled in (else CPU only).
/// - env.TESSERA_DISABLE_CUDA: present only when set: to a true value ("1", "true", "yes",
///   "on", any case): WARN, CPU only; to something other than those or "0", "false", "no",
///   "off": WARN, ignored.
/// - driver: libcuda.so.1 loaded and cuInit succeeded. No driver: WARN, CPU only.
/// - devices: at least one GPU visible. None: WARN, CPU only.
/// - driver_vs_runtime: the driver supports the CUDA runtime in use (the one compiled
///   against; the loaded one when libcudart is linked shared or the build is CPU-only).
///   driver >= runtime: OK. Same major, older minor, CUDA >= 11: WARN (minor-version
///   compatibility: it runs, but PTX from the newer toolkit cannot be JIT-compiled and
///   calls that need the newer driver fail with cudaErrorCallRequiresNewerDriver).
///   Same major before CUDA 11 (no minor-version compatibility) or older major: FAIL.
///   (CUDA Compatibility guide, "Minor Version Compatibility".)
/// - runtime: libcudart found; when linked shared, its major equals the compiled one.
/// - cublas: loaded major equals compiled major (FAIL), loaded minor older: WARN.
/// - cublas_vs_runtime, cudnn_vs_runtime: the library was built for the runtime's CUDA
///   major (FAIL otherwise).
/// - cudnn: loaded major equals compiled major and loaded minor >= compiled minor, else
///   FAIL (cuDNN's API compatibility rule; PyTorch applies the same one).
/// - gpu.N: the compiled architectures carry SASS for the GPU (OK), or PTX it can JIT
///   (OK, FAIL when the PTX's ISA is newer than the driver can JIT: ptx_isa_of_toolkit versus
///   max_ptx_isa_of_driver; by CUDA versions when the table does not know them), or neither
///   (FAIL).
/// - ptx: present when the build carries PTX and a driver is found: the PTX ISA nvcc wrote
///   (from the toolkit version: the fatbins are compressed) against the newest the driver
///   JITs. Newer: FAIL when a GPU needs that PTX (CUDA error 222 at the first launch), WARN
///   when every GPU has SASS (the PTX only matters on other GPUs).
/// - python.<env>.wheels: the CUDA major versions of the GPU packages in one Python
///   environment agree (torch's +cuXYZ / version.py, jax-cudaNN-*, cupy-cudaNNx, every
///   nvidia-* wheel with a known major), and installed nvidia-* wheels match the pins of
///   the frameworks that require them (major differs: FAIL, otherwise different: WARN).
/// - python.<env>.cudnn: one cuDNN major in the environment, one cuDNN wheel per
///   nvidia/cudnn/lib, and the installed cuDNN satisfies torch's pin (same major, minor
///   not older: cuDNN's rule, as for Tessera).
/// - python.<env>.driver: the driver supports the CUDA runtime the environment loads (its
///   nvidia-cuda-runtime wheel, else torch's CUDA), under the same rule as driver_vs_runtime.
/// - shadow.<file> (e.g. shadow.libcudnn.so.9), for each library file with more than one copy:
///   which copy Tessera loads; WARN when a copy earlier on the search (LD_LIBRARY_PATH, ...)
///   shadows a newer one.
/// - python.<env>.shadow.<file>: WARN when a Python process of the environment would load a
///   copy other than its own wheel's (LD_LIBRARY_PATH comes before the wheels' RUNPATH).
/// - nvml: NVML loaded and initialised; nvmlInit failing with "Driver/library version
///   mismatch" (the driver was updated without a reboot) is a FAIL.
/// - nvml.N (NVML index): OK with the GPU's state when nothing below applies; otherwise
///   nvml.N.ecc (uncorrectable errors since the driver loaded, pages or rows waiting for a
///   reset, a failed remapping, an ECC mode change pending: WARN), nvml.N.mig (MIG on or a
///   change pending: WARN), nvml.N.compute_mode (Prohibited: FAIL, Exclusive_Process or
///   Exclusive_Thread: WARN), nvml.N.persistence (off: WARN), nvml.N.memory (other processes
///   hold >= 1 GiB, or more than half is in use: WARN), nvml.N.clocks (hardware slowdown,
///   thermal slowdown or power brake: WARN).
/// When the CUDA backend is not built or TESSERA_DISABLE_CUDA is set, stack problems do
/// not stop Tessera from running: what would be a FAIL is reported as WARN. The python.*
/// checks are about other programs and never change Tessera's own availability.
std::vector<Check> check(const Report& report, const CheckOptions& options = {});

/// The worst status in `checks` (OK when empty).
Status worst(const std::vector<Check>& checks);

/// Why the CUDA backend cannot be used, or "" when it can: the first FAIL of
/// check(report, {require_cuda=true}) that is not about one GPU; or, when no GPU is
/// covered by the compiled architectures, GPU 0's reason. The CUDA backend calls this at
/// start-up (with process_report()) for `available()` / `unavailable_reason()`.
std::string cuda_unavailable_reason(const Report& report);
/// cuda_unavailable_reason(report).empty().
bool usable(const Report& report);
/// Why cuda:`index` cannot be used, or "": the backend's reason, a missing device, or the
/// device's architecture check.
std::string device_unavailable_reason(const Report& report, int index);

// ---- architectures ----------------------------------------------------------------

enum class ArchSupport {
  SASS,         ///< machine code for this GPU is in the binary
  PTX_JIT,      ///< no machine code; the driver JIT-compiles PTX on first launch
  NONE,         ///< cannot run on this GPU
  UNKNOWN       ///< the architecture list cannot tell ("native", "all", empty, unparsable)
};
/// "sass", "ptx-jit", "none", "unknown".
const char* to_string(ArchSupport s);

struct ArchCoverage {
  ArchSupport support = ArchSupport::UNKNOWN;
  std::string detail;   ///< e.g. "SASS sm_80 (runs on cc 8.6)", "JIT from compute_90 PTX"
};

/// Whether code built for `architectures` (CMAKE_CUDA_ARCHITECTURES syntax, comma or
/// semicolon separated: "86" = sm_86 SASS + compute_86 PTX, "86-real" SASS only,
/// "86-virtual" PTX only, "90a" arch-specific) runs on a GPU of compute capability
/// cc_major.cc_minor. SASS sm_XY runs on cc X.Z for Z >= Y (same major); PTX compute_XY is
/// JIT-compiled for any cc >= X.Y; "a" variants only on exactly X.Y, "f" variants within
/// the family (same major, minor >= Y). (CUDA C Programming Guide, "Binary Compatibility",
/// "PTX Compatibility"; nvcc manual, "GPU Feature List".)
ArchCoverage arch_coverage(const std::string& architectures, int cc_major, int cc_minor);

/// "SASS sm_75 sm_80; PTX compute_90" for an architecture list in the syntax above.
std::string describe_architectures(const std::string& architectures);

// ---- output -----------------------------------------------------------------------

/// One line: "CPU only: no NVIDIA driver (...); CUDA runtime 13.0 found at ...; ..." or
/// "CUDA usable: 1 GPU (...); driver ..., runtime ..., cuBLAS ..., cuDNN ...; 9 OK, 0 WARN, 0 FAIL".
std::string summary(const Report& report, const std::vector<Check>& checks);
/// The readable multi-line report, ending with the summary line.
std::string format_text(const Report& report, const std::vector<Check>& checks);
/// The JSON document's schema identifier, the value of its "schema" key. Documented key by
/// key in docs/tessera-env-json.md; the number changes whenever a key changes meaning or goes.
inline constexpr const char* kJsonSchema = "tessera-env/2";

/// The same as a JSON document (nlohmann/json), with "schema", "summary", "cuda_usable",
/// "worst" and "unavailable_reason" keys (schema kJsonSchema, docs/tessera-env-json.md).
std::string format_json(const Report& report, const std::vector<Check>& checks, int indent = 2);

}  // namespace tessera::env
