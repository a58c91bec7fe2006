// Internal to src/env: the checks beyond Tessera's own chain (Python environments, shadowed
// libraries, PTX, GPU health), called by check() in check.cpp.
#pragma once
#include "tessera/env/report.hpp"

#include <functional>
#include <string>

namespace tessera::env::detail {

/// One verdict before it becomes a Check.
struct Verdict {
  Status status = Status::OK;
  std::string reason;
  std::string fix;
};

/// The driver-versus-runtime rule shared by Tessera's chain and every Python environment:
/// driver >= runtime OK; same major, older minor, CUDA >= 11: WARN (minor-version
/// compatibility); same major before 11 or older major: FAIL. `pair` starts the reason.
Verdict judge_driver(const Version& driver, const Version& runtime, const std::string& pair);

/// "install an NVIDIA driver that supports CUDA X or newer (...)".
std::string driver_fix(const Version& need);

/// Appends one check: name, status, reason, fix, and whether it is about Tessera's own
/// CUDA stack (a FAIL there becomes WARN when CUDA is off).
using AddCheck = std::function<void(std::string, Status, std::string, std::string, bool)>;

void check_python_envs(const Report& r, const AddCheck& add);
void check_loader(const Report& r, const AddCheck& add);
void check_nvml(const Report& r, const AddCheck& add);

}  // namespace tessera::env::detail
