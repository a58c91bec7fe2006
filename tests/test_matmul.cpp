// Core matmul/mm/bmm against a float64 triple loop: 1-D, 2-D, batched with broadcasting,
// transposed, sliced-with-step, expanded and overlapping (from_blob) operands, 0-size dims,
// and the error messages for mismatched shapes.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using tessera::testing::for_each_index;

namespace {

// testing::elem (read through strides), restricted to the floating dtypes matmul works on.
double elem(const Tensor& t, const std::vector<int64_t>& idx) {
  if (t.dtype() != kFloat32 && t.dtype() != kFloat64) FAIL("unexpected dtype " << dtype_name(t.dtype()));
  return tessera::testing::elem(t, idx);
}

Tensor random_tensor(const Shape& shape, DType dt, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = dist(gen);
  if (dt == kFloat32) return from_vector<float>(std::vector<float>(v.begin(), v.end()), shape);
  return from_vector<double>(v, shape);
}

// torch.matmul semantics computed in float64 with explicit loops. Returns the expected shape
// and row-major values.
std::pair<Shape, std::vector<double>> ref_matmul(const Tensor& a, const Tensor& b) {
  const bool a1 = a.dim() == 1, b1 = b.dim() == 1;
  // Promote to >= 2-D views of index functions.
  const int64_t M = a1 ? 1 : a.size(-2), K = a.size(-1), N = b1 ? 1 : b.size(-1);
  Shape ba, bb;
  if (!a1) ba.assign(a.shape().begin(), a.shape().end() - 2);
  if (!b1) bb.assign(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb);
  Shape out_shape = batch;
  if (!a1) out_shape.push_back(M);
  if (!b1) out_shape.push_back(N);
  std::vector<double> out;
  Shape full = batch;
  full.push_back(M);
  full.push_back(N);
  for_each_index(full, [&](const std::vector<int64_t>& i) {
    const int64_t m = i[i.size() - 2], n = i[i.size() - 1];
    long double s = 0;
    for (int64_t k = 0; k < K; ++k) {
      std::vector<int64_t> ia, ib;
      const size_t lead_a = batch.size() - ba.size(), lead_b = batch.size() - bb.size();
      for (size_t d = 0; d < ba.size(); ++d) ia.push_back(ba[d] == 1 ? 0 : i[lead_a + d]);
      for (size_t d = 0; d < bb.size(); ++d) ib.push_back(bb[d] == 1 ? 0 : i[lead_b + d]);
      if (a1) {
        ia.push_back(k);
      } else {
        ia.push_back(m);
        ia.push_back(k);
      }
      if (b1) {
        ib.push_back(k);
      } else {
        ib.push_back(k);
        ib.push_back(n);
      }
      s += (long double)elem(a, ia) * elem(b, ib);
    }
    out.push_back(double(s));
  });
  return {out_shape, out};
}

void check_matmul(const Tensor& a, const Tensor& b, const std::function<Tensor(const Tensor&, const Tensor&)>& op = matmul) {
  INFO("a " << shape_str(a.shape()) << " strides " << shape_str(a.strides()) << ", b " << shape_str(b.shape()) << " strides "
            << shape_str(b.strides()) << " " << dtype_name(a.dtype()));
  Tensor c = op(a, b);
  auto [shape, want] = ref_matmul(a, b);
  CHECK(c.shape() == shape);
  CHECK(c.dtype() == a.dtype());
  if (c.shape() != shape) return;
  std::vector<double> got;
  for_each_index(c.shape(), [&](const std::vector<int64_t>& i) { got.push_back(elem(c, i)); });
  REQUIRE(got.size() == want.size());
  const double K = double(a.size(-1));
  const double tol = (a.dtype() == kFloat32 ? 2e-6 : 1e-14) * std::max(1.0, std::sqrt(K)) * 4;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::fabs(got[i] - want[i]) > tol * std::max(1.0, std::fabs(want[i])) && bad++ < 3)
      FAIL_CHECK("element " << i << ": got " << got[i] << ", expected " << want[i]);
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("core matmul: 1-D and 2-D operands", "[core][matmul]") {
  for (DType dt : {kFloat32, kFloat64}) {
    check_matmul(random_tensor({7}, dt, 1), random_tensor({7}, dt, 2));
    check_matmul(random_tensor({3, 7}, dt, 3), random_tensor({7}, dt, 4));
    check_matmul(random_tensor({7}, dt, 5), random_tensor({7, 4}, dt, 6));
    check_matmul(random_tensor({3, 7}, dt, 7), random_tensor({7, 4}, dt, 8));
    check_matmul(random_tensor({1, 1}, dt, 9), random_tensor({1, 1}, dt, 10));
    check_matmul(random_tensor({1, 5}, dt, 11), random_tensor({5, 1}, dt, 12));
    check_matmul(random_tensor({5, 1}, dt, 13), random_tensor({1, 5}, dt, 14));
    check_matmul(random_tensor({65, 130}, dt, 15), random_tensor({130, 33}, dt, 16));
    check_matmul(random_tensor({3, 7}, dt, 17), random_tensor({7, 4}, dt, 18), mm);
    check_matmul(random_tensor({3, 7}, dt, 19), random_tensor({7, 4}, dt, 20),
                 [](const Tensor& a, const Tensor& b) { return a.matmul(b); });
  }
  // Hand-worked.
  Tensor a = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector<double>({7, 8, 9, 10, 11, 12}, {3, 2});
  Tensor c = matmul(a, b);
  CHECK(c.data_ptr<double>()[0] == 58);
  CHECK(c.data_ptr<double>()[1] == 64);
  CHECK(c.data_ptr<double>()[2] == 139);
  CHECK(c.data_ptr<double>()[3] == 154);
  Tensor dot = matmul(from_vector<double>({1, 2, 3}), from_vector<double>({4, 5, 6}));
  CHECK(dot.dim() == 0);
  CHECK(dot.item<double>() == 32);
}

TEST_CASE("core matmul: batched with broadcast batch dims", "[core][matmul]") {
  for (DType dt : {kFloat32, kFloat64}) {
    check_matmul(random_tensor({4, 3, 5}, dt, 21), random_tensor({4, 5, 2}, dt, 22));
    check_matmul(random_tensor({4, 3, 5}, dt, 23), random_tensor({4, 5, 2}, dt, 24), bmm);
    check_matmul(random_tensor({2, 3, 4, 5}, dt, 25), random_tensor({5, 6}, dt, 26));
    check_matmul(random_tensor({2, 3, 4, 5}, dt, 27), random_tensor({5}, dt, 28));
    check_matmul(random_tensor({5}, dt, 29), random_tensor({2, 5, 3}, dt, 30));
    check_matmul(random_tensor({4, 5}, dt, 31), random_tensor({3, 5, 2}, dt, 32));
    check_matmul(random_tensor({2, 1, 3, 4}, dt, 33), random_tensor({5, 4, 6}, dt, 34));
    check_matmul(random_tensor({1, 3, 4}, dt, 35), random_tensor({6, 4, 2}, dt, 36));
    check_matmul(random_tensor({3, 1, 2, 4}, dt, 37), random_tensor({1, 5, 4, 3}, dt, 38));
    check_matmul(random_tensor({64, 8, 8}, dt, 39), random_tensor({64, 8, 8}, dt, 40));  // many small GEMMs in parallel
  }
}

TEST_CASE("core matmul: transposed, strided and expanded operands", "[core][matmul]") {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor a = random_tensor({7, 5}, dt, 41), b = random_tensor({6, 7}, dt, 42);
    check_matmul(a.t(), b.t());                             // [5, 7] @ [7, 6], both column-major
    check_matmul(a.t(), random_tensor({7, 3}, dt, 43));     // one transposed
    check_matmul(random_tensor({3, 6}, dt, 44), b);          // plain
    check_matmul(random_tensor({4, 6}, dt, 45), b.t().t());  // double transpose
    // Sliced with step in both dims: neither row- nor column-major.
    Tensor big = random_tensor({12, 15}, dt, 46);
    Tensor s1 = big.slice(0, 1, 12, 2).slice(1, 0, 15, 3);  // [6, 5], strides [30, 3]
    Tensor s2 = random_tensor({10, 8}, dt, 47).slice(0, 0, 10, 2).slice(1, 1, 8, 2);  // [5, 4], strides [16, 2]
    check_matmul(s1, s2);
    check_matmul(s2.t(), s1.t());
    // A column of a matrix as a 1-D operand (stride != 1), a row with column step.
    check_matmul(big.slice(1, 0, 15, 3).slice(0, 0, 5), big.select(1, 2).slice(0, 0, 5));
    check_matmul(big.select(0, 3).slice(0, 0, 15, 3), random_tensor({5, 2}, dt, 48));
    // Expanded operands (stride 0): rows repeated, columns repeated, batch broadcast.
    check_matmul(random_tensor({1, 4}, dt, 49).expand({3, 4}), random_tensor({4, 2}, dt, 50));
    check_matmul(random_tensor({3, 4}, dt, 51), random_tensor({4, 1}, dt, 52).expand({4, 5}));
    check_matmul(random_tensor({3, 1}, dt, 53).expand({3, 4}), random_tensor({1, 5}, dt, 54).expand({4, 5}));
    check_matmul(random_tensor({3, 4}, dt, 55).expand({2, 3, 4}), random_tensor({2, 4, 5}, dt, 56));
    // Batched transposed / permuted.
    check_matmul(random_tensor({2, 5, 3}, dt, 57).transpose(1, 2), random_tensor({2, 6, 5}, dt, 58).transpose(-1, -2));
    check_matmul(random_tensor({3, 4, 2}, dt, 59).permute({2, 1, 0}), random_tensor({2, 3, 5}, dt, 60));
    check_matmul(random_tensor({4, 2, 3}, dt, 61).permute({1, 0, 2}), random_tensor({3, 5}, dt, 62));
    // Large transposed (Eigen's threaded GEMM).
    check_matmul(random_tensor({150, 120}, dt, 63).t(), random_tensor({90, 150}, dt, 64).t());
  }
  // Overlapping rows through from_blob strides (a Hankel matrix: H[i][j] = h[i + j]).
  std::vector<double> h = {1, -2, 3, 0.5, -1, 4, 2, -3};
  Tensor hank = from_blob(h.data(), {4, 5}, kFloat64, Device::cpu(), {1, 1});
  check_matmul(hank, random_tensor({5, 3}, kFloat64, 65));
  check_matmul(random_tensor({2, 4}, kFloat64, 66), hank);
  Tensor cm = from_blob(h.data(), {2, 4}, kFloat64, Device::cpu(), {1, 2});  // column-major
  check_matmul(cm, random_tensor({4, 3}, kFloat64, 67));
}

TEST_CASE("core matmul: 0-size dims", "[core][matmul]") {
  // K = 0 gives zeros, M or N = 0 gives empty results.
  Tensor c = matmul(zeros({3, 0}), zeros({0, 4}));
  CHECK(c.shape() == Shape{3, 4});
  std::vector<float> v(c.data_ptr<float>(), c.data_ptr<float>() + 12);
  CHECK(v == std::vector<float>(12, 0.0f));
  CHECK(matmul(zeros({0, 3}), ones({3, 4})).shape() == Shape{0, 4});
  CHECK(matmul(ones({2, 3}), ones({3, 0})).shape() == Shape{2, 0});
  CHECK(matmul(zeros({0}), zeros({0})).item<float>() == 0.0f);
  CHECK(matmul(zeros({0, 2, 3}), zeros({3, 4})).shape() == Shape{0, 2, 4});
  CHECK(matmul(zeros({2, 0, 3}), zeros({2, 3, 4})).shape() == Shape{2, 0, 4});
  CHECK(bmm(zeros({0, 2, 3}), zeros({0, 3, 4})).shape() == Shape{0, 2, 4});
  CHECK(bmm(zeros({2, 3, 0}), zeros({2, 0, 4})).shape() == Shape{2, 3, 4});
  // Batched with K = 0 (batch folded into M) gives zeros too.
  Tensor bk = matmul(full({2, 3, 0}, 1.0), full({0, 4}, 1.0));
  CHECK(bk.shape() == Shape{2, 3, 4});
  CHECK(bk.sum().item<float>() == 0.0f);
  CHECK(matmul(zeros({2, 3, 0}), zeros({0})).shape() == Shape{2, 3});
  CHECK(matmul(zeros({0}), zeros({2, 0, 3})).shape() == Shape{2, 3});
}

TEST_CASE("core matmul: errors name the op and both shapes", "[core][matmul][errors]") {
  CHECK_THROWS_AS(matmul(ones({2, 3}), ones({4, 5})), ShapeError);
  CHECK_THROWS_WITH(matmul(ones({2, 3}), ones({4, 5})), Contains("matmul") && Contains("[2, 3]") && Contains("[4, 5]"));
  CHECK_THROWS_WITH(matmul(ones({3}), ones({4})), Contains("[3]") && Contains("[4]"));
  CHECK_THROWS_WITH(matmul(ones({2, 2, 3}), ones({2, 4, 5})), Contains("[2, 2, 3]") && Contains("[2, 4, 5]"));
  CHECK_THROWS_WITH(matmul(ones({5, 2, 3}), ones({4, 3, 5})), Contains("matmul") && Contains("[5, 2, 3]") && Contains("[4, 3, 5]"));
  CHECK_THROWS_AS(matmul(ones({5, 2, 3}), ones({4, 3, 5})), ShapeError);
  CHECK_THROWS_AS(matmul(scalar_tensor(1.0), ones({2})), ShapeError);
  CHECK_THROWS_AS(mm(ones({2, 3}), ones({2, 3})), ShapeError);
  CHECK_THROWS_WITH(mm(ones({2, 3}), ones({2, 3})), Contains("mm") && Contains("[2, 3]"));
  CHECK_THROWS_AS(mm(ones({2, 3, 1}), ones({1, 3})), ShapeError);
  CHECK_THROWS_AS(bmm(ones({2, 3, 4}), ones({3, 4, 5})), ShapeError);
  CHECK_THROWS_WITH(bmm(ones({2, 3, 4}), ones({3, 4, 5})), Contains("bmm") && Contains("[2, 3, 4]") && Contains("[3, 4, 5]"));
  CHECK_THROWS_AS(bmm(ones({3, 4}), ones({4, 5})), ShapeError);
  CHECK_THROWS_AS(matmul(ones({2, 3}), ones({3, 2}, kFloat64)), DTypeError);
  CHECK_THROWS_WITH(matmul(ones({2, 3}), ones({3, 2}, kFloat64)), Contains("float32") && Contains("float64"));
  CHECK_THROWS_AS(matmul(ones({2, 3}, kInt64), ones({3, 2}, kInt64)), DTypeError);
  CHECK_THROWS_AS(matmul(Tensor(), ones({2})), ValueError);
}
