// The module containers of torch.nn / libtorch: Sequential, ModuleList, ModuleDict, and
// AnyModule (a module with its own class's forward remembered, as libtorch's AnyModule).
#pragma once
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/error.hpp"
#include "tessera/nn/module.hpp"
#include "tessera/nn/module_holder.hpp"
#include "tessera/tensor.hpp"

namespace tessera::detail {
/// m as a T, for the containers' ptr<T>(key): ValueError naming the container, the key and
/// both types when it is not one.
template <typename T, typename Key>
std::shared_ptr<T> module_as(const std::shared_ptr<nn::Module>& m, const char* container, const Key& key) {
  auto t = std::dynamic_pointer_cast<T>(m);
  TESSERA_CHECK(t != nullptr, ValueError, container, "::ptr<", holder_type_name(typeid(T).name()), ">(", key,
                "): the module is a ", m->type_name());
  return t;
}

template <typename M, typename = void>
struct has_tensor_forward : std::false_type {};
template <typename M>
struct has_tensor_forward<M, std::void_t<decltype(Tensor(std::declval<M&>().forward(std::declval<const Tensor&>())))>>
    : std::true_type {};
}  // namespace tessera::detail

namespace tessera::nn {

/// Any module together with the forward of its own class (taking one Tensor, returning a
/// Tensor), so that Sequential calls `forward(Tensor x)` of a user's module even when it
/// does not override Module::forward. Made implicitly from a std::shared_ptr<M> or a module
/// holder; an empty one (nullptr or an empty holder) throws ValueError when pushed.
class AnyModule {
 public:
  AnyModule() = default;
  template <typename M, typename = std::enable_if_t<std::is_base_of_v<Module, M>>>
  AnyModule(std::shared_ptr<M> module) : module_(module) {  // NOLINT(google-explicit-constructor)
    static_assert(::tessera::detail::has_tensor_forward<M>::value,
                  "a module in Sequential needs a forward that takes one Tensor and returns a Tensor");
    if (module) forward_ = [m = module.get()](const Tensor& x) -> Tensor { return m->forward(x); };
  }
  template <typename M>
  AnyModule(const ModuleHolder<M>& holder) : AnyModule(holder.ptr()) {}  // NOLINT(google-explicit-constructor)

  const std::shared_ptr<Module>& ptr() const { return module_; }
  bool is_empty() const { return module_ == nullptr; }
  /// The module's own forward. Throws ValueError when empty.
  Tensor forward(const Tensor& x) const {
    TESSERA_CHECK(module_ != nullptr, ValueError, "AnyModule::forward: empty module");
    return forward_(x);
  }

 private:
  std::shared_ptr<Module> module_;
  std::function<Tensor(const Tensor&)> forward_;
};

/// A module and the name to register it under: `{"fc1", nn::Linear(4, 8)}`.
struct NamedAnyModule {
  template <typename M>
  NamedAnyModule(std::string name, M&& module) : name(std::move(name)), module(std::forward<M>(module)) {}
  std::string name;
  AnyModule module;
};

/// An ordered chain of modules; forward feeds each module's output to the next, calling the
/// forward of each module's own class. Parameters are named by position ("0.weight",
/// "2.bias") unless the modules were given names. As torch.nn.Sequential / libtorch:
///   nn::Sequential net(nn::Linear(4, 8), nn::ReLU(), nn::Linear(8, 2));
///   nn::Sequential named({{"fc1", nn::Linear(4, 8)}, {"act", nn::Tanh()}});
class SequentialImpl : public Module {
 public:
  SequentialImpl() : Module("Sequential") {}
  /// The modules in order (holders or shared_ptrs to modules).
  template <typename First, typename... Rest,
            typename = std::enable_if_t<!std::is_same_v<std::decay_t<First>, std::initializer_list<AnyModule>>>>
  explicit SequentialImpl(First&& first, Rest&&... rest) : Module("Sequential") {
    push_back(std::forward<First>(first));
    (push_back(std::forward<Rest>(rest)), ...);
  }
  SequentialImpl(std::initializer_list<AnyModule> modules);
  /// Modules with the names they are registered under.
  SequentialImpl(std::initializer_list<NamedAnyModule> modules);

  /// Appends module under the name of its position. Throws ValueError for an empty module.
  SequentialImpl& push_back(AnyModule module);
  /// Appends module under the given name (ValueError when taken or containing '.').
  SequentialImpl& push_back(const std::string& name, AnyModule module);
  /// Appends every module of another Sequential (shared, not copied).
  SequentialImpl& extend(const SequentialImpl& other);

  Tensor forward(const Tensor& x) override;
  std::size_t size() const { return modules_.size(); }
  bool is_empty() const { return modules_.empty(); }
  /// The i-th module. Throws IndexError when out of range.
  std::shared_ptr<Module> operator[](std::size_t i) const;
  std::shared_ptr<Module> ptr(std::size_t i) const { return (*this)[i]; }
  /// The i-th module as its class T. Throws IndexError when out of range and ValueError
  /// naming both types when it is not a T.
  template <typename T>
  std::shared_ptr<T> ptr(std::size_t i) const { return ::tessera::detail::module_as<T>((*this)[i], "Sequential", i); }
  template <typename T>
  T& at(std::size_t i) const { return *ptr<T>(i); }

 private:
  std::vector<AnyModule> modules_;
};
/// The holder of SequentialImpl; like libtorch's, it also takes brace lists of modules and of
/// {name, module} pairs.
class Sequential : public ModuleHolder<SequentialImpl> {
 public:
  using ModuleHolder<SequentialImpl>::ModuleHolder;
  using Impl = SequentialImpl;
  Sequential() : ModuleHolder<SequentialImpl>() {}
  Sequential(std::initializer_list<AnyModule> modules)
      : ModuleHolder<SequentialImpl>(std::make_shared<SequentialImpl>(modules)) {}
  Sequential(std::initializer_list<NamedAnyModule> modules)
      : ModuleHolder<SequentialImpl>(std::make_shared<SequentialImpl>(modules)) {}
};

/// A list of submodules, registered as "0", "1", ...: torch.nn.ModuleList. It has no forward;
/// the owner's forward iterates it:   for (const auto& block : *blocks) x = block->forward(x);
class ModuleListImpl : public Module {
 public:
  ModuleListImpl() : Module("ModuleList") {}
  template <typename First, typename... Rest,
            typename = std::enable_if_t<!std::is_same_v<std::decay_t<First>, std::initializer_list<AnyModule>>>>
  explicit ModuleListImpl(First&& first, Rest&&... rest) : Module("ModuleList") {
    push_back(std::forward<First>(first));
    (push_back(std::forward<Rest>(rest)), ...);
  }
  ModuleListImpl(std::initializer_list<AnyModule> modules);

  /// Appends a module (ValueError when empty).
  ModuleListImpl& push_back(const AnyModule& module);
  /// Appends every module of another list (shared, not copied).
  ModuleListImpl& extend(const ModuleListImpl& other);
  std::size_t size() const { return modules_.size(); }
  bool is_empty() const { return modules_.empty(); }
  /// The i-th module. Throws IndexError when out of range.
  std::shared_ptr<Module> operator[](std::size_t i) const;
  std::shared_ptr<Module> ptr(std::size_t i) const { return (*this)[i]; }
  /// The i-th module as T (ValueError naming both types when it is not a T).
  template <typename T>
  std::shared_ptr<T> ptr(std::size_t i) const { return ::tessera::detail::module_as<T>((*this)[i], "ModuleList", i); }
  template <typename T>
  T& at(std::size_t i) const { return *ptr<T>(i); }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};
class ModuleList : public ModuleHolder<ModuleListImpl> {
 public:
  using ModuleHolder<ModuleListImpl>::ModuleHolder;
  using Impl = ModuleListImpl;
  ModuleList() : ModuleHolder<ModuleListImpl>() {}
  ModuleList(std::initializer_list<AnyModule> modules)
      : ModuleHolder<ModuleListImpl>(std::make_shared<ModuleListImpl>(modules)) {}
};

/// Submodules by name in insertion order: torch.nn.ModuleDict.
class ModuleDictImpl : public Module {
 public:
  ModuleDictImpl() : Module("ModuleDict") {}
  ModuleDictImpl(std::initializer_list<NamedAnyModule> modules);
  explicit ModuleDictImpl(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& modules);

  /// Adds module under key, or replaces the module already there. Throws ValueError for an
  /// empty module or a key containing '.'.
  ModuleDictImpl& insert(const std::string& key, const AnyModule& module);
  /// insert() for every pair, in order.
  ModuleDictImpl& update(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& modules);
  bool contains(const std::string& key) const;
  std::size_t size() const { return keys_.size(); }
  bool is_empty() const { return keys_.empty(); }
  /// Keys in insertion order.
  const std::vector<std::string>& keys() const { return keys_; }
  std::vector<std::shared_ptr<Module>> values() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> items() const { return named_children(); }
  /// The module under key. Throws IndexError naming the key and the keys there are.
  std::shared_ptr<Module> operator[](const std::string& key) const;
  template <typename T>
  std::shared_ptr<T> ptr(const std::string& key) const {
    return ::tessera::detail::module_as<T>((*this)[key], "ModuleDict", "'" + key + "'");
  }
  template <typename T>
  T& at(const std::string& key) const { return *ptr<T>(key); }

 private:
  std::vector<std::string> keys_;
};
/// The holder of ModuleDictImpl, also made from a brace list of {name, module} pairs.
class ModuleDict : public ModuleHolder<ModuleDictImpl> {
 public:
  using ModuleHolder<ModuleDictImpl>::ModuleHolder;
  using Impl = ModuleDictImpl;
  ModuleDict() : ModuleHolder<ModuleDictImpl>() {}
  ModuleDict(std::initializer_list<NamedAnyModule> modules)
      : ModuleHolder<ModuleDictImpl>(std::make_shared<ModuleDictImpl>(modules)) {}
};

}  // namespace tessera::nn
