// Umbrella header: the whole public API of Tessera.
#pragma once
#include "tessera/amp/autocast.hpp"
#include "tessera/amp/grad_scaler.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/backend.hpp"
#include "tessera/data/data.hpp"
#include "tessera/deterministic.hpp"
#include "tessera/device.hpp"
#include "tessera/dtype.hpp"
#include "tessera/error.hpp"
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
