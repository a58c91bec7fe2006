// The autograd engine: history recording and Tensor::backward.
#include "tessera/amp/autocast.hpp"
#include <unordered_map>
#include <unordered_set>

#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"

namespace tessera::autograd {

namespace {
thread_local bool g_grad_mode = true;
}

bool grad_mode_enabled() { return g_grad_mode; }
void set_grad_mode(bool enabled) { g_grad_mode = enabled; }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_mode) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  auto& meta = t.impl().autograd;
  if (meta->grad_fn) return meta->grad_fn;
  if (!meta->grad_accumulator) meta->grad_accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
  return meta->grad_accumulator;
}

void set_history(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs) {
  node->next.clear();
  for (const Tensor& in : inputs) node->next.push_back(gradient_edge(in));
  auto meta = std::make_shared<AutogradMeta>();
  meta->requires_grad = true;
  meta->grad_fn = std::move(node);
  out.impl().autograd = std::move(meta);
}

void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, FunctionNode::Fn fn) {
  set_history(out, std::make_shared<FunctionNode>(name, std::move(fn)), inputs);
}

std::vector<Tensor> AccumulateGrad::apply(const Tensor& g) {
  auto impl = leaf.lock();
  if (!impl || !g.defined()) return {};
  Tensor t(impl);
  TESSERA_CHECK(g.shape() == t.shape(), AutogradError, "AccumulateGrad: gradient of shape ", shape_str(g.shape()),
                " for a leaf of shape ", shape_str(t.shape()));
  Tensor prev = t.grad();
  // Gradients are stored as fresh tensors so no two leaves (or a user's tensor) share one.
  Tensor gg = g.dtype() == t.dtype() ? g : g.to(t.dtype());
  t.set_grad(prev.defined() ? add(prev, gg) : gg.clone());
  return {};
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  int64_t lead = g.dim() - int64_t(shape.size());
  TESSERA_CHECK(lead >= 0, ShapeError, "sum_to: cannot reduce shape ", shape_str(g.shape()), " to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < g.dim(); ++i) {
    if (i < lead) dims.push_back(i);
    else if (shape[size_t(i - lead)] == 1 && g.shape()[size_t(i)] != 1) dims.push_back(i);
  }
  Tensor r = dims.empty() ? g : sum(g, dims, true);
  if (lead > 0 || r.shape() != shape) r = r.reshape(shape);
  return r;
}

}  // namespace tessera::autograd

namespace tessera {

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  using namespace autograd;
  TESSERA_CHECK(requires_grad(), AutogradError, "backward: tensor of shape ", shape_str(shape()),
                " does not require grad and has no grad_fn");
  Tensor root_grad = gradient;
  if (!root_grad.defined()) {
    TESSERA_CHECK(numel() == 1, AutogradError, "backward: grad can be implied only for a scalar output, got shape ",
                  shape_str(shape()), "; pass a gradient");
    root_grad = ones_like(*this);
  } else {
    TESSERA_CHECK(root_grad.shape() == shape(), ShapeError, "backward: gradient of shape ",
                  shape_str(root_grad.shape()), " for a tensor of shape ", shape_str(shape()));
  }
  std::shared_ptr<Node> root = gradient_edge(*this);

  // Count, for each reachable node, how many edges lead to it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root.get()};
  std::unordered_set<Node*> seen{root.get()};
  std::vector<Node*> all;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    all.push_back(n);
    for (auto& nx : n->next) {
      if (!nx) continue;
      deps[nx.get()]++;
      if (seen.insert(nx.get()).second) stack.push_back(nx.get());
    }
  }

  NoGradGuard no_grad;
  amp::AutocastDisabled no_autocast;  // backward runs each op in its forward's dtypes
  std::unordered_map<Node*, Tensor> pending;
  pending[root.get()] = root_grad;
  std::vector<Node*> ready{root.get()};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    Tensor g = std::move(pending[n]);
    pending.erase(n);
    std::vector<Tensor> grads;
    if (g.defined()) grads = n->apply(g);
    for (size_t i = 0; i < n->next.size(); ++i) {
      Node* nx = n->next[i].get();
      if (!nx) continue;
      if (i < grads.size() && grads[i].defined()) {
        Tensor& acc = pending[nx];
        acc = acc.defined() ? tessera::add(acc, grads[i]) : grads[i];
      }
      if (--deps[nx] == 0) ready.push_back(nx);
    }
  }
  if (!retain_graph)
    for (Node* n : all) n->release();
}

}  // namespace tessera
