// Reverse-mode automatic differentiation. Every op that produces a tensor from inputs
// that require grad records a Node: its backward function and edges to the nodes of its
// inputs. Tensor::backward() runs each reachable node once, in reverse topological order,
// summing the gradients that reach a node from several paths before it runs.
#pragma once
#include <functional>
#include <memory>
#include <optional>
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
  /// Whether apply() is itself differentiable when grad mode is on, so that a backward with
  /// create_graph=true records a graph of the gradient (double backward). Nodes that say no
  /// make such a backward throw UnsupportedError naming them.
  virtual bool double_backward() const { return false; }
  /// Producer of each input's gradient (nullptr where the input needs none).
  std::vector<std::shared_ptr<Node>> next;
};

/// A node whose backward is a lambda over captured state, for ops written in ops.cpp.
struct FunctionNode : Node {
  using Fn = std::function<std::vector<Tensor>(const Tensor&)>;
  FunctionNode(std::string name, Fn fn, bool double_backward = false)
      : name_(std::move(name)), fn_(std::move(fn)), double_backward_(double_backward) {}
  std::vector<Tensor> apply(const Tensor& g) override {
    TESSERA_CHECK(fn_ != nullptr, AutogradError, "backward through ", name_,
                  " a second time: its saved tensors were freed (pass retain_graph=true)");
    return fn_(g);
  }
  std::string name() const override { return name_; }
  void release() override { fn_ = nullptr; }
  bool double_backward() const override { return double_backward_; }

 private:
  std::string name_;
  Fn fn_;
  bool double_backward_;
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

/// RAII: sets grad mode in its scope and restores it after (libtorch's AutoGradMode).
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled) : prev_(grad_mode_enabled()) { set_grad_mode(enabled); }
  ~AutoGradMode() { set_grad_mode(prev_); }
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool prev_;
};

/// RAII: disables recording in its scope, as torch::NoGradGuard.
struct NoGradGuard : AutoGradMode {
  NoGradGuard() : AutoGradMode(false) {}
};

/// RAII: enables recording in its scope (torch.enable_grad), e.g. to take gradients inside
/// a function called under NoGradGuard.
struct EnableGradGuard : AutoGradMode {
  EnableGradGuard() : AutoGradMode(true) {}
};

/// True when recording is on and any input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

/// The edge for input t: its grad_fn, its leaf accumulator, or nullptr.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

/// Attaches node (with edges to `inputs`) as the grad_fn of out, marking out as requiring
/// grad. Call only when any_requires_grad(inputs).
void set_history(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs);

/// Convenience: records fn as the backward of out = op(inputs) when any input requires grad.
/// double_backward: fn computes with differentiable ops on the inputs (not on detached
/// copies), so it may run with create_graph=true.
void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, FunctionNode::Fn fn,
            bool double_backward = false);

/// torch.autograd.grad: the gradients of outputs (weighted by grad_outputs; each defaults to
/// 1 for a one-element output) with respect to inputs, returned in the order of inputs and
/// not accumulated into any .grad. With create_graph the gradients carry history, so they
/// can be differentiated again (gradient penalties, Hessian-vector products); this is
/// supported through the elementwise ops, add/sub/mul/div/pow/where/maximum/minimum,
/// matmul/mm/bmm/linear, sum/mean, softmax/log_softmax, the views (view, reshape, permute,
/// transpose, unsqueeze, squeeze, expand, clone, to) and the losses built on them (mse, l1,
/// smooth_l1, huber, binary_cross_entropy_with_logits, kl_div) and custom Functions; any
/// other op on the path throws UnsupportedError naming it. retain_graph defaults to
/// create_graph. An input that the outputs do not depend on gives an undefined tensor when
/// allow_unused, else AutogradError. Throws AutogradError for an output that does not require
/// grad, ShapeError for a grad_output of another shape.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, std::optional<bool> retain_graph = std::nullopt,
                         bool create_graph = false, bool allow_unused = false);

/// Sums g over broadcast dims so it has `shape` (the reverse of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace tessera::autograd

namespace tessera {
using autograd::NoGradGuard;
}
