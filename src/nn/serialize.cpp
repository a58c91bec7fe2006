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

namespace tessera {

void save(const Tensor& tensor, const std::string& path) { io::save_safetensors(path, {{"tensor", tensor}}); }

void load(Tensor& tensor, const std::string& path) {
  const io::TensorMap m = io::load_safetensors(path);
  auto it = m.find("tensor");
  if (it == m.end())
    throw IOError("load: " + path + " holds no tensor under the key \"tensor\" (was it written by save(Tensor)?)");
  tensor = it->second;
}

void save(const std::vector<Tensor>& tensors, const std::string& path) {
  io::TensorMap m;
  for (std::size_t i = 0; i < tensors.size(); ++i) m[std::to_string(i)] = tensors[i];
  io::save_safetensors(path, m);
}

void load(std::vector<Tensor>& tensors, const std::string& path) {
  const io::TensorMap m = io::load_safetensors(path);
  std::vector<Tensor> out;
  for (std::size_t i = 0; i < m.size(); ++i) {
    auto it = m.find(std::to_string(i));
    if (it == m.end())
      throw IOError("load: " + path + " is not a list of tensors: key \"" + std::to_string(i) + "\" is missing");
    out.push_back(it->second);
  }
  tensors = std::move(out);
}

}  // namespace tessera
