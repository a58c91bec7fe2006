// Gradient checks of custom autograd functions (see function.hpp).
#include "tessera/autograd/function.hpp"

#include "tessera/ops.hpp"

namespace tessera::autograd::function_detail {

tensor_list validate_gradients(const std::string& name, tensor_list grads, const std::vector<InputMeta>& inputs) {
  // Trailing undefined gradients beyond the arguments given (a defaulted argument of forward
  // that apply was not passed) are dropped, as libtorch's CppNode does.
  while (grads.size() > inputs.size() && !grads.back().defined()) grads.pop_back();
  TESSERA_CHECK(grads.size() == inputs.size(), AutogradError, name, ": backward returned ", grads.size(),
                " gradients, expected ", inputs.size(), " (one per forward argument; an undefined Tensor for the "
                "arguments that are not tensors or need no gradient)");
  for (std::size_t i = 0; i < grads.size(); ++i) {
    Tensor& g = grads[i];
    if (!g.defined()) continue;
    const InputMeta& in = inputs[i];
    TESSERA_CHECK(in.is_tensor, AutogradError, name, ": backward returned a gradient for argument ", i,
                  ", which is not a tensor (return an undefined Tensor there)");
    TESSERA_CHECK(g.device() == in.device, AutogradError, name, ": the gradient for argument ", i, " is on ",
                  g.device().str(), " but the input is on ", in.device.str());
    if (g.shape() != in.shape) {
      bool broadcasts = true;
      try {
        broadcasts = broadcast_shapes(in.shape, g.shape()) == g.shape();
      } catch (const ShapeError&) {
        broadcasts = false;
      }
      TESSERA_CHECK(broadcasts, AutogradError, name, ": backward returned a gradient of shape ",
                    shape_str(g.shape()), " for argument ", i, " of shape ", shape_str(in.shape));
      g = sum_to(g, in.shape);
    }
    if (g.dtype() != in.dtype) g = g.to(in.dtype);
  }
  return grads;
}

}  // namespace tessera::autograd::function_detail
