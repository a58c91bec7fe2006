// Sequential, ModuleList, ModuleDict (see containers.hpp).
#include "tessera/nn/containers.hpp"

#include <sstream>

#include "tessera/error.hpp"

namespace tessera::nn {

// ---- Sequential ------------------------------------------------------------------------

SequentialImpl::SequentialImpl(std::initializer_list<AnyModule> modules) : Module("Sequential") {
  for (const auto& m : modules) push_back(m);
}

SequentialImpl::SequentialImpl(std::initializer_list<NamedAnyModule> modules) : Module("Sequential") {
  for (const auto& m : modules) push_back(m.name, m.module);
}

SequentialImpl& SequentialImpl::push_back(AnyModule module) {
  return push_back(std::to_string(modules_.size()), std::move(module));
}

SequentialImpl& SequentialImpl::push_back(const std::string& name, AnyModule module) {
  TESSERA_CHECK(!module.is_empty(), ValueError, "Sequential::push_back: empty module at position ", modules_.size(),
                " ('", name, "')");
  register_module(name, module.ptr());
  modules_.push_back(std::move(module));
  return *this;
}

SequentialImpl& SequentialImpl::extend(const SequentialImpl& other) {
  TESSERA_CHECK(&other != this, ValueError, "Sequential::extend: a Sequential cannot extend itself");
  for (const auto& m : other.modules_) push_back(m);
  return *this;
}

Tensor SequentialImpl::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = m.forward(y);
  return y;
}

std::shared_ptr<Module> SequentialImpl::operator[](std::size_t i) const {
  TESSERA_CHECK(i < modules_.size(), IndexError, "Sequential: index ", i, " out of range for ", modules_.size(),
                " modules");
  return modules_[i].ptr();
}

// ---- ModuleList ------------------------------------------------------------------------

ModuleListImpl::ModuleListImpl(std::initializer_list<AnyModule> modules) : Module("ModuleList") {
  for (const auto& m : modules) push_back(m);
}

ModuleListImpl& ModuleListImpl::push_back(const AnyModule& module) {
  TESSERA_CHECK(!module.is_empty(), ValueError, "ModuleList::push_back: empty module at position ", modules_.size());
  register_module(std::to_string(modules_.size()), module.ptr());
  modules_.push_back(module.ptr());
  return *this;
}

ModuleListImpl& ModuleListImpl::extend(const ModuleListImpl& other) {
  TESSERA_CHECK(&other != this, ValueError, "ModuleList::extend: a ModuleList cannot extend itself");
  for (const auto& m : other.modules_) push_back(AnyModule(m));
  return *this;
}

std::shared_ptr<Module> ModuleListImpl::operator[](std::size_t i) const {
  TESSERA_CHECK(i < modules_.size(), IndexError, "ModuleList: index ", i, " out of range for ", modules_.size(),
                " modules");
  return modules_[i];
}

// ---- ModuleDict ------------------------------------------------------------------------

ModuleDictImpl::ModuleDictImpl(std::initializer_list<NamedAnyModule> modules) : Module("ModuleDict") {
  for (const auto& m : modules) insert(m.name, m.module);
}

ModuleDictImpl::ModuleDictImpl(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& modules)
    : Module("ModuleDict") {
  update(modules);
}

ModuleDictImpl& ModuleDictImpl::insert(const std::string& key, const AnyModule& module) {
  TESSERA_CHECK(!module.is_empty(), ValueError, "ModuleDict::insert('", key, "'): empty module");
  if (contains(key)) {
    replace_module(key, module.ptr());
  } else {
    register_module(key, module.ptr());
    keys_.push_back(key);
  }
  return *this;
}

ModuleDictImpl& ModuleDictImpl::update(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& modules) {
  for (const auto& kv : modules) insert(kv.first, AnyModule(kv.second));
  return *this;
}

bool ModuleDictImpl::contains(const std::string& key) const {
  for (const auto& k : keys_)
    if (k == key) return true;
  return false;
}

std::vector<std::shared_ptr<Module>> ModuleDictImpl::values() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& kv : named_children()) out.push_back(kv.second);
  return out;
}

std::shared_ptr<Module> ModuleDictImpl::operator[](const std::string& key) const {
  for (const auto& kv : named_children())
    if (kv.first == key) return kv.second;
  std::ostringstream keys;
  for (std::size_t i = 0; i < keys_.size(); ++i) keys << (i ? ", " : "") << "'" << keys_[i] << "'";
  throw IndexError(detail::str_cat("ModuleDict: no module under key '", key, "' (keys: ", keys.str(), ")"));
}

}  // namespace tessera::nn
