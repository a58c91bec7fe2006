// Saving and loading a module's state_dict in the safetensors format, so weights
// round-trip and open in other tools (PyTorch's safetensors.torch.load_file, ...).
#pragma once
#include <string>
#include <vector>
#include <vector>

#include "tessera/nn/module.hpp"
#include "tessera/nn/module_holder.hpp"
#include "tessera/tensor.hpp"
#include "tessera/nn/module_holder.hpp"
#include "tessera/tensor.hpp"

namespace tessera::nn {

/// Writes module.state_dict() to path as safetensors (atomically: temp file + rename).
/// Throws IOError naming the path when it cannot be written.
void save(const Module& module, const std::string& path);

/// Loads path (safetensors) into module with load_state_dict(strict). Throws IOError for an
/// unreadable or corrupt file, ShapeError / ValueError as load_state_dict does.
void load(Module& module, const std::string& path, bool strict = true);
/// The same for a module holder: `nn::save(net, "net.safetensors")`.
template <typename M>
void save(const ModuleHolder<M>& module, const std::string& path) {
  save(static_cast<const Module&>(*module), path);
}
template <typename M>
void load(ModuleHolder<M>& module, const std::string& path, bool strict = true) {
  load(static_cast<Module&>(*module), path, strict);
}

}  // namespace tessera::nn

namespace tessera {
/// libtorch's torch::save / torch::load spelling, to safetensors: a module (or its holder) saves
/// its state_dict (these are nn::save / nn::load); a tensor is saved under the key "tensor", a list of tensors
/// under "0", "1", ... Loading a tensor replaces `tensor` by the file's (on the CPU).
/// Throws IOError naming the file when it cannot be read or written or lacks the keys.
using nn::load;
using nn::save;
void save(const Tensor& tensor, const std::string& path);
void load(Tensor& tensor, const std::string& path);
void save(const std::vector<Tensor>& tensors, const std::string& path);
void load(std::vector<Tensor>& tensors, const std::string& path);
}  // namespace tessera
