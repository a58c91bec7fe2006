// Free functions on tensors. Each validates shapes, dtypes and devices (throwing a
// tessera::Error subclass that names the op and the offending values), dispatches to the
// backend of its inputs' device and records autograd history when an input requires grad.
// Semantics follow PyTorch's functions of the same names unless stated.
#pragma once
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tessera/backend.hpp"
#include "tessera/random.hpp"
#include "tessera/tensor.hpp"

namespace tessera {

// ---- elementwise unary (float dtypes; neg/abs also integer) --------------------------
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
/// 1 / sqrt(x).
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
/// 1 / (1 + exp(-x)), computed without overflow.
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
/// x * Phi(x) with the exact erf form (Hendrycks & Gimpel 2016; PyTorch approximate='none').
Tensor gelu(const Tensor& x);
/// torch.nn.functional.gelu(x, approximate): "none" is gelu(x); "tanh" is
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Hendrycks & Gimpel 2016, eq. for the tanh
/// approximation; PyTorch's formula). Throws ValueError for any other string.
Tensor gelu(const Tensor& x, const std::string& approximate);
/// min(max(x, lo), hi); NaN stays NaN.
Tensor clamp(const Tensor& x, double lo = -std::numeric_limits<double>::infinity(),
             double hi = std::numeric_limits<double>::infinity());
Tensor square(const Tensor& x);

// ---- elementwise binary with broadcasting and type promotion -----------------------------
/// a + alpha * b.
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor mul(const Tensor& a, const Tensor& b);
/// True division: integer inputs give float32.
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
/// Elementwise max/min; NaN propagates.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
/// Comparisons give bool tensors.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
/// cond ? a : b, all broadcast together; cond must be bool.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);

// Scalar overloads: the scalar does not raise a float tensor's dtype (PyTorch's rule);
// an integer tensor with a non-integral scalar gives float32.
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor maximum(const Tensor& a, double b);
Tensor minimum(const Tensor& a, double b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

// In place: the result dtype must be the tensor's own (DTypeError otherwise); refused
// on a tensor that requires grad while grad mode is on, and when `a` overlaps `b`
// partially.
Tensor& add_(Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor& sub_(Tensor& a, const Tensor& b);
Tensor& mul_(Tensor& a, const Tensor& b);
Tensor& div_(Tensor& a, const Tensor& b);
Tensor& add_(Tensor& a, double b);
Tensor& mul_(Tensor& a, double b);
Tensor& div_(Tensor& a, double b);
Tensor& clamp_(Tensor& a, double lo, double hi);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
/// Comparisons with a scalar (bool tensors): `x > 0.5`, as torch's.
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
/// torch.allclose: |a - b| <= atol + rtol |b| everywhere (broadcasting), NaN equal to NaN only
/// when equal_nan. torch.equal: same shape and the same values. Both read back one bool (a
/// device sync on the GPU). Throws DeviceError for tensors on different devices.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8, bool equal_nan = false);
bool equal(const Tensor& a, const Tensor& b);
Tensor& operator+=(Tensor& a, const Tensor& b);
Tensor& operator-=(Tensor& a, const Tensor& b);
Tensor& operator*=(Tensor& a, const Tensor& b);
Tensor& operator/=(Tensor& a, const Tensor& b);
Tensor& operator+=(Tensor& a, double b);
Tensor& operator*=(Tensor& a, double b);

// ---- reductions ----------------------------------------------------------------------
// dims: which dims to reduce (negative allowed; empty = all). keepdim keeps them as size 1.
// Float sums accumulate in float64 on the CPU, so 1e8 float32 ones sum to exactly 1e8.
// Integer and bool sums give int64 (PyTorch).
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor prod(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
/// Variance with Bessel's correction by default (correction = 1); two-pass, so a constant
/// input gives exactly 0 (Chan, Golub, LeVeque 1983).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, double correction = 1.0,
           bool keepdim = false);
Tensor std(const Tensor& x, const std::vector<int64_t>& dims = {}, double correction = 1.0,
           bool keepdim = false);
/// Max/min of all elements (0-dim). NaN propagates. Throws ShapeError on an empty tensor.
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
/// Values and indices (int64, first occurrence on ties) along dim.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
/// Index of the first max/min along dim (int64). Throws ShapeError on a 0-size dim.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
/// Index into the flattened tensor.
Tensor argmax(const Tensor& x);
Tensor argmin(const Tensor& x);
/// Logical reductions (bool result); empty gives true / false.
Tensor all(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor any(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);

/// exp(x_i - max) / sum_j exp(x_j - max) along dim; stable for huge and -inf logits.
Tensor softmax(const Tensor& x, int64_t dim);
/// x_i - max - log(sum_j exp(x_j - max)) along dim: [1000, 0] gives [0, -1000].
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- linear algebra ------------------------------------------------------------------
/// torch.matmul: 1-D x 1-D dot, 2-D x 2-D, batched with broadcast batch dims; 1-D operands
/// are promoted and the added dim removed. Float dtypes. Throws ShapeError when inner
/// sizes differ.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);
/// a [B, M, K] @ b [B, K, N].
Tensor bmm(const Tensor& a, const Tensor& b);

// ---- shape ops with autograd (also as Tensor methods) ------------------------------------
/// Concatenates along dim; all other sizes equal.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

// ---- random -----------------------------------------------------------------------------
/// Training: zeroes each element with probability p, scales the rest by 1/(1-p)
/// (Srivastava et al. 2014, inverted dropout as PyTorch). Identity when !training or p==0.
Tensor dropout(const Tensor& x, double p, bool training);

// ---- neural-network functions (nn/functional) ------------------------------------------
/// x [N, C_in, H, W], weight [C_out, C_in/groups, kH, kW], bias [C_out] or undefined.
/// Output [N, C_out, OH, OW], OH = floor((H + 2p - d(k-1) - 1)/s) + 1 (PyTorch's Conv2d).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              std::pair<int64_t, int64_t> stride = {1, 1}, std::pair<int64_t, int64_t> padding = {0, 0},
              std::pair<int64_t, int64_t> dilation = {1, 1}, int64_t groups = 1);
/// Transposed convolution (torch.nn.functional.conv_transpose2d; the gradient of conv2d with
/// respect to its input): x [N, C_in, H, W], weight [C_in, C_out/groups, kH, kW] (PyTorch's
/// layout), bias [C_out] or undefined. Output [N, C_out, OH, OW] with
/// OH = (H - 1) s - 2p + d (k - 1) + output_padding + 1. Throws ShapeError for other ranks or a
/// weight whose size(0) is not C_in, ValueError for non-positive stride/dilation/groups,
/// negative padding, output_padding not smaller than stride or dilation (PyTorch's rule), or
/// a non-positive output size. Runs on the conv2d kernels of each backend (cuDNN's backward-data
/// on the GPU), so both devices support it; its backward is conv2d forward (input gradient)
/// and conv2d's weight gradient.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        std::pair<int64_t, int64_t> stride = {1, 1}, std::pair<int64_t, int64_t> padding = {0, 0},
                        std::pair<int64_t, int64_t> output_padding = {0, 0}, int64_t groups = 1,
                        std::pair<int64_t, int64_t> dilation = {1, 1});
/// Max pooling (NaN propagates; the gradient of a tied window goes to its first max).
/// stride defaults to kernel_size ({0,0} means "same as kernel").
Tensor max_pool2d(const Tensor& x, std::pair<int64_t, int64_t> kernel_size,
                  std::pair<int64_t, int64_t> stride = {0, 0}, std::pair<int64_t, int64_t> padding = {0, 0},
                  std::pair<int64_t, int64_t> dilation = {1, 1}, bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& x, std::pair<int64_t, int64_t> kernel_size,
                  std::pair<int64_t, int64_t> stride = {0, 0}, std::pair<int64_t, int64_t> padding = {0, 0},
                  bool ceil_mode = false, bool count_include_pad = true);
/// Average pooling to a fixed output size (PyTorch's start/end index rule).
Tensor adaptive_avg_pool2d(const Tensor& x, std::pair<int64_t, int64_t> output_size);
/// How interpolate() computes an output sample: Nearest (PyTorch's "nearest": the source
/// index floor(dst * scale)), NearestExact ("nearest-exact": floor((dst + 0.5) * scale), the
/// pixel-centre rule of scikit-image and PIL), Linear / Bilinear / Trilinear (1, 2 or 3
/// spatial dims, separable linear interpolation between the two neighbouring samples).
enum class InterpolateMode { Nearest, NearestExact, Linear, Bilinear, Trilinear };
/// libtorch's spellings: torch::kNearest, torch::kNearestExact, torch::kLinear, ...
inline constexpr InterpolateMode kNearest = InterpolateMode::Nearest;
inline constexpr InterpolateMode kNearestExact = InterpolateMode::NearestExact;
inline constexpr InterpolateMode kLinear = InterpolateMode::Linear;
inline constexpr InterpolateMode kBilinear = InterpolateMode::Bilinear;
inline constexpr InterpolateMode kTrilinear = InterpolateMode::Trilinear;
/// PyTorch's name of the mode: "nearest", "nearest-exact", "linear", "bilinear", "trilinear".
const char* interpolate_mode_name(InterpolateMode mode);

/// torch::nn::functional::InterpolateFuncOptions: set exactly one of size (the output's
/// spatial sizes) and scale_factor (output size = floor(input size * scale_factor)); one
/// value stands for every spatial dim. align_corners (linear modes only; default false) maps
/// the corner samples onto each other; recompute_scale_factor uses in / out as the scale
/// instead of 1 / scale_factor.
struct InterpolateOptions {
  InterpolateOptions& size(std::vector<int64_t> s) { size_ = std::move(s); return *this; }
  InterpolateOptions& scale_factor(std::vector<double> f) { scale_factor_ = std::move(f); return *this; }
  InterpolateOptions& mode(InterpolateMode m) { mode_ = m; return *this; }
  InterpolateOptions& align_corners(bool a) { align_corners_ = a; return *this; }
  InterpolateOptions& recompute_scale_factor(bool r) { recompute_scale_factor_ = r; return *this; }
  std::optional<std::vector<int64_t>> size_;
  std::optional<std::vector<double>> scale_factor_;
  InterpolateMode mode_ = InterpolateMode::Nearest;
  std::optional<bool> align_corners_;
  bool recompute_scale_factor_ = false;
};

/// Up- or down-sampling of the spatial dims of x [N, C, L], [N, C, H, W] or [N, C, D, H, W]
/// (torch.nn.functional.interpolate). Source coordinates follow ATen's UpSample.h: with scale
/// s = in / out (or 1 / scale_factor when given and not recomputed; (in - 1) / (out - 1) with
/// align_corners), Nearest reads min(floor(dst * s), in - 1); the linear modes read
/// src = s * (dst + 0.5) - 0.5 clamped at 0 (s * dst with align_corners) and blend the samples
/// floor(src) and floor(src) + 1 (the last one repeats at the edge) by the fraction.
/// Gradient to x (the index_add of the weighted gradients). Composite (index_select and
/// elementwise ops along each spatial dim), so both devices and every float dtype.
/// Throws ShapeError for another rank or a mode whose spatial rank differs (bilinear needs a
/// 4-D input), ValueError for both or neither of size / scale_factor, a wrong number of sizes,
/// a non-positive size or scale, align_corners with a nearest mode; DTypeError for integer x.
Tensor interpolate(const Tensor& x, const InterpolateOptions& options);

/// x [..., in] @ weight[out, in]^T + bias[out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

/// How a loss reduces its per-element values: None keeps them, Mean averages, Sum adds;
/// BatchMean (kl_div only) is the sum divided by the batch size input.size(0).
enum class Reduction { None, Mean, Sum, BatchMean };
/// libtorch's spellings: torch::kNone, torch::kMean, torch::kSum, torch::kBatchMean.
inline constexpr Reduction kNone = Reduction::None;
inline constexpr Reduction kMean = Reduction::Mean;
inline constexpr Reduction kSum = Reduction::Sum;
inline constexpr Reduction kBatchMean = Reduction::BatchMean;
/// Negative log-likelihood, torch.nn.functional.nll_loss: logp [N, C] (log-probabilities) with
/// target [N], or logp [N, C, d1, ...] with target [N, d1, ...], or logp [C] with a 0-dim
/// target; targets int64 in [0, C) or equal to ignore_index. loss_i = -logp[i, t_i], 0 for
/// ignored targets. Mean divides by the number of targets that are not ignored (NaN when all
/// are); None gives target's shape. Throws IndexError for a target out of range: at the call
/// for targets on the CPU; for CUDA targets at the next synchronisation with the device
/// (item(), .to(cpu), cuda::synchronize()), with the loss NaN, so that the call itself does
/// not wait for the device (as PyTorch's device-side check, but recoverable).
Tensor nll_loss(const Tensor& logp, const Tensor& target, Reduction reduction = Reduction::Mean,
                int64_t ignore_index = -100);
/// torch.nn.functional.cross_entropy with class-index targets: input [N, C] (or [N, C, d1, ...],
/// or [C]) of logits, target as in nll_loss. With label_smoothing = e in [0, 1] (Szegedy et
/// al. 2016; PyTorch's formula) the loss of a target is (1 - e) * nll_i + (e / C) * sum_c
/// -log_softmax(input)_c, each part reduced as nll_loss reduces (ignored targets count in
/// neither). Stable for huge logits ([[1e8, 1e8]], target 1 gives ln 2). Throws ValueError for
/// label_smoothing outside [0, 1], and as nll_loss.
Tensor cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                     int64_t ignore_index = -100, double label_smoothing = 0.0);

// ---- regression and binary losses (ops_loss.cpp) ----------------------------------------
// Elementwise losses between input and target of the same shape (a ShapeError otherwise:
// PyTorch broadcasts with a warning, which hides a [N] vs [N, 1] mistake), reduced as
// `reduction` says (Mean over all elements by default; BatchMean is rejected with ValueError).
// Both must be floating point on one device. Formulas are torch.nn.functional's.

/// (input - target)^2.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
/// |input - target|.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
/// With d = input - target: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (Girshick
/// 2015, Fast R-CNN eq. 3); beta = 0 is l1_loss. Throws ValueError for beta < 0.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                      double beta = 1.0);
/// With d = input - target: 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta) (Huber
/// 1964). Throws ValueError unless delta > 0.
Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                  double delta = 1.0);
/// Binary cross-entropy of probabilities: -w (t log x + (1 - t) log(1 - x)), each log clamped
/// to >= -100 as PyTorch does, so x = 0 or 1 gives a finite loss; the input gradient is
/// w (x - t) / max(x (1 - x), 1e-12) (PyTorch's binary_cross_entropy_backward). weight (optional)
/// broadcasts to the input. Throws ValueError when an input value is outside [0, 1] or NaN
/// (this reads the values back: one device sync on the GPU).
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                            Reduction reduction = Reduction::Mean);
/// Binary cross-entropy of logits x, computed stably as
/// (1 - t) x + (1 + (p - 1) t) (log(1 + exp(-|x|)) + max(-x, 0)) with p = pos_weight (1 when
/// undefined; broadcast over the class dim, the last), times weight when given (PyTorch's
/// formula). Inputs of any magnitude give finite losses.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                                        Reduction reduction = Reduction::Mean, const Tensor& pos_weight = Tensor());
/// Kullback-Leibler divergence with input = log q: target (log target - input), or with
/// log_target exp(target) (target - input); elements with target = 0 contribute 0 (PyTorch's
/// xlogy). Use Reduction::BatchMean for the mathematical KL per example; Mean (PyTorch's
/// default) averages over every element.
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
              bool log_target = false);

// ---- more activations and shape helpers (ops_loss.cpp) ------------------------------------
/// x where x > 0, else negative_slope x (Maas et al. 2013; torch.nn.functional.leaky_relu).
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
/// x sigmoid(x) (Elfwing et al. 2018; torch.nn.functional.silu).
Tensor silu(const Tensor& x);
/// Channel dropout (Tompson et al. 2015; torch.nn.functional.dropout2d): input [N, C, H, W] or
/// [C, H, W]; each channel is zeroed with probability p, the others scaled by 1 / (1 - p).
/// Identity when !training. Throws ValueError for p outside [0, 1], ShapeError for other ranks.
Tensor dropout2d(const Tensor& x, double p, bool training);
/// Splits dim into sizes (one may be -1): [2, 12] unflatten(1, {3, 4}) -> [2, 3, 4]
/// (torch.unflatten). Throws ShapeError when the sizes do not multiply to size(dim).
Tensor unflatten(const Tensor& x, int64_t dim, const Shape& sizes);

// ---- indexing (ops_index.cpp) ---------------------------------------------------------
// Index tensors hold int64 (index_select, index_add and embedding also take int32). A negative
// dim counts from the end. An index outside [0, size) is an IndexError naming the op, the
// index, its position and the size: for CPU indices at the call; for CUDA indices at the next
// synchronisation with the device (item(), .to(cpu), cuda::synchronize()), as nll_loss's
// targets, so that the call does not wait for the device. Gradients flow to x and src (float).

/// Rows of a lookup table, torch.embedding(weight, indices, padding_idx) (the argument order of
/// aten's torch.embedding; torch.nn.functional.embedding takes (indices, weight)): weight
/// [num_embeddings, D] (float), indices of any shape (int64 or int32) -> [*indices.shape, D].
/// The row padding_idx (negative counts from the end, as nn.Embedding) gets no gradient.
/// Backward: index_add of the output gradient's rows into zeros (duplicates accumulate).
/// Throws ValueError for padding_idx outside [-num_embeddings, num_embeddings).
Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx = std::nullopt);
/// x's slices index[0], index[1], ... along dim (torch.index_select): index 1-D (or 0-dim) of
/// length K; out has x's shape with size K at dim. Backward: index_add into zeros.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
/// out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on; torch.gather): index int64 with
/// x's number of dims and index.size(d) <= x.size(d) for d != dim; out has index's shape.
/// Backward: scatter_add into zeros.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
/// A copy of x with out[index[i][j][k]][j][k] += src[i][j][k] for dim 0 (torch.scatter_add):
/// index int64 with x's number of dims, index.size(d) <= src.size(d) for every d and
/// <= x.size(d) for d != dim; duplicate indices accumulate. src has x's dtype (not bool/uint8).
/// Gradients: x gets the output's gradient, src gather(grad, dim, index).
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
/// A copy of x with alpha * src's slice i added to x's slice index[i] along dim
/// (torch.index_add): index 1-D of length K, src with x's shape except K at dim (or 0-dim
/// when x is); duplicate indices accumulate. Gradients: x the output's, src
/// alpha * index_select(grad, dim, index).
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha = 1.0);
/// x with value where mask is true (torch.masked_fill): mask bool, x and mask broadcast
/// together (so the result has their broadcast shape); x's dtype. No gradient where filled.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
/// The lower (tril) or upper (triu) triangle of the matrices in x's last two dims [..., R, C]:
/// element (i, j) is kept when j - i <= diagonal (tril) or j - i >= diagonal (triu), else 0
/// (torch.tril / torch.triu; diagonal 0 is the main diagonal, > 0 above it). Throws ShapeError
/// for fewer than 2 dims.
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);
/// The k largest (or smallest) elements along dim and their indices (int64), as torch.topk:
/// x's shape with size k at dim. Sorted descending (ascending when !largest) whatever `sorted`
/// says (torch allows any order when false). NaN counts as larger than every number (first
/// when largest, last otherwise, as torch.sort); equal values come by ascending index, so the
/// result is the same on every device. CUDA: O(size(dim)^2) comparisons per slice. Throws
/// ValueError unless 0 <= k <= x.size(dim). Gradient: scattered back to the chosen elements.
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true,
                               bool sorted = true);
/// num_samples category indices (int64) per row of probs [N] or [M, N] (non-negative weights,
/// not necessarily summing to 1), as torch.multinomial: [num_samples] or [M, num_samples].
/// With replacement each draw picks j with probability probs[j] / sum (inverse CDF in float64);
/// without, draws are distinct (num_samples <= the number of positive weights): the
/// exponential race of PyTorch's kernel, the top num_samples of probs / E with E ~ Exp(1)
/// (Efraimidis & Spirakis 2006). Random numbers come from generator (the default generator
/// when null) through Philox, so a seed gives the same samples on every device. Validates
/// probs (finite, >= 0, a positive sum per row), which waits for a CUDA device; throws
/// ValueError otherwise or when num_samples is out of range, ShapeError for other ranks.
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement = false,
                   Generator* generator = nullptr);

}  // namespace tessera
