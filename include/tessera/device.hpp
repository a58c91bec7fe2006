// Device: where a tensor's bytes live. A small value type, parsed from "cpu", "cuda", "cuda:1".
#pragma once
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

namespace tessera {

enum class DeviceType : int8_t { CPU = 0, CUDA = 1 };
constexpr int kNumDeviceTypes = 2;

/// A device: its type and index. CPU has index 0; CUDA devices are numbered as CUDA
/// numbers them (after CUDA_VISIBLE_DEVICES). Modelled on c10::Device.
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  constexpr Device() = default;
  constexpr Device(DeviceType t, int i = 0) : type(t), index(i) {}
  /// Parses "cpu", "cuda", "cuda:N". Throws ValueError on anything else.
  explicit Device(const std::string& spec);
  Device(const char* spec) : Device(std::string(spec)) {}

  static constexpr Device cpu() { return Device(DeviceType::CPU, 0); }
  static constexpr Device cuda(int i = 0) { return Device(DeviceType::CUDA, i); }

  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }
  /// "cpu" or "cuda:N".
  std::string str() const;

  friend constexpr bool operator==(Device a, Device b) { return a.type == b.type && a.index == b.index; }
  friend constexpr bool operator!=(Device a, Device b) { return !(a == b); }
};

std::ostream& operator<<(std::ostream& os, Device d);

/// libtorch's device-type constants: `x.to(kCUDA)` is cuda:0, `Device(kCUDA, 1)` cuda:1.
constexpr DeviceType kCPU = DeviceType::CPU;
constexpr DeviceType kCUDA = DeviceType::CUDA;

}  // namespace tessera
