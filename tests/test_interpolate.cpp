// interpolate / nn::Upsample: PyTorch's documented examples (torch.nn.Upsample), a direct
// float64 reference over all 2^k corners written here from ATen's index rules, gradcheck, the
// module, and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <optional>
#include <vector>

#include "tessera/autograd/gradcheck.hpp"
#include "tessera/nn/nn.hpp"
#include "tessera/ops.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using tessera::testing::elem;
using tessera::testing::for_each_index;
using tessera::testing::random_tensor;
using tessera::testing::values;
using V = std::vector<Tensor>;
using D = std::vector<double>;

namespace {

struct Taps {  // the source samples of one output coordinate along one dim and their weights
  std::vector<int64_t> idx;
  std::vector<double> w;
};

/// One dim of the reference: ATen's rules, written out per output coordinate.
Taps taps(InterpolateMode mode, int64_t in, int64_t out, int64_t o, bool align, std::optional<double> sf) {
  const bool linear = mode != kNearest && mode != kNearestExact;
  if (!linear) {
    if (mode == kNearest && out == in) return {{o}, {1}};
    if (mode == kNearest && out == 2 * in) return {{o / 2}, {1}};
    const float scale = sf ? float(1.0 / *sf) : float(in) / float(out);
    const float pos = mode == kNearestExact ? (float(o) + 0.5f) * scale : float(o) * scale;
    return {{std::min<int64_t>(int64_t(std::floor(pos)), in - 1)}, {1}};
  }
  if (out == in) return {{o}, {1}};
  double scale;
  if (align) scale = out > 1 ? double(in - 1) / double(out - 1) : 0.0;
  else scale = sf ? 1.0 / *sf : double(in) / double(out);
  double src = align ? scale * o : std::max(0.0, scale * (o + 0.5) - 0.5);
  const int64_t lo = int64_t(std::floor(src));
  const int64_t hi = std::min(lo + 1, in - 1);
  const double f = src - double(lo);
  return {{lo, hi}, {1 - f, f}};
}

/// Direct reference: out[n, c, o...] = sum over corners of prod(w) * x[n, c, idx...] (float64).
/// sf: no scale factors (empty), one for every dim, or one per dim.
Tensor reference(const Tensor& x, const Shape& out_spatial, InterpolateMode mode, bool align,
                 const std::vector<double>& sf) {
  Shape os{x.size(0), x.size(1)};
  os.insert(os.end(), out_spatial.begin(), out_spatial.end());
  std::vector<double> out;
  const int64_t k = x.dim() - 2;
  for_each_index(os, [&](const std::vector<int64_t>& o) {
    std::vector<Taps> t;
    for (int64_t j = 0; j < k; ++j) {
      std::optional<double> f;
      if (!sf.empty()) f = sf[sf.size() == 1 ? 0 : size_t(j)];
      t.push_back(taps(mode, x.size(2 + j), os[size_t(2 + j)], o[size_t(2 + j)], align, f));
    }
    double acc = 0;
    std::function<void(int64_t, std::vector<int64_t>&, double)> walk = [&](int64_t j, std::vector<int64_t>& src,
                                                                            double w) {
      if (j == k) {
        acc += w * elem(x, src);
        return;
      }
      for (size_t c = 0; c < t[size_t(j)].idx.size(); ++c) {
        src.push_back(t[size_t(j)].idx[c]);
        walk(j + 1, src, w * t[size_t(j)].w[c]);
        src.pop_back();
      }
    };
    std::vector<int64_t> src{o[0], o[1]};
    walk(0, src, 1.0);
    out.push_back(acc);
  });
  return from_vector<double>(out, os);
}

void require_near(const Tensor& got, const Tensor& want, double tol) {
  REQUIRE(got.shape() == want.shape());
  const D g = values(got), w = values(want);
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element " << i << ": got " << g[i] << ", want " << w[i]);
    REQUIRE(std::abs(g[i] - w[i]) <= tol);
  }
}

}  // namespace

TEST_CASE("interpolate: PyTorch's nn.Upsample documentation examples", "[interpolate]") {
  const Tensor x = from_vector<double>({1, 2, 3, 4}, {1, 1, 2, 2});
  REQUIRE(values(interpolate(x, InterpolateOptions().scale_factor({2}).mode(kNearest))) ==
          D{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  require_near(interpolate(x, InterpolateOptions().scale_factor({2}).mode(kBilinear)),
               from_vector<double>({1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75,
                                    4.0},
                                   {1, 1, 4, 4}),
               1e-12);
  const double t = 1.0 / 3, u = 2.0 / 3;
  require_near(interpolate(x, InterpolateOptions().scale_factor({2}).mode(kBilinear).align_corners(true)),
               from_vector<double>({1, 1 + t, 1 + u, 2, 1 + u, 2, 2 + t, 2 + u, 2 + t, 2 + u, 3, 3 + t, 3, 3 + t,
                                    3 + u, 4},
                                   {1, 1, 4, 4}),
               1e-12);
}

TEST_CASE("interpolate matches a direct float64 reference for every mode, size and scale", "[interpolate]") {
  const Tensor x = random_tensor({2, 3, 5, 4}, kFloat64);
  for (InterpolateMode mode : {kNearest, kNearestExact, kBilinear}) {
    for (bool align : {false, true}) {
      if (align && mode != kBilinear) continue;
      INFO("mode " << interpolate_mode_name(mode) << ", align_corners " << align);
      auto opts = [&] {
        InterpolateOptions o;
        o.mode(mode);
        if (mode == kBilinear) o.align_corners(align);
        return o;
      };
      // up, down, mixed, to 1, non-integer scale factors (1 / scale_factor is the scale),
      // recompute_scale_factor (in / out is)
      for (const Shape& s : {Shape{7, 9}, Shape{2, 3}, Shape{10, 3}, Shape{1, 1}, Shape{5, 4}})
        require_near(interpolate(x, opts().size(s)), reference(x, s, mode, align, {}), 1e-12);
      require_near(interpolate(x, opts().scale_factor({1.7, 0.6})), reference(x, {8, 2}, mode, align, {1.7, 0.6}),
                   1e-12);
      for (double f : {1.7, 2.5, 0.6}) {
        const Shape s{int64_t(std::floor(5 * f)), int64_t(std::floor(4 * f))};
        require_near(interpolate(x, opts().scale_factor({f})), reference(x, s, mode, align, {f}), 1e-12);
        require_near(interpolate(x, opts().scale_factor({f}).recompute_scale_factor(true)),
                     reference(x, s, mode, align, {}), 1e-12);
      }
    }
  }
  // 1-D linear and 3-D trilinear, nearest in 1-D and 3-D
  const Tensor x1 = random_tensor({2, 2, 5}, kFloat64);
  require_near(interpolate(x1, InterpolateOptions().size({8}).mode(kLinear)), reference(x1, {8}, kLinear, false, {}),
               1e-12);
  require_near(interpolate(x1, InterpolateOptions().size({3}).mode(kNearest)), reference(x1, {3}, kNearest, false, {}),
               1e-12);
  const Tensor x3 = random_tensor({1, 2, 3, 2, 4}, kFloat64);
  require_near(interpolate(x3, InterpolateOptions().size({4, 5, 3}).mode(kTrilinear).align_corners(true)),
               reference(x3, {4, 5, 3}, kTrilinear, true, {}), 1e-12);
  require_near(interpolate(x3, InterpolateOptions().scale_factor({2}).mode(kNearest)),
               reference(x3, {6, 4, 8}, kNearest, false, {2.0}), 1e-12);
  // float32 agrees with float64 to float32's precision; a strided input gives the same values
  const Tensor xf = x.to(kFloat32);
  require_near(interpolate(xf, InterpolateOptions().size({7, 9}).mode(kBilinear)),
               reference(x, {7, 9}, kBilinear, false, {}), 1e-5);
  const Tensor xt = x.transpose(2, 3).contiguous().transpose(2, 3);
  require_near(interpolate(xt, InterpolateOptions().size({6, 6}).mode(kBilinear)),
               reference(x, {6, 6}, kBilinear, false, {}), 1e-12);
  // the same size is a copy, not a view
  Tensor same = interpolate(x, InterpolateOptions().size({5, 4}));
  REQUIRE(values(same) == values(x));
  same.fill_(0);
  REQUIRE(values(x) != values(same));
}

TEST_CASE("interpolate gradcheck; nn::Upsample", "[interpolate][gradcheck]") {
  REQUIRE(gradcheck([](const V& v) { return interpolate(v[0], InterpolateOptions().size({5, 3}).mode(kBilinear)); },
                    {random_tensor({2, 2, 3, 4}, kFloat64, true)}));
  REQUIRE(gradcheck(
      [](const V& v) {
        return interpolate(v[0], InterpolateOptions().scale_factor({1.5}).mode(kBilinear).align_corners(true));
      },
      {random_tensor({1, 2, 3, 4}, kFloat64, true)}));
  REQUIRE(gradcheck([](const V& v) { return interpolate(v[0], InterpolateOptions().size({7, 2}).mode(kNearest)); },
                    {random_tensor({1, 2, 3, 4}, kFloat64, true)}));
  REQUIRE(gradcheck([](const V& v) { return interpolate(v[0], InterpolateOptions().size({4, 3, 5}).mode(kTrilinear)); },
                    {random_tensor({1, 1, 2, 3, 2}, kFloat64, true)}));

  nn::Upsample up(nn::UpsampleOptions().scale_factor({2, 2}).mode(kBilinear).align_corners(false));
  const Tensor x = random_tensor({2, 3, 4, 4}, kFloat32);
  REQUIRE(values(up(x)) == values(interpolate(x, InterpolateOptions().scale_factor({2, 2}).mode(kBilinear).align_corners(false))));
  REQUIRE(up->extra_repr() == "scale_factor=(2, 2), mode='bilinear', align_corners=false");
  nn::Upsample near(nn::UpsampleOptions().size({3, 5}));
  REQUIRE(near(x).shape() == Shape{2, 3, 3, 5});
  REQUIRE(near->extra_repr() == "size=(3, 5), mode='nearest'");
  REQUIRE(up->parameters().empty());
}

TEST_CASE("interpolate errors name the op, the shapes and what was expected", "[interpolate][errors]") {
  const Tensor x = random_tensor({1, 2, 3, 4}, kFloat32);
  REQUIRE_THROWS_AS(interpolate(x.select(0, 0).select(0, 0), InterpolateOptions().size({2})), ShapeError);
  REQUIRE_THROWS_WITH(interpolate(random_tensor({2, 3}, kFloat32), InterpolateOptions().size({2})),
                      Contains("interpolate: expected a 3-D, 4-D or 5-D input") && Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(interpolate(random_tensor({1, 2, 3}, kFloat32), InterpolateOptions().size({2}).mode(kBilinear)),
                      Contains("mode 'bilinear' needs a 4-D input, got shape [1, 2, 3]"));
  REQUIRE_THROWS_AS(interpolate(x.to(kInt64), InterpolateOptions().size({2})), DTypeError);
  REQUIRE_THROWS_WITH(interpolate(x, InterpolateOptions().size({2}).scale_factor({2})),
                      Contains("only one of size and scale_factor"));
  REQUIRE_THROWS_WITH(interpolate(x, InterpolateOptions()), Contains("set size or scale_factor"));
  REQUIRE_THROWS_WITH(interpolate(x, InterpolateOptions().size({2, 2, 2})),
                      Contains("size has 3 values") && Contains("2 spatial dims"));
  REQUIRE_THROWS_WITH(interpolate(x, InterpolateOptions().size({0, 2})), Contains("output size 0 for dim 2"));
  REQUIRE_THROWS_WITH(interpolate(x, InterpolateOptions().scale_factor({-1})), Contains("scale_factor -1"));
  REQUIRE_THROWS_WITH(interpolate(x, InterpolateOptions().scale_factor({0.1})), Contains("gives an empty dim 2"));
  REQUIRE_THROWS_WITH(interpolate(x, InterpolateOptions().size({2}).align_corners(true)),
                      Contains("align_corners can only be set with the linear modes") && Contains("'nearest'"));
  REQUIRE_THROWS_WITH(interpolate(random_tensor({1, 2, 0, 4}, kFloat32), InterpolateOptions().size({2})),
                      Contains("empty spatial dim 2"));
  nn::Upsample bad(nn::UpsampleOptions().scale_factor({2}).mode(kTrilinear));
  REQUIRE_THROWS_WITH(bad(x), Contains("mode 'trilinear' needs a 5-D input"));
}
