// nn::Module: the base of every layer and model, modelled on torch.nn.Module / libtorch's
// torch::nn::Module. A module owns named parameters (leaf tensors with requires_grad),
// named buffers (state that is saved but not trained) and named submodules (held by
// shared_ptr, as libtorch does). Parameter names are dotted paths: "fc1.weight", "0.bias".
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/device.hpp"
#include "tessera/dtype.hpp"
#include "tessera/nn/module_holder.hpp"
#include "tessera/tensor.hpp"

namespace tessera::nn {

/// name -> tensor, ordered by name. What state_dict() returns, load_state_dict() takes and
/// io::save_safetensors writes.
using StateDict = std::map<std::string, Tensor>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  /// A module named after its C++ class, as libtorch does it, with the namespace and a
  /// trailing "Impl" dropped: `struct NetImpl : nn::Module` prints as "Net".
  Module() = default;
  /// A module whose printed name is type_name ("Conv2d").
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The module's computation for one input tensor. The base throws UnsupportedError
  /// naming the module type (modules with other signatures define their own forward; a
  /// module holder and Sequential call the forward of the module's own class).
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// "Conv2d", "Sequential", the name the subclass gave, or its class name (see Module()).
  const std::string& type_name() const;
  /// libtorch's spelling of type_name().
  const std::string& name() const { return type_name(); }

  // ---- registration ------------------------------------------------------------------
  /// Registers t as parameter `name` (no '.' in it, unique in this module) and returns it.
  /// The tensor is made a leaf that requires grad when requires_grad (it must be floating
  /// point then: DTypeError). An undefined tensor registers "no parameter" (e.g. bias=false)
  /// and is skipped by parameters() and state_dict(). Throws ValueError on a bad or
  /// duplicate name.
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  /// Registers t as buffer `name`: saved in state_dict() and moved by to(), never trained.
  Tensor register_buffer(const std::string& name, Tensor t);
  /// Registers a submodule (its parameters become "name.<param>") and returns it.
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>,
                  "register_module takes a std::shared_ptr to an nn::Module or a module holder (nn::Linear)");
    register_module_impl(name, std::static_pointer_cast<Module>(module));
    return module;
  }
  /// Replaces the submodule registered as name (torch's setattr on an existing child,
  /// libtorch's replace_module) and returns the new one. Throws ValueError when there is no
  /// submodule of that name or module is null.
  template <typename M>
  std::shared_ptr<M> replace_module(const std::string& name, std::shared_ptr<M> module) {
    replace_module_impl(name, std::static_pointer_cast<Module>(module));
    return module;
  }
  template <typename M>
  std::shared_ptr<M> replace_module(const std::string& name, ModuleHolder<M> holder) {
    return replace_module(name, holder.ptr());
  }
  /// Registers the module a holder holds: `fc1 = register_module("fc1", nn::Linear(4, 8));`.
  /// Throws ValueError for an empty holder.
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, ModuleHolder<M> holder) {
    return register_module(name, holder.ptr());
  }

  // ---- traversal -----------------------------------------------------------------------
  /// Parameters in registration order, this module's first, then each submodule's
  /// (depth first); only this module's when !recurse.
  std::vector<Tensor> parameters(bool recurse = true) const;
  /// (dotted name, parameter) pairs in the order of parameters().
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  /// Direct submodules in registration order.
  std::vector<std::shared_ptr<Module>> children() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  /// Every submodule below this one, depth first, with dotted names (this module excluded).
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;
  /// Every submodule below this one, depth first (named_modules() without the names).
  std::vector<std::shared_ptr<Module>> modules() const;
  /// Calls fn on every submodule (depth first, children before their parents, as
  /// torch.nn.Module.apply) and then on this module; for custom initialisation. Returns *this.
  Module& apply(const std::function<void(Module&)>& fn);

  // ---- mode and placement ----------------------------------------------------------------
  /// Sets training mode here and in every submodule (Dropout uses it). Returns *this.
  virtual Module& train(bool on = true);
  /// train(false).
  Module& eval() { return train(false); }
  bool is_training() const { return training_; }

  /// Moves every parameter and buffer to device in place: the Tensor handles held by
  /// layers and optimizers stay valid and parameters stay leaves that require grad.
  /// Accumulated gradients move with them. Throws DeviceError when the device is unusable.
  Module& to(Device device);
  /// Converts every floating-point parameter and buffer to dtype (floating point) in place.
  /// Throws DTypeError for a non-floating dtype.
  Module& to(DType dtype);

  /// Clears the gradient of every parameter: set_to_none drops it (PyTorch 2's default),
  /// else it is filled with zeros.
  void zero_grad(bool set_to_none = true);

  // ---- state -------------------------------------------------------------------------------
  /// Every parameter and buffer by dotted name. The tensors share memory with the module
  /// (detached: no autograd history); clone them to keep a snapshot.
  StateDict state_dict() const;
  /// Copies the tensors of state into the parameters and buffers of the same names
  /// (converting dtype and device as needed, like PyTorch's load_state_dict).
  /// Throws ShapeError naming the parameter and both shapes when shapes differ, and
  /// ValueError listing every missing and unexpected key when strict and the names differ.
  void load_state_dict(const StateDict& state, bool strict = true);

  // ---- printing -------------------------------------------------------------------------------
  /// The hyper-parameters shown in parentheses when printing ("1, 32, kernel_size=(3, 3)").
  virtual std::string extra_repr() const { return ""; }
  /// PyTorch-style tree: "Net(\n  (conv1): Conv2d(1, 32, kernel_size=(3, 3), ...)\n ...)".
  std::string str() const;

 protected:
  void register_module_impl(const std::string& name, std::shared_ptr<Module> module);
  void replace_module_impl(const std::string& name, std::shared_ptr<Module> module);

 private:
  void check_new_name(const std::string& name, const char* what) const;
  void str_impl(std::ostream& os, int indent) const;
  template <typename F>
  void for_each_tensor(F&& f);

  mutable std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

/// Number of elements over all parameters (for printing model sizes).
int64_t parameter_count(const Module& m);

}  // namespace tessera::nn
