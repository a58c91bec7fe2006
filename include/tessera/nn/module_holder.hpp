// nn::ModuleHolder and TESSERA_MODULE: libtorch's module handles (torch/nn/pimpl.h), so that
// libtorch model code carries over unchanged:
//
//   struct NetImpl : nn::Module {
//     NetImpl() : fc1(784, 64) { register_module("fc1", fc1); fc2 = register_module("fc2", nn::Linear(64, 10)); }
//     Tensor forward(Tensor x) { return fc2(relu(fc1(x))); }
//     nn::Linear fc1, fc2{nullptr};
//   };
//   TESSERA_MODULE(Net);             // class Net : public nn::ModuleHolder<NetImpl>
//   Net net;  net->to(Device::cuda());  Tensor y = net(x);
//
// A holder is a shared_ptr to its module (copies share the module, as Python references do).
// `nullptr` gives an empty holder, to be assigned later; using an empty holder throws
// ValueError naming the module type.
#pragma once
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "tessera/error.hpp"

namespace tessera::detail {
/// The type name a holder reports in errors: "Linear" for LinearImpl (demangled, the
/// namespace and a trailing "Impl" dropped).
std::string holder_type_name(const char* mangled);
}  // namespace tessera::detail

namespace tessera::nn {

template <typename Contained>
class ModuleHolder {
 public:
  using ContainedType = Contained;

  /// Default-constructs the module. Modules without a default constructor (Linear, Conv2d)
  /// reject this at compile time: write `nn::Linear fc{nullptr};` and assign it later.
  ModuleHolder() : impl_(default_construct()) {}
  /// The empty holder (libtorch's `Linear linear{nullptr}`).
  ModuleHolder(std::nullptr_t) {}  // NOLINT(google-explicit-constructor)
  /// Constructs the module from the arguments of one of its constructors:
  /// `nn::Linear(4, 8)`, `nn::Conv2d(nn::Conv2dOptions(1, 32, 3).stride(2))`.
  template <typename Head, typename... Tail,
            typename = std::enable_if_t<!(std::is_same_v<std::decay_t<Head>, ModuleHolder> && sizeof...(Tail) == 0) &&
                                        !std::is_same_v<std::decay_t<Head>, std::nullptr_t> &&
                                        !std::is_same_v<std::decay_t<Head>, std::shared_ptr<Contained>>>>
  explicit ModuleHolder(Head&& head, Tail&&... tail)
      : impl_(std::make_shared<Contained>(std::forward<Head>(head), std::forward<Tail>(tail)...)) {}
  /// Wraps a module already made (what register_module returns).
  ModuleHolder(std::shared_ptr<Contained> module) : impl_(std::move(module)) {}  // NOLINT

  /// True when the holder holds a module.
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  bool is_empty() const noexcept { return impl_ == nullptr; }

  Contained* operator->() { return get(); }
  const Contained* operator->() const { return get(); }
  Contained& operator*() { return *get(); }
  const Contained& operator*() const { return *get(); }
  /// The shared pointer to the module (empty for an empty holder).
  const std::shared_ptr<Contained>& ptr() const { return impl_; }
  /// The module. Throws ValueError for an empty holder.
  Contained* get() const {
    if (!impl_)
      throw ValueError("nn::" + ::tessera::detail::holder_type_name(typeid(Contained).name()) +
                       ": accessing an empty module holder (constructed with nullptr and never assigned)");
    return impl_.get();
  }

  /// Calls the module's forward with the arguments: `fc1(x)` is `fc1->forward(x)`.
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) {
    return get()->forward(std::forward<Args>(args)...);
  }
  /// Indexes the module (Sequential, ModuleList, ModuleDict): `seq[0]`.
  template <typename Arg>
  decltype(auto) operator[](Arg&& arg) {
    return (*get())[std::forward<Arg>(arg)];
  }

 private:
  static std::shared_ptr<Contained> default_construct() {
    if constexpr (std::is_default_constructible_v<Contained>) {
      return std::make_shared<Contained>();
    } else {
      static_assert(std::is_default_constructible_v<Contained>,
                    "this module has no default constructor: give the holder its constructor's arguments, or "
                    "write `Name name{nullptr};` for an empty holder assigned later (as in libtorch)");
      return nullptr;
    }
  }

  std::shared_ptr<Contained> impl_;
};

/// Whether T is a ModuleHolder of some module.
template <typename T, typename = void>
struct is_module_holder : std::false_type {};
template <typename T>
struct is_module_holder<T, std::void_t<typename T::ContainedType>>
    : std::is_base_of<ModuleHolder<typename T::ContainedType>, T> {};

}  // namespace tessera::nn

/// Declares `class Name : public tessera::nn::ModuleHolder<NameImpl>` with all of the holder's
/// constructors, as libtorch's TORCH_MODULE(Name).
#define TESSERA_MODULE_IMPL(Name, ImplType)                                   \
  class Name : public ::tessera::nn::ModuleHolder<ImplType> {                  \
   public:                                                                     \
    using ::tessera::nn::ModuleHolder<ImplType>::ModuleHolder;                \
    using Impl = ImplType;                                                     \
  }
#define TESSERA_MODULE(Name) TESSERA_MODULE_IMPL(Name, Name##Impl)
