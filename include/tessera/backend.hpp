// The Backend interface every device implements. ops.hpp validates arguments, allocates
// outputs and handles autograd; a backend only computes. Contract for every virtual:
// all tensors are on this backend's device, already validated; outputs are allocated by
// the caller (contiguous unless stated); inputs may be strided unless stated.
// Elementwise outputs (copy, fill, unary, binary, where) may also be strided views (in-place
// ops write into them) but never overlap themselves or partially overlap an input.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "tessera/device.hpp"
#include "tessera/storage.hpp"
#include "tessera/tensor.hpp"

namespace tessera {

enum class UnaryOp : int8_t {
  Neg, Abs, Exp, Log, Log1p, Sqrt, Rsqrt, Sin, Cos, Tanh, Sigmoid, Relu, Gelu, Clamp,
  // Backward helpers: out = f'(x) * a-tensor is expressed with binary ops; these compute
  // derivative factors directly from x.
  ReluGrad,     // x > 0 ? 1 : 0
  GeluGrad,     // d/dx gelu(x) (erf form)
  Sign,         // -1, 0, 1
  Square,       // x*x
  Reciprocal,   // 1/x
  PowScalar,    // x^a
};
const char* unary_op_name(UnaryOp op);

enum class BinaryOp : int8_t {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr,
};
const char* binary_op_name(BinaryOp op);
constexpr bool is_comparison(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
         op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::LogicalAnd || op == BinaryOp::LogicalOr;
}

enum class ReduceOp : int8_t { Sum, Mean, Prod, Max, Min, ArgMax, ArgMin, Var, All, Any };

/// The scalars of one fused Adam / AdamW update (Backend::adam_step). Formulas: optim::Adam.
struct AdamStepParams {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  double bias_correction1 = 1, bias_correction2 = 1;  ///< 1 - beta1^t, 1 - beta2^t
  bool decoupled = false;  ///< AdamW: p *= 1 - lr * weight_decay instead of g += weight_decay * p
  bool amsgrad = false;
};
/// The scalars of one fused SGD update (Backend::sgd_step). Formulas: optim::SGD.
struct SgdStepParams {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first = false;  ///< the momentum buffer's first step: buf = g
};
const char* reduce_op_name(ReduceOp op);

enum class RandomKind : int8_t { Uniform, Normal, RandInt };

/// conv2d hyper-parameters (NCHW; weight [C_out, C_in/groups, kH, kW]).
struct Conv2dParams {
  int64_t stride[2] = {1, 1};
  int64_t padding[2] = {0, 0};
  int64_t dilation[2] = {1, 1};
  int64_t groups = 1;
};

/// max/avg pool hyper-parameters (NCHW).
struct Pool2dParams {
  int64_t kernel[2] = {2, 2};
  int64_t stride[2] = {2, 2};
  int64_t padding[2] = {0, 0};
  int64_t dilation[2] = {1, 1};
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg only
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual DeviceType type() const = 0;
  virtual const char* name() const = 0;
  /// Whether tensors can be made on this backend's devices now.
  virtual bool is_available() const = 0;
  /// Why not, in one line ("" when available).
  virtual std::string unavailable_reason() const = 0;
  virtual int device_count() const = 0;

  // ---- memory -------------------------------------------------------------------------
  virtual std::shared_ptr<Storage> allocate(std::size_t nbytes, Device device) = 0;
  /// Copies bytes between host memory and this backend's memory (either side may be CPU).
  virtual void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                          std::size_t nbytes) = 0;
  /// Waits for all queued work on device.
  virtual void synchronize(Device device) = 0;

  // ---- elementwise ----------------------------------------------------------------------
  /// dst = src elementwise with dtype conversion; same shape, any strides, no overlap.
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  /// Every element of dst (any strides) = value.
  virtual void fill(const Tensor& dst, double value) = 0;
  /// out = op(x); x and out same shape and dtype (out contiguous). a, b: Clamp's min/max
  /// (use +-inf for none), PowScalar's exponent in a.
  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) = 0;
  /// out = op(a, b); a and b have out's shape (broadcast views with stride 0 allowed) and
  /// the same dtype; out has that dtype, or bool for comparisons.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  /// out = cond ? a : b; cond bool; all have out's shape (broadcast views allowed).
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  /// Fills contiguous out: element i from Philox block (seed, offset + i).
  /// Uniform [a, b); Normal mean a, std b; RandInt [a, b).
  virtual void random(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t offset, double a,
                      double b) = 0;

  // ---- reductions ---------------------------------------------------------------------
  /// x contiguous [M, R]; reduces each row into out [M] (dtype chosen by ops.hpp);
  /// indices [M] int64 for Max/Min (may be undefined) and ArgMax/ArgMin (the result).
  /// Ties pick the first index; NaN wins max/min. Var uses `correction` (Bessel = 1).
  virtual void reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out, const Tensor& indices,
                           double correction) = 0;
  /// Softmax (or log-softmax) of each row of contiguous [M, N] into out [M, N].
  virtual void softmax_rows(const Tensor& x, const Tensor& out, bool log) = 0;
  /// grad_x from y = softmax(x) (or log-softmax) and grad_y; all contiguous [M, N].
  virtual void softmax_rows_backward(const Tensor& y, const Tensor& grad_y, const Tensor& grad_x,
                                     bool log) = 0;

  // ---- linear algebra -----------------------------------------------------------------
  /// out[b] = a[b] @ b_[b]: a [B, M, K], b_ [B, K, N] of one float dtype, any strides
  /// (stride-0 batch for broadcasting, transposed views); out [B, M, N] contiguous.
  virtual void bmm(const Tensor& a, const Tensor& b, const Tensor& out) = 0;

  // ---- convolution, pooling, losses (training) ----------------------------------------
  /// x [N, C_in, H, W], w [C_out, C_in/groups, kH, kW], bias [C_out] or undefined; all
  /// contiguous; out [N, C_out, OH, OW].
  virtual void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias,
                              const Conv2dParams& p, const Tensor& out) = 0;
  /// Gradients for each of grad_x, grad_w, grad_b that is defined (overwritten, not added).
  virtual void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& grad_out,
                               const Conv2dParams& p, const Tensor& grad_x, const Tensor& grad_w,
                               const Tensor& grad_b) = 0;
  /// x [N, C, H, W] contiguous into out [N, C, OH, OW]. Returns what backward needs beyond
  /// x and out (argmax indices on the CPU; may be undefined).
  virtual Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) = 0;
  virtual void max_pool2d_backward(const Tensor& x, const Tensor& out, const Tensor& saved,
                                   const Tensor& grad_out, const Pool2dParams& p,
                                   const Tensor& grad_x) = 0;
  virtual void avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) = 0;
  virtual void avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p,
                                   const Tensor& grad_x) = 0;
  /// logp [N, C] contiguous, target [N] int64, out [N] = -logp[i, t_i], and out[i] = 0 where
  /// t_i == ignore_index (PyTorch's ignore_index; such a target is not range-checked).
  /// nll_loss() checks targets on the CPU before the call; a backend of another device must
  /// check them itself: the CPU backend throws IndexError, CUDA's kernel writes NaN and reports
  /// the first bad index as an IndexError at the next synchronisation with the device.
  virtual void nll_loss_forward(const Tensor& logp, const Tensor& target, const Tensor& out,
                                int64_t ignore_index) = 0;
  /// grad_logp [N, C] = 0 except grad_logp[i, t_i] = -grad_out[i] (targets as in the forward;
  /// a row whose target is ignore_index is all 0).
  virtual void nll_loss_backward(const Tensor& grad_out, const Tensor& target,
                                 const Tensor& grad_logp, int64_t ignore_index) = 0;

  // ---- optimizers: one pass over each parameter ----
  /// Updates param, exp_avg, exp_avg_sq (and max_exp_avg_sq when p.amsgrad; undefined
  /// otherwise) in place from grad, element by element in their dtype:
  ///   g = grad (+ weight_decay * param unless decoupled; decoupled: param *= 1 - lr * wd)
  ///   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  s = amsgrad ? vmax = max(vmax, v) : v
  ///   param -= lr / bias_correction1 * m / (sqrt(s) / sqrt(bias_correction2) + eps)
  /// All contiguous, one shape, float32 or float64, one dtype.
  virtual void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                         const Tensor& max_exp_avg_sq, const AdamStepParams& p) = 0;
  /// Updates param (and momentum_buffer when p.momentum != 0; undefined otherwise) in place:
  ///   g = grad + weight_decay * param;  buf = first ? g : momentum buf + (1 - dampening) g
  ///   g = nesterov ? g + momentum buf : buf;  param -= lr g
  /// All contiguous, one shape, float32 or float64, one dtype.
  virtual void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                        const SgdStepParams& p) = 0;

  // ---- indexing: gather / scatter, top-k, sampling (ops_index.cpp) ----------------------
  // Index tensors are int64 and may be strided, including stride-0 broadcast views (the
  // frontend passes index_select's and index_add's 1-D index expanded to the full shape).
  // An index outside [0, size) is an IndexError whose text is
  // index_out_of_range_message(op, value, position, dim, size), with `position` the element
  // offset of the bad index from index.raw_data() (the flat position in the caller's index
  // when that is contiguous or a broadcast of a contiguous 1-D index). The CPU backend throws
  // it before writing anything; CUDA's kernels skip the element (gather writes NaN, or 0 for
  // integers) and report the first bad index they claim at the next synchronisation with the
  // device, as nll_loss_forward does. `op` names the public op for that message; it must be a
  // string literal (CUDA reads it after the call has returned).

  /// out[p] = x[p with coordinate dim replaced by index[p]] for every position p of index's
  /// shape (torch.gather). x, index and out have the same number of dims (at least 1);
  /// out has index's shape and x's dtype (any); x.size(d) >= index.size(d) for d != dim.
  /// out contiguous; x and index any strides.
  virtual void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out, const char* op) = 0;
  /// out[p with coordinate dim replaced by index[p]] += src[p] for every position p of
  /// index's shape (torch.Tensor.scatter_add_), in place; duplicate indices accumulate. out
  /// contiguous; out, index, src have the same number of dims; src.size(d) >= index.size(d)
  /// for every d and out.size(d) >= index.size(d) for d != dim; out and src of one dtype (not
  /// bool or uint8). Floating-point sums in deterministic mode (set_deterministic) come in
  /// the order of the index positions along dim, the CPU's order, bit for bit; otherwise a
  /// GPU may add in any order.
  virtual void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                           const char* op) = 0;
  /// The k largest (or smallest) elements of each row of contiguous x [M, N] (0 <= k <= N),
  /// ordered: values [M, k] (x's dtype, not bool) and indices [M, k] int64 (column in x), both
  /// contiguous. Order: descending for largest, ascending otherwise, NaN above every number
  /// (so first when largest, last otherwise, as torch.topk/torch.sort), and equal values by
  /// ascending column, so the result is fully determined (the same on every device).
  virtual void topk_rows(const Tensor& x, int64_t k, bool largest, const Tensor& values,
                         const Tensor& indices) = 0;
  /// Samples with replacement from each row of contiguous probs [M, N] (float, every row
  /// validated by the caller: finite, >= 0, positive sum) into out [M, S] int64 (contiguous):
  /// sample (m, s) draws u = uint2_to_unit_double of Philox block (seed, offset + m * S + s)
  /// and takes the first column j with u * total < cdf[j], where cdf is the running sum of the
  /// row in float64 from column 0 and total = cdf[N - 1] (the last column with a positive
  /// probability when rounding leaves none). Identical on every device.
  virtual void multinomial_rows(const Tensor& probs, uint64_t seed, uint64_t offset, const Tensor& out) = 0;
};

/// The text of the IndexError for an index out of range in an indexing op (Backend::gather,
/// scatter_add): names op, the index value, its position, the dim and its size.
std::string index_out_of_range_message(const char* op, int64_t value, int64_t position, int64_t dim,
                                       int64_t size);

/// The backend for a device type (CPU always; CUDA when built). Throws DeviceError with
/// the reason when that backend is not built or not available.
Backend& backend_for(DeviceType type);
inline Backend& backend_for(Device d) { return backend_for(d.type); }
/// Used by backends to register themselves at static-initialisation time.
void register_backend(DeviceType type, Backend* backend);
/// The registered backend or nullptr.
Backend* find_backend(DeviceType type);

}  // namespace tessera
