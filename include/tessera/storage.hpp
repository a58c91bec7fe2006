// Storage: a block of bytes on one device, owned through the deleter of the allocator
// that made it (or not owned, for from_blob). Tensors share storage through shared_ptr.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "tessera/device.hpp"

namespace tessera {

class Storage {
 public:
  using Deleter = std::function<void(void*)>;
  /// Takes ownership of data (nbytes on device), released by deleter (may be empty:
  /// then the bytes are borrowed and the caller keeps them alive).
  Storage(void* data, std::size_t nbytes, Device device, Deleter deleter)
      : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}
  ~Storage() {
    if (deleter_ && data_) deleter_(data_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  /// Allocates nbytes on device through that device's backend (caching allocator on CUDA).
  /// Throws DeviceError when the device is not available.
  static std::shared_ptr<Storage> allocate(std::size_t nbytes, Device device);

 private:
  void* data_;
  std::size_t nbytes_;
  Device device_;
  Deleter deleter_;
};

}  // namespace tessera
