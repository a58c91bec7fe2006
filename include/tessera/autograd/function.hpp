// Custom autograd functions, as libtorch's torch::autograd::Function<T>: an op written by the
// user with its own forward and backward, usable in any graph.
//
//   struct MulConstant : autograd::Function<MulConstant> {
//     static Tensor forward(autograd::AutogradContext* ctx, Tensor x, double c) {
//       ctx->saved_data["c"] = c;
//       ctx->save_for_backward({x});
//       return x.mul(c);
//     }
//     static autograd::tensor_list backward(autograd::AutogradContext* ctx, autograd::tensor_list grad_outputs) {
//       const double c = ctx->saved_data["c"].toDouble();
//       return {grad_outputs[0].mul(c), Tensor()};   // one gradient per forward argument
//     }
//   };
//   Tensor y = MulConstant::apply(x, 2.0);
//
// forward runs with grad mode off (what it computes records no history); when an input
// requires grad, the output gets a node named "<T>Backward" whose backward calls T::backward.
// backward returns one tensor per argument of forward after ctx, in order: the gradient for a
// Tensor argument (undefined = none), an undefined Tensor for every other argument.
// Gradients are checked: a wrong count is an AutogradError naming the function; a gradient
// whose shape differs from its input's is summed down to it when it broadcasts (PyTorch's
// validate_outputs), else an AutogradError naming the function, the index and both shapes;
// one of another dtype is converted to the input's. Only functions with one Tensor output are
// supported. The saved tensors and data are freed after backward unless retain_graph. Save
// inputs, not forward's own result: the output's node holding the output is a reference
// cycle that is only broken by a backward without retain_graph (recompute it in backward).
// An op of the library written this way: binary_cross_entropy (src/ops_loss.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"
#include "tessera/tensor.hpp"

namespace tessera::detail {
std::string holder_type_name(const char* mangled);
}  // namespace tessera::detail

namespace tessera::autograd {

using tensor_list = std::vector<Tensor>;
/// libtorch's other name for it (torch::autograd::variable_list).
using variable_list = tensor_list;

/// A value kept in AutogradContext::saved_data: a double, an integer, a bool, a string or a
/// tensor, read back with the accessor of its kind (libtorch's IValue subset).
/// The accessors throw AutogradError naming the kind held when it is another.
class SavedValue {
 public:
  SavedValue() = default;
  SavedValue(double v) : v_(v) {}                              // NOLINT(google-explicit-constructor)
  SavedValue(float v) : v_(double(v)) {}                       // NOLINT(google-explicit-constructor)
  SavedValue(int v) : v_(int64_t(v)) {}                        // NOLINT(google-explicit-constructor)
  SavedValue(int64_t v) : v_(v) {}                             // NOLINT(google-explicit-constructor)
  SavedValue(bool v) : v_(v) {}                                // NOLINT(google-explicit-constructor)
  SavedValue(std::string v) : v_(std::move(v)) {}              // NOLINT(google-explicit-constructor)
  SavedValue(const char* v) : v_(std::string(v)) {}            // NOLINT(google-explicit-constructor)
  SavedValue(Tensor v) : v_(std::move(v)) {}                   // NOLINT(google-explicit-constructor)
  double toDouble() const { return get<double>("double"); }
  int64_t toInt() const { return get<int64_t>("int"); }
  bool toBool() const { return get<bool>("bool"); }
  const std::string& toStringRef() const { return get<std::string>("string"); }
  const Tensor& toTensor() const { return get<Tensor>("Tensor"); }

 private:
  template <typename T>
  const T& get(const char* want) const {
    if (const T* p = std::get_if<T>(&v_)) return *p;
    static const char* const kinds[] = {"none", "double", "int", "bool", "string", "Tensor"};
    throw AutogradError(std::string("AutogradContext::saved_data: asked for a ") + want + ", holds a " +
                        kinds[v_.index()]);
  }
  std::variant<std::monostate, double, int64_t, bool, std::string, Tensor> v_;
};

/// What forward hands to backward (libtorch's AutogradContext).
class AutogradContext {
 public:
  /// Saves tensors for backward (undefined ones allowed), replacing any saved before.
  void save_for_backward(tensor_list tensors) { saved_ = std::move(tensors); }
  /// The tensors saved by forward.
  const tensor_list& get_saved_variables() const { return saved_; }
  /// Whether forward's i-th argument is a tensor that requires grad (backward may skip the
  /// gradients nobody needs). Throws IndexError for i past the arguments.
  bool needs_input_grad(std::size_t i) const {
    TESSERA_CHECK(i < needs_input_grad_.size(), IndexError, "AutogradContext::needs_input_grad(", i, "): forward has ",
                  needs_input_grad_.size(), " arguments");
    return needs_input_grad_[i];
  }
  /// Any other values backward needs, by name.
  std::unordered_map<std::string, SavedValue> saved_data;

 private:
  template <class T>
  friend struct Function;
  tensor_list saved_;
  std::vector<bool> needs_input_grad_;
};

namespace function_detail {
/// What the gradient of one forward argument must look like.
struct InputMeta {
  bool is_tensor = false;
  Shape shape;
  DType dtype = DType::Float32;
  Device device;
};
template <typename A>
Tensor as_input(const A& a) {
  if constexpr (std::is_convertible_v<const A&, const Tensor&>)
    return a;
  else
    return Tensor();
}
/// Checks and adapts the gradients backward returned (see the header comment).
tensor_list validate_gradients(const std::string& name, tensor_list grads, const std::vector<InputMeta>& inputs);
}  // namespace function_detail

/// The base of a custom function T with static forward(AutogradContext*, args...) -> Tensor
/// and static backward(AutogradContext*, tensor_list grad_outputs) -> tensor_list.
template <class T>
struct Function {
  /// Runs T::forward on args and records T::backward as the gradient of its output.
  template <typename... Args>
  static Tensor apply(Args&&... args) {
    using Out = decltype(T::forward(std::declval<AutogradContext*>(), std::forward<Args>(args)...));
    static_assert(std::is_same_v<std::decay_t<Out>, Tensor>,
                  "autograd::Function: forward must return one Tensor (several outputs are not supported)");
    auto ctx = std::make_shared<AutogradContext>();
    tensor_list inputs{function_detail::as_input(args)...};
    for (const Tensor& t : inputs) ctx->needs_input_grad_.push_back(t.defined() && t.requires_grad());
    const bool record_history = grad_mode_enabled() && [&] {
      for (bool b : ctx->needs_input_grad_)
        if (b) return true;
      return false;
    }();
    Tensor out;
    {
      NoGradGuard no_grad;
      out = T::forward(ctx.get(), std::forward<Args>(args)...);
    }
    TESSERA_CHECK(out.defined(), AutogradError, name(), ": forward returned an undefined tensor");
    if (!record_history) return out;
    // A forward that returns one of its inputs gets a new tensor sharing the data, so the
    // input's own history is left alone (as PyTorch's view-of-input handling).
    for (const Tensor& t : inputs)
      if (t.defined() && t.is_same(out)) out = out.detach();
    const std::string node_name = name() + "Backward";
    std::vector<function_detail::InputMeta> meta;
    for (const Tensor& t : inputs) {
      function_detail::InputMeta m;
      if (t.defined()) m = {true, t.shape(), t.dtype(), t.device()};
      meta.push_back(std::move(m));
    }
    record(out, node_name.c_str(), inputs, [ctx, meta, node_name](const Tensor& g) {
      return function_detail::validate_gradients(node_name, T::backward(ctx.get(), tensor_list{g}), meta);
    }, /*double_backward=*/true);  // backward's ops on the saved tensors record under create_graph
    return out;
  }

  /// "T" demangled, without its namespace.
  static std::string name() { return ::tessera::detail::holder_type_name(typeid(T).name()); }
};

}  // namespace tessera::autograd
