// matmul (PyTorch semantics) on top of one batched GEMM per backend; cat and stack.
#include "tessera/amp/autocast.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"

namespace tessera {

namespace {
using autograd::any_requires_grad;
using autograd::record;
using Grads = std::vector<Tensor>;

void check_matmul_inputs(const Tensor& a, const Tensor& b, const char* op) {
  TESSERA_CHECK(a.defined() && b.defined(), ValueError, op, ": undefined input");
  TESSERA_CHECK(a.device() == b.device(), DeviceError, op, ": tensors on different devices (", a.device().str(), " and ",
                b.device().str(), ")");
  TESSERA_CHECK(is_floating_point(a.dtype()) && a.dtype() == b.dtype(), DTypeError, op,
                ": expects two float tensors of one dtype, got ", dtype_name(a.dtype()), " ", shape_str(a.shape()),
                " and ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
}
}  // namespace

Tensor bmm(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = amp::autocast(a_in, "bmm");
  const Tensor b = amp::autocast(b_in, "bmm");
  check_matmul_inputs(a, b, "bmm");
  TESSERA_CHECK(a.dim() == 3 && b.dim() == 3, ShapeError, "bmm: expects 3-D tensors, got ", shape_str(a.shape()), " and ",
                shape_str(b.shape()));
  TESSERA_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(1), ShapeError, "bmm: shapes ", shape_str(a.shape()),
                " and ", shape_str(b.shape()), " cannot be multiplied (expected [B, M, K] @ [B, K, N])");
  Tensor out = empty({a.size(0), a.size(1), b.size(2)}, TensorOptions(a.dtype(), a.device()));
  if (out.numel() > 0) {
    if (a.size(2) == 0) out.zero_();
    else backend_for(a.device()).bmm(a.detach(), b.detach(), out);
  }
  if (any_requires_grad({&a, &b})) {
    Tensor ad = a, bd = b;  // saved with their history, for double backward (as mul)
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record(out, "BmmBackward", {a, b}, [ad, bd, ga, gb](const Tensor& g) {
      return Grads{ga ? bmm(g, bd.transpose(1, 2)) : Tensor(), gb ? bmm(ad.transpose(1, 2), g) : Tensor()};
    }, true);
  }
  return out;
}

Tensor mm(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = amp::autocast(a_in, "mm");
  const Tensor b = amp::autocast(b_in, "mm");
  check_matmul_inputs(a, b, "mm");
  TESSERA_CHECK(a.dim() == 2 && b.dim() == 2, ShapeError, "mm: expects 2-D tensors, got ", shape_str(a.shape()), " and ",
                shape_str(b.shape()));
  TESSERA_CHECK(a.size(1) == b.size(0), ShapeError, "mm: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                " cannot be multiplied (", a.size(1), " != ", b.size(0), ")");
  return bmm(a.unsqueeze(0), b.unsqueeze(0)).squeeze(0);
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = amp::autocast(a_in, "matmul");
  const Tensor b = amp::autocast(b_in, "matmul");
  check_matmul_inputs(a, b, "matmul");
  TESSERA_CHECK(a.dim() >= 1 && b.dim() >= 1, ShapeError, "matmul: both arguments need at least 1 dim, got ",
                shape_str(a.shape()), " and ", shape_str(b.shape()));
  const int64_t k_a = a.size(-1), k_b = b.dim() == 1 ? b.size(0) : b.size(-2);
  TESSERA_CHECK(k_a == k_b, ShapeError, "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                " cannot be multiplied (", k_a, " != ", k_b, ")");
  if (a.dim() == 1 && b.dim() == 1) return mm(a.unsqueeze(0), b.unsqueeze(1)).reshape({});
  if (a.dim() == 2 && b.dim() == 1) return mm(a, b.unsqueeze(1)).squeeze(1);
  if (a.dim() == 1 && b.dim() == 2) return mm(a.unsqueeze(0), b).squeeze(0);
  if (a.dim() == 2 && b.dim() == 2) return mm(a, b);
  if (b.dim() <= 2 && a.dim() >= 3) {
    // [..., M, K] @ [K, N]: fold the batch into M for one GEMM.
    Tensor bb = b.dim() == 1 ? b.unsqueeze(1) : b;
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    const int64_t rows = shape_numel(out_shape);
    if (b.dim() == 2) out_shape.push_back(b.size(1));
    return mm(a.reshape({rows, k_a}), bb).reshape(out_shape);
  }
  // General batched case with broadcast batch dims.
  Tensor aa = a.dim() == 1 ? a.unsqueeze(0) : a;
  Tensor bb = b.dim() == 1 ? b.unsqueeze(1) : b;
  Shape ba(aa.shape().begin(), aa.shape().end() - 2), bbs(bb.shape().begin(), bb.shape().end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes(ba, bbs, "matmul");
  } catch (const ShapeError&) {
    throw ShapeError("matmul: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                     " have batch dims " + shape_str(ba) + " and " + shape_str(bbs) +
                     " that cannot be broadcast (sizes must match or one be 1)");
  }
  const int64_t M = aa.size(-2), N = bb.size(-1);
  Shape ea = batch, eb = batch;
  ea.push_back(M); ea.push_back(k_a);
  eb.push_back(k_a); eb.push_back(N);
  int64_t B = shape_numel(batch);
  Tensor out = bmm(aa.expand(ea).reshape({B, M, k_a}), bb.expand(eb).reshape({B, k_a, N}));
  Shape out_shape = batch;
  if (a.dim() > 1) out_shape.push_back(M);
  if (b.dim() > 1) out_shape.push_back(N);
  return out.reshape(out_shape);
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  TESSERA_CHECK(!tensors.empty(), ValueError, "cat: expects a non-empty list of tensors");
  const Tensor& first = tensors[0];
  TESSERA_CHECK(first.defined() && first.dim() > 0, ShapeError, "cat: zero-dim tensors cannot be concatenated");
  int64_t d = wrap_dim(dim, first.dim(), "cat");
  Shape out_shape = first.shape();
  out_shape[size_t(d)] = 0;
  DType dt = first.dtype();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    TESSERA_CHECK(t.defined() && t.dim() == first.dim(), ShapeError, "cat: tensor ", i, " has shape ",
                  t.defined() ? shape_str(t.shape()) : "undefined", ", expected ", first.dim(), " dims like tensor 0 ",
                  shape_str(first.shape()));
    TESSERA_CHECK(t.device() == first.device(), DeviceError, "cat: tensor ", i, " is on ", t.device().str(),
                  ", tensor 0 on ", first.device().str());
    for (int64_t k = 0; k < t.dim(); ++k)
      TESSERA_CHECK(k == d || t.shape()[size_t(k)] == first.shape()[size_t(k)], ShapeError, "cat: tensor ", i,
                    " has shape ", shape_str(t.shape()), ", which differs from tensor 0 ", shape_str(first.shape()),
                    " outside dim ", d);
    out_shape[size_t(d)] += t.shape()[size_t(d)];
    dt = promote_types(dt, t.dtype());
  }
  Tensor out = empty(out_shape, TensorOptions(dt, first.device()));
  std::vector<int64_t> sizes;
  {
    NoGradGuard ng;
    int64_t off = 0;
    for (const Tensor& t : tensors) {
      int64_t n = t.shape()[size_t(d)];
      out.narrow(d, off, n).copy_(t);
      sizes.push_back(n);
      off += n;
    }
  }
  bool any = false;
  for (const Tensor& t : tensors) any = any || autograd::any_requires_grad({&t});
  if (any) {
    record(out, "CatBackward", tensors, [sizes, d](const Tensor& g) {
      Grads gs;
      int64_t off = 0;
      for (int64_t n : sizes) {
        gs.push_back(g.narrow(d, off, n));
        off += n;
      }
      return gs;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  TESSERA_CHECK(!tensors.empty(), ValueError, "stack: expects a non-empty list of tensors");
  int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> u;
  for (size_t i = 0; i < tensors.size(); ++i) {
    TESSERA_CHECK(tensors[i].shape() == tensors[0].shape(), ShapeError, "stack: tensor ", i, " has shape ",
                  shape_str(tensors[i].shape()), ", tensor 0 has ", shape_str(tensors[0].shape()));
    u.push_back(tensors[i].unsqueeze(d));
  }
  return cat(u, d);
}

}  // namespace tessera
