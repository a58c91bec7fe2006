// interpolate (torch.nn.functional.interpolate): nearest, nearest-exact and (bi/tri)linear
// resampling of the spatial dims, one separable pass per dim. The source indices and weights
// are computed on the host with ATen's formulas (aten/src/ATen/native/UpSample.h: nearest_idx,
// area_pixel_compute_scale, area_pixel_compute_source_index,
// compute_source_index_and_lambda), in float for float32 / float16 / bfloat16 and in double
// for float64 as ATen's opmath type; the pass itself is index_select and elementwise ops, so
// both backends and autograd come from those.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops_checks.hpp"
#include "tessera/ops.hpp"

namespace tessera {

const char* interpolate_mode_name(InterpolateMode m) {
  switch (m) {
    case InterpolateMode::Nearest: return "nearest";
    case InterpolateMode::NearestExact: return "nearest-exact";
    case InterpolateMode::Linear: return "linear";
    case InterpolateMode::Bilinear: return "bilinear";
    case InterpolateMode::Trilinear: return "trilinear";
  }
  return "?";
}

namespace {

bool is_linear(InterpolateMode m) {
  return m == InterpolateMode::Linear || m == InterpolateMode::Bilinear || m == InterpolateMode::Trilinear;
}

/// ATen's compute_scales_value / area_pixel_compute_scale in the opmath type T.
template <typename T>
T pixel_scale(int64_t in, int64_t out, bool align_corners, std::optional<double> sf) {
  if (align_corners) return out > 1 ? T(in - 1) / T(out - 1) : T(0);
  return sf && *sf > 0 ? T(1.0 / *sf) : T(in) / T(out);
}

/// Source index of each output sample along one dim for the nearest modes.
std::vector<int64_t> nearest_indices(int64_t in, int64_t out, std::optional<double> sf, bool exact) {
  std::vector<int64_t> idx(static_cast<size_t>(out));
  const float scale = pixel_scale<float>(in, out, false, sf);
  for (int64_t o = 0; o < out; ++o) {
    if (!exact && out == in) idx[size_t(o)] = o;
    else if (!exact && out == 2 * in) idx[size_t(o)] = o >> 1;
    else {
      const float src = exact ? std::floor((float(o) + 0.5f) * scale) : std::floor(float(o) * scale);
      idx[size_t(o)] = std::min(int64_t(src), in - 1);
    }
  }
  return idx;
}

/// The two source indices and the weight of the second for each output sample (linear modes).
template <typename T>
void linear_indices(int64_t in, int64_t out, bool align_corners, std::optional<double> sf, std::vector<int64_t>& i0,
                    std::vector<int64_t>& i1, std::vector<double>& w0, std::vector<double>& w1) {
  const T scale = pixel_scale<T>(in, out, align_corners, sf);
  for (int64_t o = 0; o < out; ++o) {
    T src = align_corners ? scale * T(o) : scale * (T(o) + T(0.5)) - T(0.5);
    if (src < T(0)) src = T(0);
    const int64_t lo = int64_t(src);
    const T l1 = std::min(std::max(src - T(lo), T(0)), T(1));
    i0.push_back(lo);
    i1.push_back(lo + (lo < in - 1 ? 1 : 0));
    w1.push_back(double(l1));
    w0.push_back(double(T(1) - l1));
  }
}

Tensor index_on(const std::vector<int64_t>& v, const Device& dev) {
  return from_vector<int64_t>(v, {int64_t(v.size())}).to(dev);
}

}  // namespace

Tensor interpolate(const Tensor& x, const InterpolateOptions& o) {
  const char* op = "interpolate";
  ops_detail::check_defined(x, op, "input");
  const std::string mode = interpolate_mode_name(o.mode_);
  TESSERA_CHECK(x.dim() >= 3 && x.dim() <= 5, ShapeError, op,
                ": expected a 3-D, 4-D or 5-D input [N, C, spatial...], got shape ", shape_str(x.shape()));
  const int64_t spatial = x.dim() - 2;
  const int64_t want_spatial = o.mode_ == InterpolateMode::Linear     ? 1
                               : o.mode_ == InterpolateMode::Bilinear ? 2
                               : o.mode_ == InterpolateMode::Trilinear ? 3
                                                                        : spatial;
  TESSERA_CHECK(spatial == want_spatial, ShapeError, op, ": mode '", mode, "' needs a ", want_spatial + 2,
                "-D input, got shape ", shape_str(x.shape()));
  TESSERA_CHECK(is_floating_point(x.dtype()), DTypeError, op, ": input must be floating point, got ",
                dtype_name(x.dtype()), " (shape ", shape_str(x.shape()), ")");
  TESSERA_CHECK(!(o.align_corners_ && !is_linear(o.mode_)), ValueError, op,
                ": align_corners can only be set with the linear modes (linear, bilinear, trilinear), got mode '",
                mode, "'");
  TESSERA_CHECK(o.size_.has_value() != o.scale_factor_.has_value(), ValueError, op,
                o.size_ ? ": only one of size and scale_factor may be set" : ": set size or scale_factor");
  const size_t given = o.size_ ? o.size_->size() : o.scale_factor_->size();
  TESSERA_CHECK(given == 1 || given == size_t(spatial), ValueError, op, ": ", o.size_ ? "size" : "scale_factor",
                " has ", given, " values; input ", shape_str(x.shape()), " has ", spatial,
                " spatial dims (give one value or ", spatial, ")");
  const bool align = o.align_corners_.value_or(false);

  Tensor y = x;
  for (int64_t k = 0; k < spatial; ++k) {
    const int64_t d = 2 + k;
    const int64_t in = x.size(d);
    TESSERA_CHECK(in > 0, ValueError, op, ": input ", shape_str(x.shape()), " has an empty spatial dim ", d);
    int64_t out = 0;
    std::optional<double> sf;
    if (o.size_) {
      out = (*o.size_)[given == 1 ? 0 : size_t(k)];
      TESSERA_CHECK(out > 0, ValueError, op, ": output size ", out, " for dim ", d, " must be positive (input ",
                    shape_str(x.shape()), ")");
    } else {
      const double f = (*o.scale_factor_)[given == 1 ? 0 : size_t(k)];
      TESSERA_CHECK(std::isfinite(f) && f > 0, ValueError, op, ": scale_factor ", f, " for dim ", d,
                    " must be positive and finite");
      out = int64_t(std::floor(double(in) * f));
      TESSERA_CHECK(out > 0, ValueError, op, ": scale_factor ", f, " gives an empty dim ", d, " (input ",
                    shape_str(x.shape()), ")");
      if (!o.recompute_scale_factor_) sf = f;
    }
    if (!is_linear(o.mode_)) {
      if (out == in && o.mode_ == InterpolateMode::Nearest) continue;
      y = index_select(y, d, index_on(nearest_indices(in, out, sf, o.mode_ == InterpolateMode::NearestExact), y.device()));
      continue;
    }
    if (out == in) continue;  // ATen: lambda 1 / 0 on the same sample
    std::vector<int64_t> i0, i1;
    std::vector<double> w0, w1;
    if (x.dtype() == kFloat64) linear_indices<double>(in, out, align, sf, i0, i1, w0, w1);
    else linear_indices<float>(in, out, align, sf, i0, i1, w0, w1);
    Shape wshape(size_t(x.dim()), 1);
    wshape[size_t(d)] = out;
    const TensorOptions wopt(x.dtype(), x.device());
    const Tensor a = from_vector<double>(w0, {out}).to(wopt.device, wopt.dtype).reshape(wshape);
    const Tensor b = from_vector<double>(w1, {out}).to(wopt.device, wopt.dtype).reshape(wshape);
    y = add(mul(index_select(y, d, index_on(i0, y.device())), a), mul(index_select(y, d, index_on(i1, y.device())), b));
  }
  return y.is_same(x) ? x.clone() : y;
}

}  // namespace tessera
