// CPU memory: 64-byte aligned host allocations (Eigen's packets and AVX-512 like that).
#include <cstdlib>
#include <cstring>
#include <new>

#include "cpu/cpu_backend.hpp"

namespace tessera::cpu {

std::shared_ptr<Storage> CpuBackend::allocate(std::size_t nbytes, Device device) {
  std::size_t rounded = (std::max<std::size_t>(nbytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) {
    throw Error("cpu: out of memory allocating " + std::to_string(nbytes) + " bytes");
  }
  return std::make_shared<Storage>(p, nbytes, device, [](void* q) { std::free(q); });
}

void CpuBackend::copy_bytes(void* dst, Device, const void* src, Device, std::size_t nbytes) {
  if (nbytes) std::memcpy(dst, src, nbytes);
}

Backend& cpu_backend_instance() {
  static CpuBackend b;
  return b;
}

}  // namespace tessera::cpu
