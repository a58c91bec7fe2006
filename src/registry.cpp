// The backend registry and device allocation entry points.
#include <array>

#include "tessera/backend.hpp"
#include "tessera/cuda.hpp"
#include "tessera/random.hpp"

namespace tessera {

namespace cpu {
Backend& cpu_backend_instance();  // src/cpu/memory.cpp
}

namespace {
std::array<Backend*, kNumDeviceTypes>& registry() {
  static std::array<Backend*, kNumDeviceTypes> r{};
  return r;
}
}  // namespace

void register_backend(DeviceType type, Backend* backend) { registry()[int(type)] = backend; }

Backend* find_backend(DeviceType type) {
  // The CPU backend is always there; referencing it here keeps it linked from a static library.
  if (type == DeviceType::CPU) return &cpu::cpu_backend_instance();
  return registry()[int(type)];
}

Backend& backend_for(DeviceType type) {
  Backend* b = find_backend(type);
  if (!b) {
    // Only CUDA can be missing; cuda::unavailable_reason() says why (the same text tessera-env shows).
    throw DeviceError("device cuda is not available: " + cuda::unavailable_reason());
  }
  if (!b->is_available()) {
    throw DeviceError(std::string("device ") + b->name() + " is not available: " + b->unavailable_reason());
  }
  return *b;
}

std::shared_ptr<Storage> Storage::allocate(std::size_t nbytes, Device device) {
  Backend& b = backend_for(device);
  TESSERA_CHECK(device.index >= 0 && device.index < b.device_count(), DeviceError, "device ", device.str(),
                " does not exist (", b.device_count(), " ", b.name(), " device(s))");
  return b.allocate(nbytes, device);
}

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace tessera
