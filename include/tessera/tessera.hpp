// Umbrella header: the whole public API of Tessera (tests/test_api.cpp compiles a program
// that uses every namespace through this header alone).
#pragma once
#include "tessera/amp/autocast.hpp"
#include "tessera/amp/grad_scaler.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/autograd/function.hpp"
#include "tessera/autograd/gradcheck.hpp"
#include "tessera/backend.hpp"
#include "tessera/data/data.hpp"  // datasets, transforms, samplers, loaders (MNIST, IDX included)
#include "tessera/deterministic.hpp"
#include "tessera/device.hpp"
#include "tessera/dtype.hpp"
#include "tessera/env/explain.hpp"
#include "tessera/env/report.hpp"
#include "tessera/error.hpp"
#include "tessera/half.hpp"
#include "tessera/interop/dlpack.hpp"
#include "tessera/io/atomic_file.hpp"
#include "tessera/io/checkpoint.hpp"
#include "tessera/io/metrics.hpp"
#include "tessera/io/safetensors.hpp"
#include "tessera/io/saved_state.hpp"
#include "tessera/ops.hpp"
#include "tessera/parallel.hpp"
#include "tessera/random.hpp"
#include "tessera/shape.hpp"
#include "tessera/storage.hpp"
#include "tessera/tensor.hpp"
#if __has_include("tessera/nn/nn.hpp")
#include "tessera/nn/nn.hpp"
#endif
#if __has_include("tessera/optim/optim.hpp")
#include "tessera/optim/optim.hpp"
#endif
#if __has_include("tessera/cuda.hpp")
#include "tessera/cuda.hpp"
#endif
