// The data API, as libtorch's torch/data.h: datasets, transforms, samplers, the general
// loader (make_data_loader) and the MNIST-specific fast loader.
#pragma once
#include "tessera/data/data_loader_options.hpp"
#include "tessera/data/dataloader.hpp"
#include "tessera/data/datasets.hpp"
#include "tessera/data/example.hpp"
#include "tessera/data/idx.hpp"
#include "tessera/data/loader_state.hpp"
#include "tessera/data/mnist.hpp"
#include "tessera/data/samplers.hpp"
#include "tessera/data/stateless_data_loader.hpp"
#include "tessera/data/transforms.hpp"
