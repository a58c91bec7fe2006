// tessera::nn: modules and their holders, containers, layers, losses, initialisation and safetensors save/load of state_dicts.
#pragma once
#include "tessera/io/safetensors.hpp"
#include "tessera/nn/clip_grad.hpp"
#include "tessera/nn/init.hpp"
#include "tessera/nn/containers.hpp"
#include "tessera/nn/layers.hpp"
#include "tessera/nn/loss.hpp"
#include "tessera/nn/module.hpp"
#include "tessera/nn/module_holder.hpp"
#include "tessera/nn/serialize.hpp"
