// Multi-dimensional indexing (tessera/indexing.hpp): x.index({...}) with integers, Slice,
// None, Ellipsis, bools, integer tensors and masks; index_put / index_put_; masked_select;
// nonzero. References: values worked out by hand and NumPy's rules written as explicit
// float64 loops here; gradients by finite differences; every error's message.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/autograd/gradcheck.hpp"
#include "tessera/indexing.hpp"
#include "tessera/ops.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using namespace tessera::indexing;
using Catch::Matchers::Contains;
using tessera::testing::elem;
using tessera::testing::random_tensor;
using tessera::testing::values;
using V = std::vector<Tensor>;
using D = std::vector<double>;

namespace {

Tensor ints(const std::vector<int64_t>& v, const Shape& shape) { return from_vector<int64_t>(v, shape); }
Tensor ints(const std::vector<int64_t>& v) { return ints(v, {int64_t(v.size())}); }
Tensor f64(const std::vector<double>& v, const Shape& shape) { return from_vector<double>(v, shape); }
Tensor bools(const std::vector<bool>& v, const Shape& shape) {
  std::vector<double> d(v.begin(), v.end());
  return from_vector<double>(d, shape).to(kBool);
}
/// 0, 1, 2, ... as float64 of the shape.
Tensor iota(const Shape& shape) { return arange(0, double(shape_numel(shape)), 1, TensorOptions(kFloat64)).reshape(shape); }
int64_t at(const Tensor& idx, const std::vector<int64_t>& pos) { return int64_t(elem(idx, pos)); }

}  // namespace

TEST_CASE("basic indices are views: integers, Slice, None, Ellipsis", "[indexing]") {
  const Tensor x = iota({2, 3, 4});
  REQUIRE(values(x.index({1})) == values(x[1]));
  REQUIRE(values(x.index({-1, 2})) == D{20, 21, 22, 23});
  const Tensor col = x.index({Slice(), 1});  // x[:, 1]
  REQUIRE(col.shape() == Shape{2, 4});
  REQUIRE(values(col) == D{4, 5, 6, 7, 16, 17, 18, 19});
  // x[0, :, 1::2], x[0, -2:, :-1], x[0, 1:100], x[0, 5:10] (clamped as Python's slices)
  REQUIRE(values(x.index({0, Slice(), Slice(1, None, 2)})) == D{1, 3, 5, 7, 9, 11});
  REQUIRE(values(x.index({0, Slice(-2, None), Slice(None, -1)})) == D{4, 5, 6, 8, 9, 10});
  REQUIRE(x.index({0, Slice(1, 100)}).shape() == Shape{2, 4});
  REQUIRE(x.index({0, Slice(5, 10)}).shape() == Shape{0, 4});
  REQUIRE(x.index({Slice(-100, 1)}).shape() == Shape{1, 3, 4});
  // None adds a dim of size 1; Ellipsis (or "...") fills with full slices
  REQUIRE(x.index({None, 0, Ellipsis, None}).shape() == Shape{1, 3, 4, 1});
  REQUIRE(values(x.index({"...", 0})) == D{0, 4, 8, 12, 16, 20});
  REQUIRE(x.index({Ellipsis}).shape() == Shape{2, 3, 4});
  REQUIRE(x.index({1, Ellipsis, 2, None}).shape() == Shape{3, 1});
  REQUIRE(x.index({}).shape() == Shape{2, 3, 4});
  // a view: writing through it writes x
  Tensor y = iota({2, 3, 4});
  y.index({1, Slice(0, 2), Slice(None, None, 3)}).fill_(-1);
  REQUIRE(elem(y, {1, 0, 0}) == -1);
  REQUIRE(elem(y, {1, 1, 3}) == -1);
  REQUIRE(elem(y, {1, 0, 1}) == 13);
  REQUIRE(elem(y, {1, 2, 0}) == 20);
  REQUIRE(elem(y, {0, 0, 0}) == 0);
}

TEST_CASE("integer-tensor indices: negatives, int32, shapes of the index, one dim", "[indexing]") {
  const Tensor x = iota({3, 4});
  REQUIRE(values(x[ints({2, 0, -1})]) == D{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  REQUIRE(values(x.index({from_vector<int32_t>({1})})) == D{4, 5, 6, 7});
  // a [2, 2] index on dim 1: [3, 2, 2], out[i][a][b] = x[i][idx[a][b]]
  const Tensor idx = ints({3, 0, 0, -2}, {2, 2});
  const Tensor out = x.index({Slice(), idx});
  REQUIRE(out.shape() == Shape{3, 2, 2});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 2; ++b) {
        int64_t j = at(idx, {a, b});
        if (j < 0) j += 4;
        REQUIRE(elem(out, {i, a, b}) == elem(x, {i, j}));
      }
  // a 0-dim index removes the dim (a copy, as x[torch.tensor(1)])
  const Tensor s = x.index({Slice(), scalar_tensor(2, TensorOptions(kInt64))});
  REQUIRE(s.shape() == Shape{3});
  REQUIRE(values(s) == D{2, 6, 10});
  // an empty index gives an empty dim; the caller's index is not modified by the wrap
  REQUIRE(x.index({ints({})}).shape() == Shape{0, 4});
  const Tensor neg = ints({-1});
  (void)x.index({neg});
  REQUIRE(values(neg) == D{-1});
}

TEST_CASE("several advanced indices broadcast; adjacent stay in place, separated go first", "[indexing]") {
  const Tensor x = random_tensor({3, 4, 5}, kFloat64);
  const Tensor i0 = ints({2, 0}, {2, 1});  // broadcasts with i1 [3] to B = [2, 3]
  const Tensor i1 = ints({1, -1, 3}, {3});
  auto w = [](int64_t v, int64_t n) { return v < 0 ? v + n : v; };
  SECTION("adjacent, first: x[i0, i1] -> [2, 3, 5]") {
    const Tensor out = x.index({i0, i1});
    REQUIRE(out.shape() == Shape{2, 3, 5});
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t k = 0; k < 5; ++k)
          REQUIRE(elem(out, {a, b, k}) == elem(x, {at(i0, {a, 0}), w(at(i1, {b}), 4), k}));
  }
  SECTION("adjacent, after a slice: x[:, i0, i1] -> [3, 2, 3]") {
    const Tensor out = x.index({Slice(), i0, i1});
    REQUIRE(out.shape() == Shape{3, 2, 3});
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t a = 0; a < 2; ++a)
        for (int64_t b = 0; b < 3; ++b)
          REQUIRE(elem(out, {i, a, b}) == elem(x, {i, at(i0, {a, 0}), w(at(i1, {b}), 5)}));
  }
  SECTION("separated by a slice: x[i0, :, i1] -> [2, 3, 4] (B first)") {
    const Tensor out = x.index({i0, Slice(), i1});
    REQUIRE(out.shape() == Shape{2, 3, 4});
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t j = 0; j < 4; ++j)
          REQUIRE(elem(out, {a, b, j}) == elem(x, {at(i0, {a, 0}), j, w(at(i1, {b}), 5)}));
  }
  SECTION("an integer between them is applied first (libtorch): x[:, i0, 0] and x4[:, i0, 1, i1]") {
    REQUIRE(values(x.index({Slice(), ints({3, 1}), 0})) ==
            D{elem(x, {0, 3, 0}), elem(x, {0, 1, 0}), elem(x, {1, 3, 0}), elem(x, {1, 1, 0}), elem(x, {2, 3, 0}),
              elem(x, {2, 1, 0})});
    // x[0, :, idx] keeps idx in place, as PyTorch (NumPy would put it first: [3, 4])
    const Tensor sep = x.index({0, Slice(), ints({4, 1, 0})});
    REQUIRE(sep.shape() == Shape{4, 3});
    REQUIRE(elem(sep, {2, 0}) == elem(x, {0, 2, 4}));
    const Tensor x4 = random_tensor({2, 3, 4, 5}, kFloat64);
    const Tensor out = x4.index({Slice(), i0, 1, i1});
    REQUIRE(out.shape() == Shape{2, 2, 3});
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t a = 0; a < 2; ++a)
        for (int64_t b = 0; b < 3; ++b)
          REQUIRE(elem(out, {n, a, b}) == elem(x4, {n, at(i0, {a, 0}), 1, w(at(i1, {b}), 5)}));
  }
  SECTION("three indices on a strided (transposed) input") {
    const Tensor xt = x.permute({2, 0, 1});  // [5, 3, 4]
    const Tensor a = ints({4, 0, 2}), b = ints({1, 1, 2}), c = ints({3, 0, -4});
    const Tensor out = xt.index({a, b, c});
    REQUIRE(out.shape() == Shape{3});
    for (int64_t k = 0; k < 3; ++k)
      REQUIRE(elem(out, {k}) == elem(x, {at(b, {k}), w(at(c, {k}), 4), at(a, {k})}));
  }
}

TEST_CASE("boolean masks, bools and 0-dim bool tensors", "[indexing]") {
  const Tensor x = iota({2, 3, 2});
  const Tensor m = bools({true, false, true, false, false, true}, {2, 3});
  const Tensor out = x.index({m});  // the rows (0,0), (0,2), (1,2): [3, 2]
  REQUIRE(out.shape() == Shape{3, 2});
  REQUIRE(values(out) == D{0, 1, 4, 5, 10, 11});
  // a 1-D mask on dim 1, and mask with an integer tensor
  REQUIRE(values(x.index({Slice(), bools({false, true, true}, {3}), 0})) == D{2, 4, 8, 10});
  REQUIRE(values(x.index({ints({1}), bools({true, false, false}, {3})})) == D{6, 7});
  // x[x > 6]
  REQUIRE(values(x.index({gt(x, 6.0)})) == D{7, 8, 9, 10, 11});
  REQUIRE(x.index({gt(x, 100.0)}).shape() == Shape{0});
  // true / false add a dim of size 1 / 0, as PyTorch
  REQUIRE(x.index({true}).shape() == Shape{1, 2, 3, 2});
  REQUIRE(x.index({false}).shape() == Shape{0, 2, 3, 2});
  REQUIRE(x.index({1, true, 0}).shape() == Shape{1, 2});
  REQUIRE(x.index({scalar_tensor(1, TensorOptions(kBool))}).shape() == Shape{1, 2, 3, 2});
  REQUIRE(x.index({scalar_tensor(0, TensorOptions(kBool))}).shape() == Shape{0, 2, 3, 2});
}

TEST_CASE("masked_select broadcasts; nonzero and argwhere list coordinates row-major", "[indexing]") {
  const Tensor x = iota({2, 3});
  REQUIRE(values(masked_select(x, bools({true, false, true}, {3}))) == D{0, 2, 3, 5});
  REQUIRE(values(x.masked_select(bools({false, true}, {2, 1}))) == D{3, 4, 5});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor z = f64({0, 1.5, nan, 0, -0.0, 2}, {2, 3});
  const Tensor nz = nonzero(z);  // NaN is nonzero, -0.0 is zero
  REQUIRE(nz.dtype() == kInt64);
  REQUIRE(nz.shape() == Shape{3, 2});
  REQUIRE(values(nz) == D{0, 1, 0, 2, 1, 2});
  REQUIRE(values(z.argwhere()) == values(nz));
  REQUIRE(values(bools({false, true, true, false}, {4}).nonzero()) == D{1, 2});
  REQUIRE(nonzero(scalar_tensor(3.0)).shape() == Shape{1, 0});
  REQUIRE(nonzero(scalar_tensor(0.0)).shape() == Shape{0, 0});
  REQUIRE(nonzero(zeros({0, 4})).shape() == Shape{0, 2});
  // index with nonzero's columns == index with the mask
  const Tensor y = random_tensor({3, 4}, kFloat64);
  const Tensor mask = gt(y, 0.0);
  const Tensor c = nonzero(mask);
  REQUIRE(values(y.index({c.select(1, 0), c.select(1, 1)})) == values(y.index({mask})));
}

TEST_CASE("index_put_ writes in place: scalars, broadcast values, masks, accumulate", "[indexing]") {
  Tensor x = iota({3, 4});
  x.index_put_({Slice(), 0}, 5.0);  // x[:, 0] = 5
  REQUIRE(values(x.index({Slice(), 0})) == D{5, 5, 5});
  x.index_put_({1}, f64({-1, -2, -3, -4}, {4}));  // x[1] = [...]
  REQUIRE(values(x[1]) == D{-1, -2, -3, -4});
  x.index_put_({ints({0, 2}), Slice(2)}, f64({7, 8}, {2}));  // x[[0, 2], 2:] = [7, 8] (broadcast rows)
  REQUIRE(values(x) == D{5, 1, 7, 8, -1, -2, -3, -4, 5, 9, 7, 8});
  x.index_put_({lt(x, 0.0)}, 0.0);  // x[x < 0] = 0
  REQUIRE(values(x[1]) == D{0, 0, 0, 0});
  // duplicates: added up with accumulate, refused without it (PyTorch's result is undefined)
  Tensor acc = zeros({4});
  acc.index_put_({ints({1, 3, 1, 1})}, ones({4}), /*accumulate=*/true);
  REQUIRE(values(acc) == D{0, 3, 0, 1});
  acc.index_put_({Slice(0, 2)}, f64({10, 20}, {2}), true);
  REQUIRE(values(acc) == D{10, 23, 0, 1});
  REQUIRE_THROWS_WITH(acc.index_put_({ints({2, 0, 2})}, f64({1, 2, 3}, {3})),
                      Contains("index_put") && Contains("element [2]") && Contains("more than once") &&
                          Contains("accumulate"));
  REQUIRE(values(acc) == D{10, 23, 0, 1});  // unchanged by the refused write
  acc.index_put_({ints({2, 0, 2})}, -1.0);      // one value: duplicates are harmless
  REQUIRE(values(acc) == D{-1, 23, -1, 1});
  // dtypes: values cast to x's dtype; bool and int64 tensors
  Tensor b = zeros({2, 2}, TensorOptions(kBool));
  b.index_put_({ints({1}), ints({0})}, 1.0);
  REQUIRE(values(b) == D{0, 0, 1, 0});
  b.index_put_({bools({true, false, false, true}, {2, 2})}, ones({2}, TensorOptions(kBool)));
  REQUIRE(values(b) == D{1, 0, 1, 1});
  Tensor n = zeros({3}, TensorOptions(kInt64));
  n.index_put_({ints({2, 0})}, f64({7, -4}, {2}));
  REQUIRE(n.dtype() == kInt64);
  REQUIRE(values(n) == D{-4, 0, 7});
  // a strided destination (a transposed view) written through
  Tensor base = zeros({2, 3});
  Tensor t = base.t();  // [3, 2]
  t.index_put_({ints({2, 0}), 1}, f64({1, 2}, {2}));
  REQUIRE(values(base) == D{0, 0, 0, 2, 0, 1});
}

TEST_CASE("index_put (out of place) leaves x alone and matches a float64 loop", "[indexing]") {
  const Tensor x = random_tensor({4, 3, 2}, kFloat64);
  const Tensor i = ints({3, 0}), j = ints({2, 1});
  const Tensor v = random_tensor({2, 2}, kFloat64);  // x[i, j] has shape [2, 2]
  const Tensor before = x.clone();
  const Tensor y = index_put(x, {i, j}, v);
  REQUIRE(values(x) == values(before));
  for (int64_t a = 0; a < 4; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t c = 0; c < 2; ++c) {
        double want = elem(x, {a, b, c});
        for (int64_t k = 0; k < 2; ++k)
          if (a == at(i, {k}) && b == at(j, {k})) want = elem(v, {k, c});
        REQUIRE(elem(y, {a, b, c}) == want);
      }
  const Tensor acc = x.index_put({ints({1, 1})}, ones({3, 2}, TensorOptions(kFloat64)), true);
  REQUIRE(elem(acc, {1, 2, 1}) == elem(x, {1, 2, 1}) + 2);
  REQUIRE(elem(acc, {0, 2, 1}) == elem(x, {0, 2, 1}));
  REQUIRE(values(index_put(x, {ints({})}, 3.0)) == values(x));
}

TEST_CASE("indexing gradients: index, index_put and masked_select gradcheck", "[indexing][gradcheck]") {
  const Tensor i0 = ints({2, 0, 2}), i1 = ints({1, -1, 1});
  REQUIRE(gradcheck([&](const V& v) { return v[0].index({i0, Slice(), i1}); }, {random_tensor({3, 2, 4}, kFloat64, true)}));
  REQUIRE(gradcheck([&](const V& v) { return v[0].index({Slice(1), None, i1, "..."}); },
                    {random_tensor({3, 4, 2}, kFloat64, true)}));
  const Tensor m = bools({true, false, true, true, false, false}, {2, 3});
  REQUIRE(gradcheck([&](const V& v) { return v[0].index({m}); }, {random_tensor({2, 3, 2}, kFloat64, true)}));
  REQUIRE(gradcheck([&](const V& v) { return masked_select(v[0], m.select(0, 0)); },
                    {random_tensor({2, 3}, kFloat64, true)}));
  REQUIRE(gradcheck([&](const V& v) { return index_put(v[0], {Slice(), ints({2, 0})}, v[1]); },
                    {random_tensor({2, 3}, kFloat64, true), random_tensor({2}, kFloat64, true)}));
  REQUIRE(gradcheck([&](const V& v) { return index_put(v[0], {ints({1, 0, 1})}, v[1], true); },
                    {random_tensor({2, 3}, kFloat64, true), random_tensor({3, 3}, kFloat64, true)}));
  const Tensor m33 = bools({true, false, false, true, true, false, false, false, true}, {3, 3});
  REQUIRE(gradcheck([&](const V& v) { return index_put(v[0], {m33}, -2.0); }, {random_tensor({3, 3}, kFloat64, true)}));
  // by hand: x[idx] with a duplicate sums the gradient; written positions get none
  Tensor x = zeros({4}, TensorOptions(kFloat64).with_requires_grad());
  sum(x.index({ints({3, 1, 3})})).backward();
  REQUIRE(values(x.grad()) == D{0, 1, 0, 2});
  Tensor w = zeros({4}, TensorOptions(kFloat64).with_requires_grad());
  sum(index_put(w, {ints({0, 2})}, 1.0)).backward();
  REQUIRE(values(w.grad()) == D{0, 1, 0, 1});
}

TEST_CASE("indexing errors name the op, the index, the dim and the sizes", "[indexing][errors]") {
  const Tensor x = iota({2, 3});
  REQUIRE_THROWS_AS(x.index({0, 5}), IndexError);
  REQUIRE_THROWS_WITH(x.index({0, 5}), Contains("index: index 5 is out of bounds for dim 1 with size 3"));
  REQUIRE_THROWS_WITH(x.index({-3}), Contains("index -3 is out of bounds for dim 0 with size 2"));
  REQUIRE_THROWS_AS(x.index({Slice(), ints({0, 3})}), IndexError);
  REQUIRE_THROWS_WITH(x.index({Slice(), ints({0, 3})}),
                      Contains("index 3 (element 1 of the index tensor at position 1) is out of bounds for dim 1 "
                               "with size 3"));
  REQUIRE_THROWS_WITH(x.index({ints({-3})}), Contains("index -3") && Contains("dim 0 with size 2"));
  REQUIRE_THROWS_AS(x.index({0, 0, 0}), IndexError);
  REQUIRE_THROWS_WITH(x.index({0, 0, 0}), Contains("too many indices for a tensor of dimension 2"));
  REQUIRE_THROWS_WITH(x.index({bools({true, false}, {2}), 0, 0}), Contains("too many indices"));
  REQUIRE_THROWS_WITH(x.index({Ellipsis, "..."}), Contains("single ellipsis"));
  REQUIRE_THROWS_AS(x.index({Slice(None, None, -1)}), ValueError);
  REQUIRE_THROWS_WITH(x.index({Slice(None, None, -1)}), Contains("slice None:None:-1") && Contains("positive"));
  REQUIRE_THROWS_AS(TensorIndex("::"), ValueError);
  REQUIRE_THROWS_AS(x.index({f64({0}, {1})}), DTypeError);
  REQUIRE_THROWS_WITH(x.index({f64({0}, {1})}), Contains("must be int64 or int32 (or a bool mask), got float64"));
  REQUIRE_THROWS_AS(x.index({ints({0, 1}), ints({0, 1, 2})}), ShapeError);
  REQUIRE_THROWS_WITH(x.index({ints({0, 1}), ints({0, 1, 2})}),
                      Contains("could not be broadcast together with shapes [2], [3]"));
  REQUIRE_THROWS_AS(x.index({bools({true, false, true}, {3})}), IndexError);
  REQUIRE_THROWS_WITH(x.index({bools({true, false, true}, {3})}),
                      Contains("the shape of the mask [3] at position 0 does not match the shape [2]"));
  REQUIRE_THROWS_AS(x.index({Tensor()}), ValueError);
  Tensor y = iota({2, 3});
  REQUIRE_THROWS_AS(y.index_put_({ints({0})}, ones({2})), ShapeError);
  REQUIRE_THROWS_WITH(y.index_put_({ints({0})}, ones({2})),
                      Contains("values of shape [2] cannot be broadcast to the indexing result of shape [1, 3]"));
  REQUIRE_THROWS_WITH(y.index_put_({0}, ones({2})), Contains("cannot be broadcast"));
  Tensor leaf = zeros({3}, TensorOptions(kFloat64).with_requires_grad());
  REQUIRE_THROWS_AS(leaf.index_put_({0}, 1.0), AutogradError);
  REQUIRE_THROWS_WITH(leaf.index_put_({ints({0})}, 1.0), Contains("index_put_") && Contains("NoGradGuard"));
  REQUIRE_THROWS_WITH(y.index_put_({0}, zeros({3}, TensorOptions(kFloat64).with_requires_grad())),
                      Contains("values of shape [3] require grad"));
  {
    NoGradGuard no_grad;
    leaf.index_put_({ints({1})}, 4.0);
  }
  REQUIRE(values(leaf) == D{0, 4, 0});
  REQUIRE_THROWS_AS(masked_select(x, ones({3})), DTypeError);
  REQUIRE_THROWS_AS(masked_select(x, bools({true, false}, {2})), ShapeError);
}
