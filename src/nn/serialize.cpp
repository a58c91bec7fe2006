// nn::save / nn::load: a module's state_dict as a safetensors file.
#include "tessera/nn/serialize.hpp"

#include "tessera/io/safetensors.hpp"

namespace tessera::nn {

void save(const Module& module, const std::string& path) {
  io::save_safetensors(path, module.state_dict(), {{"format", "pt"}});
}

void load(Module& module, const std::string& path, bool strict) {
  const io::TensorMap state = io::load_safetensors(path);
  // load_state_dict's errors name the parameters and shapes; add which file they came from.
  try {
    module.load_state_dict(state, strict);
  } catch (const ShapeError& e) {
    throw ShapeError(std::string(e.what()) + " (checkpoint " + path + ")");
  } catch (const ValueError& e) {
    throw ValueError(std::string(e.what()) + " (checkpoint " + path + ")");
  }
}

}  // namespace tessera::nn
