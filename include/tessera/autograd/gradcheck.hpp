// Finite-difference check of analytic gradients, as torch.autograd.gradcheck.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tessera/error.hpp"
#include "tessera/tensor.hpp"

namespace tessera::autograd {

/// A gradient that disagrees with its finite-difference estimate. The message names the
/// input, the element (flat and multi-index), both values and the tolerance.
class GradcheckError : public AutogradError {
  using AutogradError::AutogradError;
};

/// Outcome of check_gradients: ok, or the first mismatch (and how many there were) in
/// `message`.
struct GradcheckResult {
  bool ok = true;
  std::string message;
};

/// Compares the backward of L = sum(f(inputs) * r) (r: fixed pseudo-random weights of
/// f's output shape) with central differences (L(x + eps e_j) - L(x - eps e_j)) / (2 eps)
/// for every element j of every input that requires grad. An element passes when
/// |analytic - numeric| <= atol + rtol * |numeric|.
/// inputs: the arguments of f; those that require grad must be float64 (DTypeError
/// otherwise); others (e.g. int64 targets) are passed through unchanged. The inputs are
/// copied: their .grad is not touched. f must be deterministic. Works for inputs on any
/// device (perturbations are made on a CPU copy and moved back).
GradcheckResult check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                const std::vector<Tensor>& inputs, double eps = 1e-6, double atol = 1e-5,
                                double rtol = 1e-3);

/// check_gradients that returns true when all gradients agree and otherwise throws
/// GradcheckError with the detailed message (or returns false when raise_exception is false).
bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
               double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, bool raise_exception = true);

}  // namespace tessera::autograd

namespace tessera {
using autograd::gradcheck;
}
