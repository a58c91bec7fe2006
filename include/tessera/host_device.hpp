// TESSERA_HOST_DEVICE: marks inline functions that CUDA device code calls too (the random
// numbers, the two-byte float types); empty for a host compiler.
#pragma once

#if defined(__CUDACC__)
#define TESSERA_HOST_DEVICE __host__ __device__
#else
#define TESSERA_HOST_DEVICE
#endif
