// Core reductions and softmax: sum/mean/prod/var/std/all/any over every subset of dims with
// and without keepdim, max/min/argmax/argmin with ties (first occurrence), 0-size dims,
// non-contiguous inputs, precision of long float32 sums, exact zero variance of constants,
// and softmax/log_softmax stability along every dim, all against float64 references.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "tessera/ops.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using namespace tessera::testing;  // elem, for_each_index, values

namespace {

Tensor random_tensor(const Shape& shape, double lo, double hi, DType dt, unsigned seed, bool integral = false) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = integral ? std::floor(dist(gen)) : dist(gen);
  if (dt == kFloat32) return from_vector<float>(std::vector<float>(v.begin(), v.end()), shape);
  return from_vector<double>(v, shape).to(dt);
}

// For each output element (row-major over the kept dims), the reduced values in row-major
// order of the reduced dims.
std::vector<std::vector<double>> groups(const Tensor& x, const std::vector<bool>& reduced) {
  Shape keep;
  for (int64_t d = 0; d < x.dim(); ++d) keep.push_back(reduced[size_t(d)] ? 1 : x.size(d));
  std::vector<std::vector<double>> out;
  for_each_index(keep, [&](const std::vector<int64_t>& k) {
    Shape rshape;
    for (int64_t d = 0; d < x.dim(); ++d) rshape.push_back(reduced[size_t(d)] ? x.size(d) : 1);
    std::vector<double> g;
    bool empty = false;
    for (int64_t s : rshape) empty = empty || s == 0;
    if (!empty) {
      for_each_index(rshape, [&](const std::vector<int64_t>& r) {
        std::vector<int64_t> idx(k.size());
        for (size_t d = 0; d < k.size(); ++d) idx[d] = reduced[d] ? r[d] : k[d];
        g.push_back(elem(x, idx));
      });
    }
    out.push_back(g);
  });
  if (shape_numel(keep) == 0) out.clear();
  return out;
}

Shape expected_shape(const Shape& in, const std::vector<bool>& reduced, bool keepdim) {
  Shape s;
  for (size_t d = 0; d < in.size(); ++d) {
    if (!reduced[d]) s.push_back(in[d]);
    else if (keepdim) s.push_back(1);
  }
  return s;
}

bool close(double got, double want, double rtol, double atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

double ref_sum(const std::vector<double>& v) {
  long double s = 0;
  for (double x : v) s += x;
  return double(s);
}
double ref_mean(const std::vector<double>& v) { return v.empty() ? NAN : ref_sum(v) / double(v.size()); }
double ref_prod(const std::vector<double>& v) {
  long double p = 1;
  for (double x : v) p *= x;
  return double(p);
}
double ref_var(const std::vector<double>& v, double correction) {
  const double m = ref_mean(v);
  long double ss = 0;
  for (double x : v) ss += (long double)(x - m) * (x - m);
  const double denom = double(v.size()) - correction;
  return denom > 0 ? double(ss / denom) : NAN;
}

using Reducer = std::function<Tensor(const Tensor&, const std::vector<int64_t>&, bool)>;

void check_reduction(const char* name, const Tensor& x, const Reducer& op, const std::function<double(const std::vector<double>&)>& ref,
                     double rtol, double atol) {
  const int64_t nd = x.dim();
  for (int mask = 0; mask < (1 << nd); ++mask) {
    std::vector<int64_t> dims;
    std::vector<bool> reduced(size_t(nd), false);
    for (int64_t d = nd - 1; d >= 0; --d)  // reversed order, negative for odd dims
      if (mask & (1 << d)) {
        dims.push_back(d % 2 ? d - nd : d);
        reduced[size_t(d)] = true;
      }
    if (mask == 0) reduced.assign(size_t(nd), true);  // {} means all dims
    for (bool keepdim : {false, true}) {
      INFO(name << " dims " << shape_str(dims) << " keepdim " << keepdim << " input " << shape_str(x.shape()) << " "
                << dtype_name(x.dtype()));
      Tensor out = op(x, dims, keepdim);
      CHECK(out.shape() == expected_shape(x.shape(), reduced, keepdim));
      std::vector<std::vector<double>> gs = groups(x, reduced);
      std::vector<double> got = values(out);
      REQUIRE(got.size() == gs.size());
      int bad = 0;
      for (size_t i = 0; i < gs.size(); ++i) {
        const double want = ref(gs[i]);
        if (!close(got[i], want, rtol, atol) && bad++ < 3) FAIL_CHECK("element " << i << ": got " << got[i] << ", expected " << want);
      }
      CHECK(bad == 0);
    }
  }
}

}  // namespace

TEST_CASE("core reduce: sum/mean/prod/var/std over every subset of dims", "[core][reduce]") {
  for (DType dt : {kFloat32, kFloat64}) {
    const double rt = dt == kFloat32 ? 2e-6 : 1e-12;
    Tensor base = random_tensor({3, 4, 5}, -2, 2, dt, 1);
    Tensor pos = random_tensor({3, 4, 5}, 0.6, 1.4, dt, 2);
    // Contiguous, permuted, sliced with step, and an expanded (stride-0) input.
    std::vector<std::pair<const char*, std::pair<Tensor, Tensor>>> inputs = {
        {"contiguous", {base, pos}},
        {"permuted", {random_tensor({5, 3, 4}, -2, 2, dt, 3).permute({1, 2, 0}), pos.permute({2, 0, 1})}},
        {"stepped", {random_tensor({6, 4, 10}, -2, 2, dt, 4).slice(0, 0, 6, 2).slice(2, 1, 10, 2),
                     random_tensor({3, 8, 5}, 0.6, 1.4, dt, 5).slice(1, 1, 8, 2)}},
        {"expanded", {random_tensor({3, 1, 5}, -2, 2, dt, 6).expand({3, 4, 5}), random_tensor({1, 4, 1}, 0.6, 1.4, dt, 7).expand({3, 4, 5})}},
    };
    for (auto& [what, xs] : inputs) {
      INFO(what);
      const Tensor& x = xs.first;
      check_reduction("sum", x, [](const Tensor& t, const std::vector<int64_t>& d, bool k) { return sum(t, d, k); }, ref_sum, rt, 1e-6);
      check_reduction("Tensor::sum", x, [](const Tensor& t, const std::vector<int64_t>& d, bool k) { return t.sum(d, k); }, ref_sum, rt, 1e-6);
      check_reduction("mean", x, [](const Tensor& t, const std::vector<int64_t>& d, bool k) { return mean(t, d, k); }, ref_mean, rt, 1e-7);
      check_reduction("prod", xs.second, [](const Tensor& t, const std::vector<int64_t>& d, bool k) { return prod(t, d, k); }, ref_prod, 4 * rt, 0);
      check_reduction("var", x, [](const Tensor& t, const std::vector<int64_t>& d, bool k) { return var(t, d, 1.0, k); },
                      [](const std::vector<double>& v) { return ref_var(v, 1.0); }, 10 * rt, 1e-7);
      check_reduction("var correction 0", x, [](const Tensor& t, const std::vector<int64_t>& d, bool k) { return var(t, d, 0.0, k); },
                      [](const std::vector<double>& v) { return ref_var(v, 0.0); }, 10 * rt, 1e-7);
      check_reduction("std", x, [](const Tensor& t, const std::vector<int64_t>& d, bool k) { return tessera::std(t, d, 1.0, k); },
                      [](const std::vector<double>& v) { return std::sqrt(ref_var(v, 1.0)); }, 10 * rt, 1e-7);
      for (const Tensor& o : {sum(x), mean(x), prod(xs.second), var(x), tessera::std(x)}) CHECK(o.dtype() == dt);
    }
  }
}

TEST_CASE("core reduce: all/any over every subset of dims", "[core][reduce]") {
  Tensor bits = gt(random_tensor({3, 4, 5}, 0, 1, kFloat64, 8), 0.15);  // mostly true: all() varies
  Tensor sparse = gt(random_tensor({3, 4, 5}, 0, 1, kFloat64, 9), 0.85);  // mostly false: any() varies
  auto all_ref = [](const std::vector<double>& v) { return std::all_of(v.begin(), v.end(), [](double x) { return x != 0; }) ? 1.0 : 0.0; };
  auto any_ref = [](const std::vector<double>& v) { return std::any_of(v.begin(), v.end(), [](double x) { return x != 0; }) ? 1.0 : 0.0; };
  for (const Tensor& x : {bits, sparse, bits.permute({2, 1, 0}), sparse.slice(1, 0, 4, 3)}) {
    check_reduction("all", x, [](const Tensor& t, const std::vector<int64_t>& d, bool k) { return all(t, d, k); }, all_ref, 0, 0);
    check_reduction("any", x, [](const Tensor& t, const std::vector<int64_t>& d, bool k) { return any(t, d, k); }, any_ref, 0, 0);
    CHECK(all(x).dtype() == kBool);
    CHECK(any(x, {1}).dtype() == kBool);
  }
  // Non-bool inputs: nonzero counts as true (NaN too).
  Tensor f = from_vector<double>({0.0, 2.0, NAN, -1.0}, {2, 2});
  CHECK(values(all(f, {1})) == std::vector<double>{0, 1});
  CHECK(values(any(f, {0})) == std::vector<double>{1, 1});
  CHECK(values(any(from_vector<int64_t>({0, 0}))) == std::vector<double>{0});
  // Empty: all() is true, any() is false.
  CHECK(all(zeros({0}, kBool)).item<bool>());
  CHECK_FALSE(any(zeros({0}, kBool)).item<bool>());
  CHECK(values(all(zeros({2, 0}, kBool), {1})) == std::vector<double>{1, 1});
  CHECK(values(any(zeros({2, 0}, kBool), {1})) == std::vector<double>{0, 0});
}

TEST_CASE("core reduce: integer and bool inputs", "[core][reduce]") {
  Tensor i = from_vector<int32_t>({1, -2, 3, 4, 5, -6}, {2, 3});
  Tensor s = sum(i, {1});
  CHECK(s.dtype() == kInt64);
  CHECK(values(s) == std::vector<double>{2, 3});
  CHECK(values(prod(i, {0})) == std::vector<double>{4, -10, -18});
  CHECK(prod(i).dtype() == kInt64);
  Tensor b = from_vector<bool>({true, true, false, true});
  CHECK(sum(b).dtype() == kInt64);
  CHECK(sum(b).item<int64_t>() == 3);
  CHECK(values(sum(from_vector<uint8_t>({200, 200, 200}))) == std::vector<double>{600});
  // int64 sums are exact beyond 2^53.
  const int64_t big = (int64_t(1) << 60) + 1;
  CHECK(sum(from_vector<int64_t>({big, 2})).item<int64_t>() == big + 2);
  auto [mx, mi] = max(i, 1);
  CHECK(mx.dtype() == kInt32);
  CHECK(values(mx) == std::vector<double>{3, 5});
  CHECK(values(mi) == std::vector<double>{2, 1});
  CHECK(values(argmin(i, 0)) == std::vector<double>{0, 0, 1});
  CHECK_THROWS_AS(mean(i), DTypeError);
  CHECK_THROWS_AS(var(i), DTypeError);
}

TEST_CASE("core reduce: max/min/argmax/argmin with ties pick the first occurrence", "[core][reduce]") {
  // Hand-worked ties.
  Tensor v = from_vector<double>({1, 3, 3, 2});
  CHECK(argmax(v, 0).item<int64_t>() == 1);
  CHECK(argmin(from_vector<double>({2, 0, 5, 0}), 0).item<int64_t>() == 1);
  CHECK(argmax(from_vector<double>({7, 7, 7})).item<int64_t>() == 0);
  CHECK(argmin(from_vector<float>({-1, -1}), 0).item<int64_t>() == 0);
  Tensor m = from_vector<double>({1, 5, 5, 0, 0, 2, 4, 4, 4}, {3, 3});
  CHECK(values(argmax(m, 1)) == std::vector<double>{1, 2, 0});
  CHECK(values(argmin(m, 1)) == std::vector<double>{0, 0, 0});
  CHECK(values(argmax(m, 0)) == std::vector<double>{2, 0, 0});
  CHECK(argmax(m).item<int64_t>() == 1);  // flattened
  CHECK(argmin(m).item<int64_t>() == 3);
  CHECK(argmax(m, 1, true).shape() == Shape{3, 1});
  CHECK(argmax(m, 1).dtype() == kInt64);
  auto [vals, idx] = max(m, -1, true);
  CHECK(vals.shape() == Shape{3, 1});
  CHECK(idx.shape() == Shape{3, 1});
  CHECK(values(vals) == std::vector<double>{5, 2, 4});
  CHECK(values(idx) == std::vector<double>{1, 2, 0});
  CHECK(max(m).item<double>() == 5);
  CHECK(min(m).item<double>() == 0);
  CHECK(m.max().dim() == 0);
  CHECK(m.argmax(0).shape() == Shape{3});

  // Random integer-valued inputs (many ties) along every dim, contiguous and strided,
  // against a first-occurrence reference.
  for (DType dt : {kFloat32, kFloat64, kInt64}) {
    Tensor base = random_tensor({4, 5, 6}, 0, 4, dt == kInt64 ? kFloat64 : dt, 12, true);
    if (dt == kInt64) base = base.to(kInt64);
    for (const Tensor& x : {base, base.permute({2, 0, 1}), base.slice(2, 0, 6, 2)}) {
      for (int64_t d = -3; d < 3; ++d) {
        for (bool keepdim : {false, true}) {
          INFO(dtype_name(dt) << " dim " << d << " keepdim " << keepdim << " shape " << shape_str(x.shape()));
          std::vector<bool> reduced(3, false);
          reduced[size_t((d + 3) % 3)] = true;
          std::vector<std::vector<double>> gs = groups(x, reduced);
          std::vector<double> amax, amin, vmax, vmin;
          for (const auto& g : gs) {
            auto imax = std::max_element(g.begin(), g.end());  // first of equal maxima
            auto imin = std::min_element(g.begin(), g.end());
            amax.push_back(double(imax - g.begin()));
            amin.push_back(double(imin - g.begin()));
            vmax.push_back(*imax);
            vmin.push_back(*imin);
          }
          CHECK(values(argmax(x, d, keepdim)) == amax);
          CHECK(values(argmin(x, d, keepdim)) == amin);
          auto [mxv, mxi] = max(x, d, keepdim);
          auto [mnv, mni] = min(x, d, keepdim);
          CHECK(values(mxv) == vmax);
          CHECK(values(mxi) == amax);
          CHECK(values(mnv) == vmin);
          CHECK(values(mni) == amin);
          CHECK(mxv.shape() == expected_shape(x.shape(), reduced, keepdim));
          CHECK(mxv.dtype() == x.dtype());
        }
      }
    }
  }
  // A long row of equal values (parallel/vectorised paths must keep the first index).
  Tensor flat = full({1, 300000}, 2.5);
  CHECK(argmax(flat, 1).item<int64_t>() == 0);
  CHECK(argmin(flat, 1).item<int64_t>() == 0);
  Tensor two = zeros({300000});
  {
    float* p = two.data_ptr<float>();
    p[123456] = 1;
    p[234567] = 1;
    p[200] = -1;
    p[299999] = -1;
  }
  CHECK(argmax(two).item<int64_t>() == 123456);
  CHECK(argmin(two).item<int64_t>() == 200);
}

TEST_CASE("core reduce: NaN propagates through max/min", "[core][reduce]") {
  Tensor x = from_vector<double>({1, NAN, 3, -1}, {2, 2});
  CHECK(std::isnan(max(x).item<double>()));
  CHECK(std::isnan(min(x).item<double>()));
  auto [v, i] = max(x, 1);
  CHECK(std::isnan(values(v)[0]));
  CHECK(values(i)[0] == 1);
  CHECK(values(v)[1] == 3);
  CHECK(values(argmax(x, 1)) == std::vector<double>{1, 0});  // argmax of the NaN row is the NaN
  CHECK(std::isnan(sum(x).item<double>()));
}

TEST_CASE("core reduce: 0-size dims", "[core][reduce]") {
  Tensor z = zeros({0, 3});
  CHECK(sum(z, {0}).shape() == Shape{3});
  CHECK(values(sum(z, {0})) == std::vector<double>{0, 0, 0});
  CHECK(sum(z, {1}).shape() == Shape{0});
  CHECK(sum(z, {1}, true).shape() == Shape{0, 1});
  CHECK(sum(z).item<float>() == 0);
  CHECK(values(prod(z, {0})) == std::vector<double>{1, 1, 1});
  CHECK(std::isnan(mean(z).item<float>()));
  std::vector<double> mv = values(mean(z, {0}));
  CHECK(mv.size() == 3);
  CHECK(std::isnan(mv[0]));
  CHECK(std::isnan(var(zeros({0}, kFloat64)).item<double>()));
  CHECK(std::isnan(var(ones({1}, kFloat64)).item<double>()));  // n - 1 = 0
  CHECK(var(ones({1}, kFloat64), {}, 0.0).item<double>() == 0);
  // max/argmax over an empty dim are errors; over a non-empty dim of an empty tensor they are empty.
  CHECK_THROWS_AS(max(z), ShapeError);
  CHECK_THROWS_AS(min(z), ShapeError);
  CHECK_THROWS_AS(max(z, 0), ShapeError);
  CHECK_THROWS_AS(argmax(z, 0), ShapeError);
  CHECK_THROWS_AS(argmin(z, 0), ShapeError);
  CHECK_THROWS_AS(argmax(z), ShapeError);
  CHECK(max(z, 1).first.shape() == Shape{0});
  CHECK(argmax(z, 1).shape() == Shape{0});
  CHECK(argmax(z, 1, true).shape() == Shape{0, 1});
  Tensor z3 = zeros({2, 0, 4});
  CHECK(sum(z3, {1}).shape() == Shape{2, 4});
  CHECK(values(sum(z3, {1})) == std::vector<double>(8, 0.0));
  CHECK(sum(z3, {0, 2}).shape() == Shape{0});
  // 0-dim input.
  Tensor s = scalar_tensor(3.5, kFloat64);
  CHECK(sum(s).item<double>() == 3.5);
  CHECK(sum(s, {0}).item<double>() == 3.5);
  CHECK(sum(s, {-1}, true).dim() == 0);
  CHECK(max(s).item<double>() == 3.5);
  CHECK(argmax(s, 0).item<int64_t>() == 0);
  CHECK(mean(s).item<double>() == 3.5);
}

TEST_CASE("core reduce: dim arguments are validated", "[core][reduce]") {
  Tensor x = ones({2, 3});
  CHECK_THROWS_AS(sum(x, {2}), IndexError);
  CHECK_THROWS_AS(sum(x, {-3}), IndexError);
  CHECK_THROWS_AS(sum(x, {0, 0}), Error);
  CHECK_THROWS_AS(sum(x, {1, -1}), Error);
  CHECK_THROWS_AS(argmax(x, 2), IndexError);
  CHECK_THROWS_AS(max(x, -3), IndexError);
  CHECK_THROWS_AS(softmax(x, 2), IndexError);
  CHECK_THROWS_WITH(sum(x, {5}), Contains("sum"));
}

TEST_CASE("core reduce: 1e8 float32 ones sum to exactly 1e8", "[core][reduce][large]") {
  Tensor x = ones({100000000});
  Tensor s = sum(x);
  CHECK(s.dtype() == kFloat32);
  CHECK(s.item<float>() == 1e8f);
  CHECK(double(s.item<float>()) == 1e8);
  CHECK(mean(x).item<float>() == 1.0f);
  // Split into two rows and into many rows, reduced per row.
  CHECK(values(sum(x.view({2, 50000000}), {1})) == std::vector<double>{5e7, 5e7});
  CHECK(values(sum(x.view({10000, 10000}), {1}, false).slice(0, 0, 3)) == std::vector<double>{1e4, 1e4, 1e4});
}

TEST_CASE("core reduce: long float32 sums keep precision", "[core][reduce]") {
  // 0.1f repeated 3e6 times; a naive float32 running sum is off by ~1%.
  const int64_t n = 3000000;
  Tensor x = full({n}, 0.1);
  const double want = double(0.1f) * double(n);
  CHECK(sum(x).item<float>() == Approx(want).epsilon(1e-7));
  CHECK(mean(x).item<float>() == Approx(double(0.1f)).epsilon(1e-7));
  // Mixed magnitudes: 1e8 then many 1s (float32 1e8 + 1 == 1e8).
  std::vector<float> v(1000001, 1.0f);
  v[0] = 1e8f;
  CHECK(sum(from_vector<float>(v)).item<float>() == 1.01e8f);
}

TEST_CASE("core reduce: variance of a constant is exactly 0", "[core][reduce]") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (double c : {0.1, 1.0 / 3.0, -7.25, 1e10 + 0.3, 3.141592653589793, 123456.789}) {
      for (int64_t n : {int64_t(2), int64_t(7), int64_t(1000), int64_t(100003), int64_t(300001)}) {
        INFO(dtype_name(dt) << " constant " << c << " n " << n);
        Tensor x = full({n}, c, dt);
        CHECK(var(x).item<double>() == 0.0);
        CHECK(tessera::std(x).item<double>() == 0.0);
        CHECK(var(x, {}, 0.0).item<double>() == 0.0);
      }
      Tensor m = full({37, 53}, c, dt);
      INFO(dtype_name(dt) << " constant " << c << " [37, 53]");
      CHECK(values(var(m, {0})) == std::vector<double>(53, 0.0));
      CHECK(values(var(m, {1})) == std::vector<double>(37, 0.0));
      CHECK(values(var(m.t(), {0})) == std::vector<double>(37, 0.0));
    }
  }
  // Large offset with small spread: a one-pass E[x^2] - E[x]^2 formula gives garbage here.
  Tensor y = from_vector<double>({1e9 + 1, 1e9 + 2, 1e9 + 3, 1e9 + 4});
  CHECK(var(y).item<double>() == Approx(5.0 / 3.0).epsilon(1e-12));
  Tensor yf = from_vector<float>({10000.f, 10001.f, 10002.f, 10003.f});
  CHECK(var(yf).item<float>() == Approx(5.0 / 3.0).epsilon(1e-6));
}

// ---- softmax --------------------------------------------------------------------------------

namespace {
// Softmax of each line along dim d, in float64 (row-major order).
std::vector<double> ref_softmax(const Tensor& x, int64_t d, bool log) {
  const int64_t nd = x.dim();
  d = (d + nd) % nd;
  std::vector<double> out(static_cast<size_t>(x.numel()));
  const Shape& sh = x.shape();
  Strides cs = contiguous_strides(sh);
  for_each_index(sh, [&](const std::vector<int64_t>& i) {
    if (i[size_t(d)] != 0) return;
    std::vector<double> line;
    std::vector<int64_t> j = i;
    for (int64_t k = 0; k < sh[size_t(d)]; ++k) {
      j[size_t(d)] = k;
      line.push_back(elem(x, j));
    }
    const double mx = *std::max_element(line.begin(), line.end());
    double s = 0;
    for (double v : line) s += std::exp(v - mx);
    for (int64_t k = 0; k < sh[size_t(d)]; ++k) {
      j[size_t(d)] = k;
      int64_t flat = 0;
      for (size_t q = 0; q < j.size(); ++q) flat += j[q] * cs[q];
      const double z = line[size_t(k)] - mx;
      out[size_t(flat)] = log ? z - std::log(s) : std::exp(z) / s;
    }
  });
  return out;
}
}  // namespace

TEST_CASE("core reduce: softmax and log_softmax along every dim match float64", "[core][reduce][softmax]") {
  for (DType dt : {kFloat32, kFloat64}) {
    const double rt = dt == kFloat32 ? 2e-6 : 1e-12;
    Tensor base = random_tensor({3, 4, 5}, -6, 6, dt, 51);
    Tensor shifted = add(random_tensor({2, 3, 4}, -3, 3, dt, 52), 5000.0);  // huge logits
    for (const Tensor& x : {base, base.permute({2, 0, 1}), base.slice(2, 0, 5, 2), shifted,
                            random_tensor({1, 7}, -2, 2, dt, 53).expand({3, 7})}) {
      for (int64_t d = -x.dim(); d < x.dim(); ++d) {
        INFO(dtype_name(dt) << " shape " << shape_str(x.shape()) << " dim " << d);
        Tensor s = softmax(x, d), ls = log_softmax(x, d);
        CHECK(s.shape() == x.shape());
        CHECK(s.dtype() == dt);
        std::vector<double> rs = ref_softmax(x, d, false), rl = ref_softmax(x, d, true);
        std::vector<double> gs = values(s), gl = values(ls);
        int bad = 0;
        for (size_t i = 0; i < rs.size(); ++i) {
          if (!close(gs[i], rs[i], rt, 1e-7) && bad++ < 3) FAIL_CHECK("softmax[" << i << "] = " << gs[i] << ", expected " << rs[i]);
          if (!close(gl[i], rl[i], rt, 1e-6) && bad++ < 3) FAIL_CHECK("log_softmax[" << i << "] = " << gl[i] << ", expected " << rl[i]);
        }
        CHECK(bad == 0);
        // Each line sums to 1.
        std::vector<double> sums = values(sum(s, {d}));
        for (double v : sums) CHECK(v == Approx(1.0).epsilon(dt == kFloat32 ? 1e-5 : 1e-12));
      }
    }
    Tensor m = random_tensor({2, 3}, -1, 1, dt, 54);
    CHECK(values(m.softmax(1)) == values(softmax(m, 1)));
    CHECK(values(m.log_softmax(0)) == values(log_softmax(m, 0)));
  }
}

TEST_CASE("core reduce: softmax is stable for huge and -inf logits", "[core][reduce][softmax]") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    Tensor x = from_vector<double>({1000, 0}).to(dt);
    CHECK(values(log_softmax(x, 0)) == std::vector<double>{0, -1000});
    CHECK(values(softmax(x, 0)) == std::vector<double>{1, 0});
    CHECK(values(log_softmax(from_vector<double>({-1000, 0}).to(dt), 0)) == std::vector<double>{-1000, 0});
    CHECK(values(softmax(from_vector<double>({1e30, 1e30}).to(dt), 0)) == std::vector<double>{0.5, 0.5});
    CHECK(values(log_softmax(from_vector<double>({1e30, 1e30}).to(dt), 0))[0] == Approx(-std::log(2.0)).epsilon(1e-6));
    // -inf logits get probability 0 and log-probability -inf; the rest are unaffected.
    Tensor ni = from_vector<double>({-INFINITY, 0, std::log(3.0)}).to(dt);
    std::vector<double> s = values(softmax(ni, 0)), ls = values(log_softmax(ni, 0));
    CHECK(s[0] == 0);
    CHECK(s[1] == Approx(0.25).epsilon(1e-6));
    CHECK(s[2] == Approx(0.75).epsilon(1e-6));
    CHECK(ls[0] == -INFINITY);
    CHECK(ls[1] == Approx(std::log(0.25)).epsilon(1e-6));
    // Along dim 0 of a matrix: a column with -inf, a column of huge values.
    Tensor m = from_vector<double>({-INFINITY, 1000, 0, 1000}, {2, 2}).to(dt);
    CHECK(values(softmax(m, 0)) == std::vector<double>{0, 0.5, 1, 0.5});
    std::vector<double> lm = values(log_softmax(m, 0));
    CHECK(lm[0] == -INFINITY);
    CHECK(lm[2] == 0);
    CHECK(lm[1] == Approx(-std::log(2.0)).epsilon(1e-6));
    // Scalars and 0-size dims.
    CHECK(softmax(scalar_tensor(5.0, dt), 0).item<double>() == 1.0);
    CHECK(log_softmax(scalar_tensor(5.0, dt), -1).item<double>() == 0.0);
    CHECK(softmax(zeros({0, 3}, dt), 1).shape() == Shape{0, 3});
    CHECK(softmax(zeros({3, 0}, dt), 1).shape() == Shape{3, 0});
    CHECK(log_softmax(zeros({3, 0}, dt), 0).shape() == Shape{3, 0});
  }
  CHECK_THROWS_AS(softmax(from_vector<int64_t>({1, 2}), 0), DTypeError);
  // A long row (vectorised and threaded paths).
  Tensor big = random_tensor({2, 100000}, -50, 50, kFloat64, 55);
  std::vector<double> r = ref_softmax(big, 1, true), g = values(log_softmax(big, 1));
  int bad = 0;
  for (size_t i = 0; i < r.size(); ++i)
    if (!close(g[i], r[i], 1e-12, 1e-12) && bad++ < 3) FAIL_CHECK("log_softmax[" << i << "] = " << g[i] << ", expected " << r[i]);
  CHECK(bad == 0);
}
