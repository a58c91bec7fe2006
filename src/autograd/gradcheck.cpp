// Finite-difference gradient check (float64 central differences), as
// torch.autograd.gradcheck: compares the backward of sum(f(x) * r) with
// (L(x + eps e_j) - L(x - eps e_j)) / (2 eps) element by element.
#include "tessera/autograd/gradcheck.hpp"

#include <cmath>
#include <iomanip>
#include <random>
#include <sstream>

#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"

namespace tessera::autograd {
namespace {

std::string index_str(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    idx[std::size_t(d)] = shape[std::size_t(d)] > 0 ? flat % shape[std::size_t(d)] : 0;
    if (shape[std::size_t(d)] > 0) flat /= shape[std::size_t(d)];
  }
  return shape_str(idx);
}

}  // namespace

GradcheckResult check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                const std::vector<Tensor>& inputs, double eps, double atol, double rtol) {
  TESSERA_CHECK(eps > 0, ValueError, "gradcheck: eps must be positive, got ", eps);
  const std::size_t n = inputs.size();
  std::vector<bool> checked(n, false);
  std::vector<Tensor> base(n);     // CPU float64 contiguous copies, perturbed in place
  std::vector<Tensor> leaves(n);   // what f gets for the analytic pass
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    const Tensor& t = inputs[i];
    TESSERA_CHECK(t.defined(), ValueError, "gradcheck: input ", i, " is an undefined tensor");
    checked[i] = t.requires_grad();
    if (!checked[i]) {
      leaves[i] = t;
      continue;
    }
    any = true;
    TESSERA_CHECK(t.dtype() == DType::Float64, DTypeError, "gradcheck: input ", i, " (shape ",
                  shape_str(t.shape()), ") requires grad but has dtype ", dtype_name(t.dtype()),
                  "; finite differences need float64");
    base[i] = t.detach().to(Device::cpu()).contiguous().clone();
    leaves[i] = base[i].clone().to(t.device());
    leaves[i].requires_grad_(true);
  }
  TESSERA_CHECK(any, ValueError, "gradcheck: no input requires grad");

  // Analytic gradients of L = sum(f(x) * r).
  Tensor y = f(leaves);
  TESSERA_CHECK(y.defined() && is_floating_point(y.dtype()), ValueError,
                "gradcheck: f must return a defined floating-point tensor");
  std::mt19937_64 gen(0x6a09e667f3bcc908ULL);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> rv(std::size_t(y.numel()));
  for (double& v : rv) v = dist(gen);
  const Tensor r = from_vector<double>(rv, y.shape(), TensorOptions(DType::Float64)).to(y.device(), y.dtype());
  const Shape y_shape = y.shape();
  Tensor loss = sum(mul(y, r));
  if (loss.requires_grad()) loss.backward();

  std::vector<Tensor> analytic(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!checked[i]) continue;
    Tensor g = leaves[i].grad();
    if (!g.defined()) {
      analytic[i] = zeros(base[i].shape(), TensorOptions(DType::Float64));
      continue;
    }
    if (g.shape() != base[i].shape()) {
      return GradcheckResult{false, detail::str_cat("gradcheck: the gradient of input ", i, " has shape ",
                                                    shape_str(g.shape()), " but the input has shape ",
                                                    shape_str(base[i].shape()))};
    }
    analytic[i] = g.detach().to(Device::cpu(), DType::Float64).contiguous();
  }

  // Numerical gradients, one element at a time.
  NoGradGuard no_grad;
  auto evaluate = [&]() {
    std::vector<Tensor> args(n);
    for (std::size_t k = 0; k < n; ++k)
      args[k] = checked[k] ? base[k].to(inputs[k].device()) : inputs[k];
    Tensor out = f(args);
    TESSERA_CHECK(out.shape() == y_shape, ValueError, "gradcheck: f returned shape ", shape_str(out.shape()),
                  " on a perturbed input but ", shape_str(y_shape), " at first");
    return sum(mul(out, r)).item<double>();
  };

  GradcheckResult result;
  for (std::size_t i = 0; i < n; ++i) {
    if (!checked[i]) continue;
    double* x = base[i].data_ptr<double>();
    const double* a = analytic[i].data_ptr<double>();
    const int64_t numel = base[i].numel();
    int64_t bad = 0;
    double worst = 0;
    std::string first;
    for (int64_t j = 0; j < numel; ++j) {
      const double v = x[j];
      x[j] = v + eps;
      const double lp = evaluate();
      x[j] = v - eps;
      const double lm = evaluate();
      x[j] = v;
      const double num = (lp - lm) / (2 * eps);
      const double diff = std::abs(a[j] - num);
      const double tol = atol + rtol * std::abs(num);
      if (!(diff <= tol)) {
        ++bad;
        worst = std::max(worst, std::isnan(diff) ? INFINITY : diff);
        if (first.empty()) {
          std::ostringstream os;
          os << std::setprecision(10) << "gradcheck: gradient of input " << i << " (shape "
             << shape_str(base[i].shape()) << ") differs at element " << j << " (index "
             << index_str(j, base[i].shape()) << "): numerical " << num << " vs analytical " << a[j]
             << "; |diff| = " << std::setprecision(3) << diff << " > atol + rtol*|numerical| = " << tol;
          first = os.str();
        }
      }
    }
    if (bad > 0 && result.ok) {
      result.ok = false;
      std::ostringstream os;
      os << first << " (" << bad << " of " << numel << " elements differ, largest |diff| "
         << std::setprecision(3) << worst << "; eps " << eps << ", atol " << atol << ", rtol " << rtol << ")";
      result.message = os.str();
    }
  }
  return result;
}

bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
               double eps, double atol, double rtol, bool raise_exception) {
  const GradcheckResult r = check_gradients(f, inputs, eps, atol, rtol);
  if (!r.ok && raise_exception) throw GradcheckError(r.message);
  return r.ok;
}

}  // namespace tessera::autograd
