// A fake libnvidia-ml.so.1 for tessera-env's tests: every answer comes from the script file
// named by $TESSERA_FAKE_NVML_SCRIPT, re-read at each nvmlInit_v2. Lines are "key value":
//   init 18                      nvmlInit_v2's return code (0 by default)
//   driver 570.124.06            nvmlSystemGetDriverVersion
//   count 2                      nvmlDeviceGetCount_v2
//   <i>.name / <i>.uuid TEXT
//   <i>.ecc CURRENT PENDING      nvmlDeviceGetEccMode
//   <i>.ecc_uncorrected N        nvmlDeviceGetTotalEccErrors (uncorrected, volatile)
//   <i>.retired_pending 0|1      <i>.remap PENDING FAILED
//   <i>.mig CURRENT PENDING      <i>.compute_mode N      <i>.persistence 0|1
//   <i>.memory TOTAL USED        bytes                   <i>.processes N
//   <i>.clocks MASK              nvmlDeviceGetCurrentClocksEventReasons (decimal or 0x hex)
// A query whose key is absent returns NVML_ERROR_NOT_SUPPORTED (3).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace {

std::map<std::string, std::string> g_script;

void load() {
  g_script.clear();
  const char* path = std::getenv("TESSERA_FAKE_NVML_SCRIPT");
  if (!path) return;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    const auto sp = line.find(' ');
    if (sp == std::string::npos || line[0] == '#') continue;
    g_script[line.substr(0, sp)] = line.substr(sp + 1);
  }
}

const std::string* get(const std::string& key) {
  auto it = g_script.find(key);
  return it == g_script.end() ? nullptr : &it->second;
}

std::string key(void* device, const char* what) {
  return std::to_string(reinterpret_cast<std::uintptr_t>(device) - 1) + "." + what;
}

int copy(const std::string* v, char* out, unsigned length) {
  if (!v) return 3;
  std::strncpy(out, v->c_str(), length);
  if (length) out[length - 1] = '\0';
  return 0;
}

template <typename T>
int numbers(const std::string* v, T* a, T* b = nullptr) {
  if (!v) return 3;
  std::istringstream in(*v);
  std::string x, y;
  in >> x >> y;
  *a = static_cast<T>(std::strtoull(x.c_str(), nullptr, 0));
  if (b) *b = static_cast<T>(std::strtoull(y.c_str(), nullptr, 0));
  return 0;
}

}  // namespace

extern "C" {

int nvmlInit_v2() {
  load();
  const std::string* v = get("init");
  return v ? std::atoi(v->c_str()) : 0;
}
int nvmlShutdown() { return 0; }
const char* nvmlErrorString(int rc) {
  switch (rc) {
    case 0: return "Success";
    case 3: return "Not Supported";
    case 9: return "Driver Not Loaded";
    case 18: return "Driver/library version mismatch";
    default: return "Unknown Error";
  }
}
int nvmlSystemGetDriverVersion(char* out, unsigned length) { return copy(get("driver"), out, length); }
int nvmlDeviceGetCount_v2(unsigned* n) { return numbers(get("count"), n); }
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void** device) {
  unsigned n = 0;
  if (numbers(get("count"), &n) != 0 || i >= n) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *device = reinterpret_cast<void*>(static_cast<std::uintptr_t>(i) + 1);
  return 0;
}
int nvmlDeviceGetName(void* d, char* out, unsigned length) { return copy(get(key(d, "name")), out, length); }
int nvmlDeviceGetUUID(void* d, char* out, unsigned length) { return copy(get(key(d, "uuid")), out, length); }
int nvmlDeviceGetEccMode(void* d, int* current, int* pending) { return numbers(get(key(d, "ecc")), current, pending); }
int nvmlDeviceGetTotalEccErrors(void* d, int type, int counter, unsigned long long* n) {
  if (type != 1 || counter != 0) return 3;  // only uncorrected, volatile is scripted
  return numbers(get(key(d, "ecc_uncorrected")), n);
}
int nvmlDeviceGetRetiredPagesPendingStatus(void* d, int* pending) { return numbers(get(key(d, "retired_pending")), pending); }
int nvmlDeviceGetRemappedRows(void* d, unsigned* corr, unsigned* unc, unsigned* pending, unsigned* failed) {
  *corr = *unc = 0;
  return numbers(get(key(d, "remap")), pending, failed);
}
int nvmlDeviceGetMigMode(void* d, int* current, int* pending) { return numbers(get(key(d, "mig")), current, pending); }
int nvmlDeviceGetComputeMode(void* d, int* mode) { return numbers(get(key(d, "compute_mode")), mode); }
int nvmlDeviceGetPersistenceMode(void* d, int* mode) { return numbers(get(key(d, "persistence")), mode); }
struct Memory {
  unsigned long long total, free, used;
};
int nvmlDeviceGetMemoryInfo(void* d, Memory* m) {
  const int rc = numbers(get(key(d, "memory")), &m->total, &m->used);
  m->free = rc == 0 ? m->total - m->used : 0;
  return rc;
}
int nvmlDeviceGetComputeRunningProcesses_v3(void* d, unsigned* count, void* infos) {
  unsigned n = 0;
  if (numbers(get(key(d, "processes")), &n) != 0) return 3;
  const bool fits = infos && *count >= n;
  *count = n;
  return n == 0 || fits ? 0 : 7;  // NVML_ERROR_INSUFFICIENT_SIZE
}
int nvmlDeviceGetCurrentClocksEventReasons(void* d, unsigned long long* reasons) { return numbers(get(key(d, "clocks")), reasons); }

}  // extern "C"
