// The saved state of a stateful training component (an optimizer, an LR scheduler, a data
// loader, a random generator), in the shape of PyTorch's state_dict(): its tensors by name,
// and everything else (step counts, hyper-parameters, positions) as one JSON object.
// io::Checkpoint stores the tensors in safetensors and the JSON in the file's metadata.
#pragma once
#include <map>
#include <string>

#include "tessera/tensor.hpp"

namespace tessera {

struct SavedState {
  /// Tensors by name, e.g. "state.0.exp_avg" for an optimizer (PyTorch's nesting, dotted).
  std::map<std::string, Tensor> tensors;
  /// A JSON object (UTF-8 text), e.g. {"param_groups": [...], "state": {"0": {"step": 3}}}.
  std::string json = "{}";
};

}  // namespace tessera
