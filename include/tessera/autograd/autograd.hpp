// Reverse-mode automatic differentiation. Every op that produces a tensor from inputs
// that require grad records a Node: its backward function and edges to the nodes of its
// inputs. Tensor::backward() runs each reachable node once, in reverse topological order,
// summing the gradients that reach a node from several paths before it runs.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tessera/tensor.hpp"

namespace tessera::autograd {

/// One recorded op. apply() maps the gradient of its output to gradients of its inputs
/// (an undefined Tensor for an input that needs none).
struct Node {
  virtual ~Node() = default;
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  virtual std::string name() const = 0;
  /// Frees saved tensors after backward (unless the graph is retained).
  virtual void release() {}
  /// Producer of each input's gradient (nullptr where the input needs none).
  std::vector<std::shared_ptr<Node>> next;
};

/// A node whose backward is a lambda over captured state, for ops written in ops.cpp.
struct FunctionNode : Node {
  using Fn = std::function<std::vector<Tensor>(const Tensor&)>;
  FunctionNode(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(const Tensor& g) override {
    TESSERA_CHECK(fn_ != nullptr, AutogradError, "backward through ", name_,
                  " a second time: its saved tensors were freed (pass retain_graph=true)");
    return fn_(g);
  }
  std::string name() const override { return name_; }
  void release() override { fn_ = nullptr; }

 private:
  std::string name_;
  Fn fn_;
};

/// Sink for a leaf: adds the incoming gradient to the leaf's .grad.
struct AccumulateGrad : Node {
  std::weak_ptr<TensorImpl> leaf;
  explicit AccumulateGrad(std::weak_ptr<TensorImpl> l) : leaf(std::move(l)) {}
  std::vector<Tensor> apply(const Tensor& g) override;
  std::string name() const override { return "AccumulateGrad"; }
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;             // non-leaf: the op that made it
  std::shared_ptr<Node> grad_accumulator;    // leaf: made on first use
};

/// Whether ops record history (thread-local; on by default).
bool grad_mode_enabled();
void set_grad_mode(bool enabled);

/// RAII: disables recording in its scope, as torch::NoGradGuard.
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_mode_enabled()) { set_grad_mode(false); }
  ~NoGradGuard() { set_grad_mode(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// True when recording is on and any input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

/// The edge for input t: its grad_fn, its leaf accumulator, or nullptr.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

/// Attaches node (with edges to `inputs`) as the grad_fn of out, marking out as requiring
/// grad. Call only when any_requires_grad(inputs).
void set_history(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs);

/// Convenience: records fn as the backward of out = op(inputs) when any input requires grad.
void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, FunctionNode::Fn fn);

/// Sums g over broadcast dims so it has `shape` (the reverse of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace tessera::autograd

namespace tessera {
using autograd::NoGradGuard;
}
