// nn::save / nn::load: a module's state_dict as a safetensors file.
#include "tessera/nn/serialize.hpp"

#include "tessera/io/safetensors.hpp"

namespace tessera::nn {

void save(const Module& module, const std::string& path) {
  io::save_safetensors(path, module.state_dict(), {{"format", "pt"}});
}

void load(Module& module, const std::string& path, bool strict) {
  module.load_state_dict(io::load_safetensors(path), strict);
}

}  // namespace tessera::nn
