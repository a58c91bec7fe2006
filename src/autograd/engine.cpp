// The autograd engine: history recording and Tensor::backward.
#include "tessera/amp/autocast.hpp"
#include <optional>
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

void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, FunctionNode::Fn fn,
            bool double_backward) {
  set_history(out, std::make_shared<FunctionNode>(name, std::move(fn), double_backward), inputs);
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

namespace tessera::autograd {
namespace {

/// Runs the graph below roots (seeded with root_grads). Without captures (Tensor::backward)
/// every reachable node runs and leaves accumulate into .grad; with captures (grad()) only the
/// nodes on a path to a captured node run, AccumulateGrad nodes do not, and the gradient that
/// reaches captured node i is returned in slot i.
std::vector<Tensor> run_graph(const std::vector<std::shared_ptr<Node>>& roots, const std::vector<Tensor>& root_grads,
                              bool retain_graph, bool create_graph, const std::vector<Node*>* captures) {
  // Reachable nodes, and (for captures) which of them lead to a captured node.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> all, stack;
  std::unordered_set<Node*> seen;
  for (const auto& r : roots)
    if (r && seen.insert(r.get()).second) stack.push_back(r.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    all.push_back(n);
    for (auto& nx : n->next)
      if (nx && seen.insert(nx.get()).second) stack.push_back(nx.get());
  }
  std::unordered_set<Node*> needed;
  if (captures) {
    std::unordered_map<Node*, int> capture_slot;
    for (std::size_t i = 0; i < captures->size(); ++i) capture_slot.emplace((*captures)[i], int(i));
    // Iterate to a fixed point: a node is needed when it is captured or leads to a needed node.
    bool changed = true;
    for (Node* n : all)
      if (capture_slot.count(n)) needed.insert(n);
    while (changed) {
      changed = false;
      for (Node* n : all) {
        if (needed.count(n)) continue;
        for (auto& nx : n->next)
          if (nx && needed.count(nx.get())) {
            needed.insert(n);
            changed = true;
            break;
          }
      }
    }
  } else {
    needed.insert(all.begin(), all.end());
  }
  for (Node* n : all) {
    if (!needed.count(n)) continue;
    for (auto& nx : n->next)
      if (nx && needed.count(nx.get())) deps[nx.get()]++;
  }

  std::optional<NoGradGuard> no_grad;
  if (!create_graph) no_grad.emplace();
  amp::AutocastDisabled no_autocast;  // backward runs each op in its forward's dtypes
  std::unordered_map<Node*, Tensor> pending;
  std::vector<Node*> ready;
  for (std::size_t i = 0; i < roots.size(); ++i) {
    Node* r = roots[i].get();
    if (!r || !needed.count(r)) continue;
    Tensor& acc = pending[r];
    acc = acc.defined() ? tessera::add(acc, root_grads[i]) : root_grads[i];
  }
  for (auto& kv : pending)
    if (deps[kv.first] == 0) ready.push_back(kv.first);
  std::vector<Tensor> captured(captures ? captures->size() : 0);
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    Tensor g = std::move(pending[n]);
    pending.erase(n);
    if (captures) {
      for (std::size_t i = 0; i < captures->size(); ++i)
        if ((*captures)[i] == n) captured[i] = g;
      if (dynamic_cast<AccumulateGrad*>(n)) continue;  // grad() leaves .grad alone
    }
    std::vector<Tensor> grads;
    if (g.defined()) {
      TESSERA_CHECK(!create_graph || n->double_backward() || dynamic_cast<AccumulateGrad*>(n), UnsupportedError,
                    n->name(), ": double backward (create_graph=true) is not supported through this op; "
                    "it is for the elementwise, matmul, reduction, softmax, view and loss ops (see autograd::grad)");
      grads = n->apply(g);
    }
    for (size_t i = 0; i < n->next.size(); ++i) {
      Node* nx = n->next[i].get();
      if (!nx || !needed.count(nx)) continue;
      if (i < grads.size() && grads[i].defined()) {
        Tensor& acc = pending[nx];
        acc = acc.defined() ? tessera::add(acc, grads[i]) : grads[i];
      }
      if (--deps[nx] == 0) ready.push_back(nx);
    }
  }
  if (!retain_graph)
    for (Node* n : all) n->release();
  return captured;
}

Tensor root_gradient(const Tensor& out, const Tensor& gradient, const char* op) {
  TESSERA_CHECK(out.defined() && out.requires_grad(), AutogradError, op, ": tensor of shape ",
                out.defined() ? shape_str(out.shape()) : std::string("(undefined)"),
                " does not require grad and has no grad_fn");
  if (!gradient.defined()) {
    TESSERA_CHECK(out.numel() == 1, AutogradError, op, ": grad can be implied only for a scalar output, got shape ",
                  shape_str(out.shape()), "; pass a gradient");
    return ones_like(out);
  }
  TESSERA_CHECK(gradient.shape() == out.shape(), ShapeError, op, ": gradient of shape ", shape_str(gradient.shape()),
                " for a tensor of shape ", shape_str(out.shape()));
  return gradient;
}

}  // namespace

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, std::optional<bool> retain_graph, bool create_graph,
                         bool allow_unused) {
  TESSERA_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), ValueError, "autograd::grad: ",
                grad_outputs.size(), " grad_outputs for ", outputs.size(), " outputs");
  std::vector<std::shared_ptr<Node>> roots;
  std::vector<Tensor> root_grads;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    root_grads.push_back(root_gradient(outputs[i], grad_outputs.empty() ? Tensor() : grad_outputs[i], "autograd::grad"));
    roots.push_back(gradient_edge(outputs[i]));
  }
  std::vector<Node*> captures;
  std::vector<std::shared_ptr<Node>> keep;  // the inputs' nodes stay alive while the graph runs
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    TESSERA_CHECK(inputs[i].defined() && inputs[i].requires_grad(), AutogradError, "autograd::grad: input ", i,
                  " does not require grad");
    keep.push_back(gradient_edge(inputs[i]));
    captures.push_back(keep.back().get());
  }
  std::vector<Tensor> out = run_graph(roots, root_grads, retain_graph.value_or(create_graph), create_graph, &captures);
  for (std::size_t i = 0; i < out.size(); ++i) {
    TESSERA_CHECK(out[i].defined() || allow_unused, AutogradError, "autograd::grad: input ", i, " (shape ",
                  shape_str(inputs[i].shape()), ") is not used by the outputs (pass allow_unused=true for an "
                  "undefined gradient)");
    if (out[i].defined() && out[i].dtype() != inputs[i].dtype()) out[i] = out[i].to(inputs[i].dtype());
  }
  return out;
}

}  // namespace tessera::autograd

namespace tessera {

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  Tensor root_grad = autograd::root_gradient(*this, gradient, "backward");
  autograd::run_graph({autograd::gradient_edge(*this)}, {root_grad}, retain_graph || create_graph, create_graph, nullptr);
}

}  // namespace tessera
