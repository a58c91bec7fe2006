#include "tessera/device.hpp"

#include <cctype>

#include "tessera/error.hpp"

namespace tessera {

Device::Device(const std::string& spec) {
  auto bad = [&]() {
    return ValueError("Device: cannot parse \"" + spec + "\"; expected \"cpu\", \"cuda\" or \"cuda:N\"");
  };
  if (spec == "cpu") {
    type = DeviceType::CPU;
    index = 0;
    return;
  }
  if (spec.rfind("cuda", 0) != 0) throw bad();
  type = DeviceType::CUDA;
  index = 0;
  if (spec.size() == 4) return;
  if (spec[4] != ':' || spec.size() == 5 || spec.size() > 12) throw bad();
  int v = 0;
  for (size_t i = 5; i < spec.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(spec[i]))) throw bad();
    v = v * 10 + (spec[i] - '0');
  }
  index = v;
}

std::string Device::str() const {
  if (is_cpu()) return index == 0 ? std::string("cpu") : "cpu:" + std::to_string(index);
  return "cuda:" + std::to_string(index);
}

std::ostream& operator<<(std::ostream& os, Device d) { return os << d.str(); }

}  // namespace tessera
