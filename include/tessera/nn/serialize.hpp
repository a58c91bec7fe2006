// Saving and loading a module's state_dict in the safetensors format, so weights
// round-trip and open in other tools (PyTorch's safetensors.torch.load_file, ...).
#pragma once
#include <string>

#include "tessera/nn/module.hpp"

namespace tessera::nn {

/// Writes module.state_dict() to path as safetensors (atomically: temp file + rename).
/// Throws IOError naming the path when it cannot be written.
void save(const Module& module, const std::string& path);

/// Loads path (safetensors) into module with load_state_dict(strict). Throws IOError for an
/// unreadable or corrupt file, ShapeError / ValueError as load_state_dict does.
void load(Module& module, const std::string& path, bool strict = true);

}  // namespace tessera::nn
