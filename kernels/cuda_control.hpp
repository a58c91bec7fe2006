// The CUDA-free control interface between src/cuda_api.cpp (public tessera::cuda
// functions, compiled in every build) and the CUDA backend in kernels/. Only a CUDA build
// defines cuda_control(); src/cuda_api.cpp calls it only when TESSERA_WITH_CUDA_BUILD is 1.
// Calling it also makes sure the backend object file (and its static registration with
// register_backend) is linked in, even when libtessera is a static archive.
#pragma once
#include <cstdint>

#include "tessera/cuda.hpp"

namespace tessera::cuda::detail {

class Control {
 public:
  virtual ~Control() = default;
  /// Gathers the availability probe (once; cached). Never throws.
  virtual const AvailabilityProbe& probe() = 0;
  virtual RuntimeInfo runtime_info() = 0;
  virtual void synchronize(int device) = 0;
  virtual MemoryStats memory_stats(int device) = 0;
  virtual void reset_peak_memory_stats(int device) = 0;
  virtual void empty_cache() = 0;
};

/// The CUDA backend's control object (defined in kernels/cuda_backend.cu). Also registers the
/// backend with register_backend if static initialisation has not already done so.
Control& cuda_control();

}  // namespace tessera::cuda::detail
