// nn::Module: registration, traversal, mode, placement, state_dict.
#include "tessera/nn/module.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <unordered_map>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"

namespace tessera::nn {

}  // namespace tessera::nn

namespace tessera::detail {
std::string holder_type_name(const char* mangled) {
  // "tessera::nn::LinearImpl" -> "Linear", "(anonymous namespace)::NetImpl" -> "Net".
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  // Drop the qualification, but not inside template arguments ("Wrap<ns::X>" stays whole).
  const std::size_t angle = name.find('<');
  const std::size_t colon = name.rfind("::", angle == std::string::npos ? std::string::npos : angle);
  if (colon != std::string::npos) name = name.substr(colon + 2);
  const std::string impl = "Impl";
  if (name.size() > impl.size() && name.compare(name.size() - impl.size(), impl.size(), impl) == 0)
    name.resize(name.size() - impl.size());
  return name;
}
}  // namespace tessera::detail

namespace tessera::nn {

const std::string& Module::type_name() const {
  if (type_name_.empty()) type_name_ = detail::holder_type_name(typeid(*this).name());
  return type_name_;
}

Tensor Module::forward(const Tensor&) {
  throw UnsupportedError(detail::str_cat(type_name(), ": this module has no forward(const Tensor&) override; ",
                                         "call the forward it defines (through its holder, Sequential, or directly)"));
}

void Module::check_new_name(const std::string& name, const char* what) const {
  TESSERA_CHECK(!name.empty(), ValueError, type_name(), ".register_", what, ": empty name");
  TESSERA_CHECK(name.find('.') == std::string::npos, ValueError, type_name(), ".register_", what,
                ": name '", name, "' must not contain '.'");
  auto taken = [&](const auto& list) {
    for (const auto& kv : list)
      if (kv.first == name) return true;
    return false;
  };
  TESSERA_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), ValueError, type_name(),
                ".register_", what, ": name '", name, "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_new_name(name, "parameter");
  if (!t.defined()) return t;
  if (requires_grad) {
    TESSERA_CHECK(is_floating_point(t.dtype()), DTypeError, type_name(), ".register_parameter('", name,
                  "'): a parameter that requires grad must be floating point, got ", dtype_name(t.dtype()));
    if (!t.is_leaf()) t = t.detach();
    t.requires_grad_(true);
  }
  parameters_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "buffer");
  if (!t.defined()) return t;
  buffers_.emplace_back(name, t);
  return t;
}

void Module::register_module_impl(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "module");
  TESSERA_CHECK(module != nullptr, ValueError, type_name(), ".register_module('", name, "'): null module");
  TESSERA_CHECK(module.get() != this, ValueError, type_name(), ".register_module('", name,
                "'): a module cannot contain itself");
  children_.emplace_back(name, std::move(module));
}

void Module::replace_module_impl(const std::string& name, std::shared_ptr<Module> module) {
  TESSERA_CHECK(module != nullptr, ValueError, type_name(), ".replace_module('", name, "'): null module");
  TESSERA_CHECK(module.get() != this, ValueError, type_name(), ".replace_module('", name,
                "'): a module cannot contain itself");
  for (auto& kv : children_)
    if (kv.first == name) {
      kv.second = std::move(module);
      return;
    }
  throw ValueError(detail::str_cat(type_name(), ".replace_module('", name, "'): there is no submodule '", name, "'"));
}

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

template <typename Get>
void collect(const Module& m, const std::string& prefix, bool recurse,
             std::vector<std::pair<std::string, Tensor>>& out, Get get) {
  for (const auto& kv : get(m)) out.emplace_back(join(prefix, kv.first), kv.second);
  if (!recurse) return;
  for (const auto& c : m.named_children()) collect(*c.second, join(prefix, c.first), true, out, get);
}
}  // namespace

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect(*this, "", recurse, out, [](const Module& m) -> const auto& { return m.parameters_; });
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& kv : named_parameters(recurse)) out.push_back(kv.second);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect(*this, "", recurse, out, [](const Module& m) -> const auto& { return m.buffers_; });
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& kv : named_buffers(recurse)) out.push_back(kv.second);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& kv : children_) out.push_back(kv.second);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (const auto& kv : children_) {
    out.emplace_back(kv.first, kv.second);
    for (auto& sub : kv.second->named_modules()) out.emplace_back(kv.first + "." + sub.first, sub.second);
  }
  return out;
}

std::vector<std::shared_ptr<Module>> Module::modules() const {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& kv : named_modules()) out.push_back(kv.second);
  return out;
}

Module& Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& kv : children_) kv.second->apply(fn);
  fn(*this);
  return *this;
}

Module& Module::train(bool on) {
  training_ = on;
  for (auto& kv : children_) kv.second->train(on);
  return *this;
}

template <typename F>
void Module::for_each_tensor(F&& f) {
  for (auto& kv : parameters_) f(kv.second, true);
  for (auto& kv : buffers_) f(kv.second, false);
  for (auto& kv : children_) kv.second->for_each_tensor(f);
}

namespace {
// Points t's TensorImpl at the data of `moved` (same handle, same autograd metadata), so
// every copy of the handle sees the new device/dtype. Used by Module::to.
void replace_data(const Tensor& t, const Tensor& moved) {
  if (moved.impl_ptr() == t.impl_ptr()) return;
  TensorImpl& dst = t.impl();
  const TensorImpl& src = moved.impl();
  dst.storage = src.storage;
  dst.sizes = src.sizes;
  dst.strides = src.strides;
  dst.offset = src.offset;
  dst.dtype = src.dtype;
}

void convert_in_place(const Tensor& t, Device device, DType dtype) {
  NoGradGuard no_grad;
  Tensor moved = t.detach().to(device, dtype);
  replace_data(t, moved);
  auto& meta = t.impl().autograd;
  if (meta && meta->grad.defined()) meta->grad = meta->grad.to(device, dtype);
}
}  // namespace

Module& Module::to(Device device) {
  for_each_tensor([&](Tensor& t, bool) {
    if (t.device() != device) convert_in_place(t, device, t.dtype());
  });
  return *this;
}

Module& Module::to(DType dtype) {
  TESSERA_CHECK(is_floating_point(dtype), DTypeError, type_name(), ".to(", dtype_name(dtype),
                "): modules convert only to a floating-point dtype");
  for_each_tensor([&](Tensor& t, bool) {
    if (is_floating_point(t.dtype()) && t.dtype() != dtype) convert_in_place(t, t.device(), dtype);
  });
  return *this;
}

void Module::zero_grad(bool set_to_none) {
  for (const Tensor& p : parameters()) {
    auto& meta = p.impl().autograd;
    if (!meta || !meta->grad.defined()) continue;
    if (set_to_none) {
      meta->grad = Tensor();
    } else {
      NoGradGuard no_grad;
      meta->grad = meta->grad.detach();
      meta->grad.zero_();
    }
  }
}

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& kv : named_parameters()) out.emplace(kv.first, kv.second.detach());
  for (auto& kv : named_buffers()) out.emplace(kv.first, kv.second.detach());
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  std::vector<std::pair<std::string, Tensor>> own = named_parameters();
  for (auto& kv : named_buffers()) own.push_back(kv);

  std::vector<std::string> missing, unexpected;
  std::set<std::string> own_names;
  for (const auto& kv : own) {
    own_names.insert(kv.first);
    if (!state.count(kv.first)) missing.push_back(kv.first);
  }
  for (const auto& kv : state)
    if (!own_names.count(kv.first)) unexpected.push_back(kv.first);
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::ostringstream os;
    os << type_name() << ".load_state_dict: the keys do not match.";
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      os << ' ' << what << " (" << names.size() << "):";
      for (std::size_t i = 0; i < names.size(); ++i) os << (i ? ", " : " ") << '"' << names[i] << '"';
      os << '.';
    };
    list("Missing keys", missing);
    list("Unexpected keys", unexpected);
    throw ValueError(os.str());
  }
  // Check every shape before copying anything, so a failed load leaves the module unchanged.
  for (const auto& kv : own) {
    auto it = state.find(kv.first);
    if (it == state.end()) continue;
    TESSERA_CHECK(it->second.defined(), ValueError, type_name(), ".load_state_dict: '", kv.first,
                  "' is an undefined tensor");
    TESSERA_CHECK(it->second.shape() == kv.second.shape(), ShapeError, type_name(),
                  ".load_state_dict: size mismatch for '", kv.first, "': copying a tensor of shape ",
                  shape_str(it->second.shape()), " into a parameter of shape ", shape_str(kv.second.shape()));
  }
  NoGradGuard no_grad;
  for (const auto& kv : own) {
    auto it = state.find(kv.first);
    if (it == state.end()) continue;
    Tensor dst = kv.second.detach();
    dst.copy_(it->second);
  }
}

void Module::str_impl(std::ostream& os, int indent) const {
  os << type_name() << '(' << extra_repr();
  if (!children_.empty()) {
    os << '\n';
    for (const auto& kv : children_) {
      os << std::string(std::size_t(indent + 2), ' ') << '(' << kv.first << "): ";
      kv.second->str_impl(os, indent + 2);
      os << '\n';
    }
    os << std::string(std::size_t(indent), ' ');
  }
  os << ')';
}

std::string Module::str() const {
  std::ostringstream os;
  str_impl(os, 0);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.str(); }

int64_t parameter_count(const Module& m) {
  int64_t n = 0;
  for (const Tensor& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace tessera::nn
