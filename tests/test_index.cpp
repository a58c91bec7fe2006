// Indexing ops (embedding, index_select, gather, scatter_add, index_add, masked_fill,
// tril/triu, topk, multinomial), cross_entropy's ignore_index / label_smoothing / [N, C, d],
// gelu(approximate="tanh"), clip_grad_norm_ and nn::Embedding: hand-worked values (several
// from PyTorch's documentation examples), float64 references computed here, gradcheck, and
// the errors for bad inputs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/autograd/gradcheck.hpp"
#include "tessera/nn/nn.hpp"
#include "tessera/ops.hpp"
#include "tessera/random.hpp"
#include "tensor_testing.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
using tessera::testing::random_tensor;
using tessera::testing::values;
using tessera::testing::values_of;
using V = std::vector<Tensor>;
using D = std::vector<double>;

namespace {

Tensor ints(const std::vector<int64_t>& v, const Shape& shape) { return from_vector<int64_t>(v, shape); }
Tensor ints(const std::vector<int64_t>& v) { return ints(v, {int64_t(v.size())}); }
Tensor f64(const std::vector<double>& v, const Shape& shape) { return from_vector<double>(v, shape); }
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
const double kPi = 3.14159265358979323846;

}  // namespace

// ---- embedding -------------------------------------------------------------------------------

TEST_CASE("embedding looks up rows; duplicates accumulate and the padding row gets no gradient", "[index]") {
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor w = f64({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2}).to(dt);
    w.requires_grad_(true);
    const Tensor idx = ints({3, 0, 3, 1, 2, 0}, {2, 3});
    Tensor y = embedding(w, idx, 0);
    REQUIRE(y.shape() == Shape{2, 3, 2});
    REQUIRE(y.dtype() == dt);
    REQUIRE(values(y) == D{30, 31, 0, 1, 30, 31, 10, 11, 20, 21, 0, 1});
    y.backward(ones({2, 3, 2}, TensorOptions(dt)));
    // row 3 twice, rows 1 and 2 once, row 0 (padding) none although indexed twice
    REQUIRE(values(w.grad()) == D{0, 0, 1, 1, 1, 1, 2, 2});
  }
  // int32 indices, a 0-dim index, a negative padding_idx (counts from the end)
  const Tensor w = f64({0, 1, 10, 11, 20, 21}, {3, 2});
  REQUIRE(values(embedding(w, from_vector<int32_t>({2, 1}))) == D{20, 21, 10, 11});
  REQUIRE(embedding(w, scalar_tensor(1, TensorOptions(kInt64))).shape() == Shape{2});
  Tensor wg = w.clone();
  wg.requires_grad_(true);
  embedding(wg, ints({2, 2, 1}), -1).sum().backward();
  REQUIRE(values(wg.grad()) == D{0, 0, 1, 1, 0, 0});
  // strided weight (a transposed view)
  const Tensor wt = f64({0, 10, 20, 1, 11, 21}, {2, 3}).t();
  REQUIRE(values(embedding(wt, ints({1, 2}))) == D{10, 11, 20, 21});
}

TEST_CASE("embedding gradcheck with repeated indices and padding", "[index][gradcheck]") {
  manual_seed(901);
  const Tensor idx = ints({4, 1, 1, 0, 4, 2, 1, 3}, {2, 4});
  REQUIRE(gradcheck([idx](const V& v) { return embedding(v[0], idx); }, {random_tensor({5, 3}, kFloat64, true)}));
  // With padding_idx the gradient is the same except the padding row's, which is 0 by design
  // (so not what finite differences see).
  const Tensor w = random_tensor({5, 3}, kFloat64), gy = random_tensor({2, 4, 3}, kFloat64);
  Tensor a = w.clone(), b = w.clone();
  a.requires_grad_(true);
  b.requires_grad_(true);
  embedding(a, idx).backward(gy);
  embedding(b, idx, 1).backward(gy);
  auto want = values(a.grad());
  std::fill(want.begin() + 3, want.begin() + 6, 0.0);
  REQUIRE(values(b.grad()) == want);
}

TEST_CASE("embedding errors name the index, its position and the table size", "[index][errors]") {
  const Tensor w = randn({4, 3});
  REQUIRE_THROWS_AS(embedding(w, ints({0, 1, 2, 4})), IndexError);
  REQUIRE_THROWS_WITH(embedding(w, ints({0, 1, 2, 4})),
                      Contains("embedding: index 4 at position 3") && Contains("table of 4 embeddings") &&
                          Contains("[0, 4)"));
  REQUIRE_THROWS_WITH(embedding(w, ints({0, -1}, {1, 2})), Contains("index -1 at position 1"));
  REQUIRE_THROWS_AS(embedding(w, randn({3})), DTypeError);
  REQUIRE_THROWS_WITH(embedding(ints({1, 2}), w), Contains("embedding(weight, indices)"));
  REQUIRE_THROWS_AS(embedding(randn({4}), ints({0})), ShapeError);
  REQUIRE_THROWS_WITH(embedding(randn({4}), ints({0})), Contains("[num_embeddings, embedding_dim]") && Contains("[4]"));
  REQUIRE_THROWS_AS(embedding(w, ints({0}), 4), ValueError);
  REQUIRE_THROWS_WITH(embedding(w, ints({0}), -5), Contains("padding_idx -5") && Contains("[-4, 4)"));
  REQUIRE_THROWS_AS(embedding(w, from_vector<uint8_t>({0})), DTypeError);
}

TEST_CASE("nn::Embedding: N(0, 1) init with the padding row zeroed, registered weight, no padding gradient",
          "[index][nn]") {
  manual_seed(902);
  nn::Embedding emb(200, 50, 7);
  REQUIRE(emb->weight.shape() == Shape{200, 50});
  REQUIRE(emb->weight.requires_grad());
  const auto named = emb->named_parameters();
  REQUIRE(named.size() == 1);
  REQUIRE(named[0].first == "weight");
  REQUIRE(emb->state_dict().count("weight") == 1);
  const auto wv = values(emb->weight);
  double s = 0, s2 = 0;
  for (std::size_t i = 0; i < wv.size(); ++i) {
    if (i / 50 == 7) {
      REQUIRE(wv[i] == 0.0);
      continue;
    }
    s += wv[i];
    s2 += wv[i] * wv[i];
  }
  const double n = double(wv.size() - 50), mean = s / n, var = s2 / n - mean * mean;
  CHECK(std::abs(mean) < 0.05);  // 9950 draws: sd of the mean 0.01
  CHECK(std::abs(var - 1.0) < 0.1);
  Tensor y = emb(ints({7, 3, 7}));
  REQUIRE(y.shape() == Shape{3, 50});
  y.sum().backward();
  const auto g = values(emb->weight.grad());
  REQUIRE(std::all_of(g.begin() + 7 * 50, g.begin() + 8 * 50, [](double v) { return v == 0.0; }));
  REQUIRE(std::all_of(g.begin() + 3 * 50, g.begin() + 4 * 50, [](double v) { return v == 1.0; }));
  CHECK(emb->extra_repr() == "200, 50, padding_idx=7");
  REQUIRE(nn::Embedding(5, 2, -1)->options.padding_idx_ == 4);
  REQUIRE_THROWS_AS(nn::Embedding(0, 3), ValueError);
  REQUIRE_THROWS_AS(nn::Embedding(3, 2, 3), ValueError);
}

// ---- index_select, gather ---------------------------------------------------------------------

TEST_CASE("index_select: hand-worked values, negative dim, duplicates, strided input", "[index]") {
  const Tensor x = f64({0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23}, {3, 4});
  REQUIRE(values(index_select(x, 0, ints({2, 0, 2}))) == D{20, 21, 22, 23, 0, 1, 2, 3, 20, 21, 22, 23});
  const Tensor cols = index_select(x, -1, from_vector<int32_t>({3, 1}));
  REQUIRE(cols.shape() == Shape{3, 2});
  REQUIRE(values(cols) == D{3, 1, 13, 11, 23, 21});
  REQUIRE(values(index_select(x.t(), 1, ints({1}))) == D{10, 11, 12, 13});
  REQUIRE(index_select(x, 0, ints({})).shape() == Shape{0, 4});
  REQUIRE(index_select(x, 1, scalar_tensor(2, TensorOptions(kInt64))).shape() == Shape{3, 1});
  // integer and bool inputs
  REQUIRE(values(index_select(x.to(kInt32), 1, ints({0, 0}))) == D{0, 0, 10, 10, 20, 20});
  REQUIRE(values(index_select(gt(x, 11.0), 1, ints({2}))) == D{0, 1, 1});
  // gradient: duplicated rows accumulate
  Tensor xg = x.clone();
  xg.requires_grad_(true);
  index_select(xg, 0, ints({2, 0, 2})).sum().backward();
  REQUIRE(values(xg.grad()) == D{1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2, 2});
  manual_seed(903);
  for (int64_t dim : {0, 1, -1}) {
    REQUIRE(gradcheck([dim](const V& v) { return index_select(v[0], dim, ints({1, 0, 1, 2})); },
                      {random_tensor({3, 3, 3}, kFloat64, true)}));
  }
}

TEST_CASE("gather: PyTorch's example, smaller index, gradcheck", "[index]") {
  // torch.gather(torch.tensor([[1, 2], [3, 4]]), 1, torch.tensor([[0, 0], [1, 0]])) = [[1, 1], [4, 3]]
  const Tensor t = f64({1, 2, 3, 4}, {2, 2});
  REQUIRE(values(gather(t, 1, ints({0, 0, 1, 0}, {2, 2}))) == D{1, 1, 4, 3});
  REQUIRE(values(gather(t, 0, ints({1, 0}, {1, 2}))) == D{3, 2});
  REQUIRE(values(gather(t, -1, ints({1, 1, 1}, {1, 3}))) == D{2, 2, 2});  // index longer along dim
  REQUIRE(values(gather(t.t(), 1, ints({1, 0}, {2, 1}))) == D{3, 2});
  REQUIRE(values(gather(t.to(kInt64), 1, ints({1, 0}, {2, 1}))) == D{2, 3});
  manual_seed(904);
  const Tensor idx = ints({2, 0, 2, 1, 1, 1, 0, 0}, {2, 4});
  REQUIRE(gradcheck([idx](const V& v) { return gather(v[0], 1, idx); }, {random_tensor({3, 3}, kFloat64, true)}));
  REQUIRE(gradcheck([](const V& v) { return gather(v[0], 0, ints({0, 0, 1, 0, 1, 1}, {3, 2})); },
                    {random_tensor({2, 4}, kFloat64, true)}));
}

TEST_CASE("index_select and gather errors name op, shapes, dtypes and the bad index", "[index][errors]") {
  const Tensor x = randn({3, 4});
  REQUIRE_THROWS_AS(index_select(x, 1, ints({0, 4})), IndexError);
  REQUIRE_THROWS_WITH(index_select(x, 1, ints({0, 4})),
                      Contains("index_select: index 4 at position 1 is out of bounds for dim 1 with size 4"));
  REQUIRE_THROWS_WITH(index_select(x, 0, ints({-1})), Contains("index -1 at position 0"));
  REQUIRE_THROWS_AS(index_select(x, 2, ints({0})), IndexError);
  REQUIRE_THROWS_AS(index_select(x, 0, ints({0, 1}, {1, 2})), ShapeError);
  REQUIRE_THROWS_WITH(index_select(x, 0, ints({0, 1}, {1, 2})), Contains("1-D") && Contains("[1, 2]"));
  REQUIRE_THROWS_AS(index_select(x, 0, randn({2})), DTypeError);
  REQUIRE_THROWS_WITH(index_select(x, 0, randn({2})), Contains("index_select") && Contains("float32"));
  REQUIRE_THROWS_AS(index_select(scalar_tensor(1.0), 0, ints({0})), ShapeError);
  REQUIRE_THROWS_AS(gather(x, 1, ints({0, 5}, {1, 2})), IndexError);
  REQUIRE_THROWS_WITH(gather(x, 1, ints({0, 1, 5, 2}, {2, 2})),
                      Contains("gather: index 5 at position 2 is out of bounds for dim 1 with size 4"));
  REQUIRE_THROWS_AS(gather(x, 1, ints({0, 1})), ShapeError);
  REQUIRE_THROWS_WITH(gather(x, 1, ints({0, 1})), Contains("as many dims") && Contains("[3, 4]"));
  REQUIRE_THROWS_AS(gather(x, 1, ints({0, 0, 0, 0, 0}, {5, 1})), ShapeError);
  REQUIRE_THROWS_WITH(gather(x, 1, ints({0, 0, 0, 0, 0}, {5, 1})), Contains("[5, 1]") && Contains("dim 0"));
  REQUIRE_THROWS_AS(gather(x, 1, from_vector<int32_t>({0, 1}, {1, 2})), DTypeError);
  REQUIRE_THROWS_WITH(gather(x, 1, from_vector<int32_t>({0, 1}, {1, 2})), Contains("int64") && Contains("int32"));
}

// ---- scatter_add, index_add ------------------------------------------------------------------

TEST_CASE("scatter_add: PyTorch's example, duplicates accumulate, gradients to input and src", "[index]") {
  // torch.zeros(3, 5).scatter_add_(0, torch.tensor([[0, 1, 2, 0, 0]]), torch.ones(2, 5))
  //   = [[1, 0, 0, 1, 1], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]
  REQUIRE(values(scatter_add(zeros({3, 5}), 0, ints({0, 1, 2, 0, 0}, {1, 5}), ones({2, 5}))) ==
          D{1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0});
  // ... and with index [[0, 1, 2, 0, 0], [0, 1, 2, 2, 2]]: [[2, 0, 0, 1, 1], [0, 2, 0, 0, 0], [0, 0, 2, 1, 1]]
  REQUIRE(values(scatter_add(zeros({3, 5}), 0, ints({0, 1, 2, 0, 0, 0, 1, 2, 2, 2}, {2, 5}), ones({2, 5}))) ==
          D{2, 0, 0, 1, 1, 0, 2, 0, 0, 0, 0, 0, 2, 1, 1});
  // along the last dim, into a non-zero integer input (not modified)
  const Tensor base = ints({1, 1, 1, 1, 1, 1}, {2, 3});
  REQUIRE(values(scatter_add(base, -1, ints({2, 2, 0, 1}, {2, 2}), ints({5, 6, 7, 8}, {2, 2}))) ==
          D{1, 1, 12, 8, 9, 1});
  REQUIRE(values(base) == D{1, 1, 1, 1, 1, 1});
  // gradients: the input's is the output's, src's is gather(grad): 0 outside index's extent
  Tensor x = zeros({3, 2}, TensorOptions(kFloat64)), src = ones({2, 3}, TensorOptions(kFloat64));
  x.requires_grad_(true);
  src.requires_grad_(true);
  const Tensor g = f64({1, 2, 3, 4, 5, 6}, {3, 2});
  scatter_add(x, 0, ints({2, 0}, {1, 2}), src).backward(g);
  REQUIRE(values(x.grad()) == D{1, 2, 3, 4, 5, 6});
  REQUIRE(values(src.grad()) == D{5, 2, 0, 0, 0, 0});
  manual_seed(905);
  const Tensor idx = ints({1, 1, 0, 2, 1, 1}, {2, 3});
  REQUIRE(gradcheck([idx](const V& v) { return scatter_add(v[0], 1, idx, v[1]); },
                    {random_tensor({2, 4}, kFloat64, true), random_tensor({3, 3}, kFloat64, true)}));
}

TEST_CASE("index_add: PyTorch's example, alpha, duplicates, gradcheck", "[index]") {
  // torch.ones(5, 3).index_add_(0, torch.tensor([0, 4, 2]), torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9.]]))
  //   = [[2, 3, 4], [1, 1, 1], [8, 9, 10], [1, 1, 1], [5, 6, 7]]
  const Tensor t = f64({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
  REQUIRE(values(index_add(ones({5, 3}, TensorOptions(kFloat64)), 0, ints({0, 4, 2}), t)) ==
          D{2, 3, 4, 1, 1, 1, 8, 9, 10, 1, 1, 1, 5, 6, 7});
  // duplicates accumulate; alpha scales; a negative dim; int32 index
  REQUIRE(values(index_add(zeros({2, 3}, TensorOptions(kFloat64)), -1, from_vector<int32_t>({1, 1, 0}),
                           f64({1, 2, 3, 4, 5, 6}, {2, 3}), 0.5)) == D{1.5, 1.5, 0, 3, 4.5, 0});
  REQUIRE(values(index_add(ints({0, 0}), 0, ints({1, 1, 1}), ints({1, 2, 3}), 2)) == D{0, 12});
  Tensor x = zeros({4, 2}, TensorOptions(kFloat64)), s = ones({3, 2}, TensorOptions(kFloat64));
  x.requires_grad_(true);
  s.requires_grad_(true);
  index_add(x, 0, ints({3, 3, 1}), s, -2.0).backward(f64({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2}));
  REQUIRE(values(x.grad()) == D{1, 2, 3, 4, 5, 6, 7, 8});
  REQUIRE(values(s.grad()) == D{-14, -16, -14, -16, -6, -8});
  manual_seed(906);
  for (int64_t dim : {0, 1, -1}) {
    Shape src_shape{2, 3, 2};
    src_shape[std::size_t(dim < 0 ? dim + 3 : dim)] = 3;  // the index's length
    REQUIRE(gradcheck([dim](const V& v) { return index_add(v[0], dim, ints({1, 0, 1}), v[1], 1.5); },
                      {random_tensor({2, 3, 2}, kFloat64, true), random_tensor(src_shape, kFloat64, true)}));
  }
}

TEST_CASE("scatter_add and index_add errors", "[index][errors]") {
  const Tensor x = zeros({3, 4});
  REQUIRE_THROWS_AS(scatter_add(x, 0, ints({3}, {1, 1}), ones({1, 1})), IndexError);
  REQUIRE_THROWS_WITH(scatter_add(x, 0, ints({0, 3}, {1, 2}), ones({1, 2})),
                      Contains("scatter_add: index 3 at position 1 is out of bounds for dim 0 with size 3"));
  REQUIRE_THROWS_AS(scatter_add(x, 0, ints({0}, {1, 1}), ones({1, 1}, TensorOptions(kFloat64))), DTypeError);
  REQUIRE_THROWS_WITH(scatter_add(x, 0, ints({0}, {1, 1}), ones({1, 1}, TensorOptions(kFloat64))),
                      Contains("src has dtype float64") && Contains("float32"));
  REQUIRE_THROWS_AS(scatter_add(x, 0, ints({0, 0}, {1, 2}), ones({1, 1})), ShapeError);
  REQUIRE_THROWS_WITH(scatter_add(x, 0, ints({0, 0}, {1, 2}), ones({1, 1})), Contains("[1, 2]") && Contains("[1, 1]"));
  REQUIRE_THROWS_AS(scatter_add(gt(x, 0.0), 0, ints({0}, {1, 1}), gt(ones({1, 1}), 0.0)), DTypeError);
  REQUIRE_THROWS_AS(index_add(x, 1, ints({0, 4}), ones({3, 2})), IndexError);
  REQUIRE_THROWS_WITH(index_add(x, 1, ints({0, 4}), ones({3, 2})),
                      Contains("index_add: index 4 at position 1 is out of bounds for dim 1 with size 4"));
  REQUIRE_THROWS_AS(index_add(x, 1, ints({0, 1}), ones({3, 3})), ShapeError);
  REQUIRE_THROWS_WITH(index_add(x, 1, ints({0, 1}), ones({3, 3})),
                      Contains("source [3, 3] must have shape [3, 2]"));
  REQUIRE_THROWS_AS(index_add(x.to(kInt64), 0, ints({0}), ones({1, 4}).to(kInt64), 0.5), ValueError);
  REQUIRE_THROWS_AS(index_add(x, 0, ints({0}), ones({1, 4}, TensorOptions(kFloat64))), DTypeError);
}

// ---- masked_fill, tril, triu -------------------------------------------------------------------

TEST_CASE("masked_fill broadcasts mask and input, keeps the dtype, no gradient where filled", "[index]") {
  const Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor m = from_vector<bool>({true, false, true}, {3});
  REQUIRE(values(masked_fill(x, m, -1)) == D{-1, 2, -1, -1, 5, -1});
  const Tensor col = from_vector<bool>({false, true, false, true}, {4, 1});
  const Tensor y = masked_fill(f64({7, 8, 9}, {3}), col, -kInf);  // result: the broadcast shape [4, 3]
  REQUIRE(y.shape() == Shape{4, 3});
  REQUIRE(values(y) == D{7, 8, 9, -kInf, -kInf, -kInf, 7, 8, 9, -kInf, -kInf, -kInf});
  REQUIRE(masked_fill(x.to(kInt32), m, 7).dtype() == kInt32);
  Tensor xg = x.clone();
  xg.requires_grad_(true);
  masked_fill(xg, m, 0).sum().backward();
  REQUIRE(values(xg.grad()) == D{0, 1, 0, 0, 1, 0});
  REQUIRE(gradcheck([m](const V& v) { return masked_fill(v[0], m, 3.5); }, {random_tensor({2, 3}, kFloat64, true)}));
  REQUIRE_THROWS_AS(masked_fill(x, ones({3}), 0), DTypeError);
  REQUIRE_THROWS_WITH(masked_fill(x, ones({3}), 0), Contains("masked_fill") && Contains("bool"));
  REQUIRE_THROWS_AS(masked_fill(x, from_vector<bool>({true, false}), 0), ShapeError);
}

TEST_CASE("tril and triu: diagonals, batches, NaN outside the triangle becomes 0, gradcheck", "[index]") {
  const Tensor x = f64({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {3, 4});
  REQUIRE(values(tril(x)) == D{1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0});
  REQUIRE(values(tril(x, 1)) == D{1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12});
  REQUIRE(values(tril(x, -1)) == D{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});
  REQUIRE(values(triu(x)) == D{1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12});
  REQUIRE(values(triu(x, 2)) == D{0, 0, 3, 4, 0, 0, 0, 8, 0, 0, 0, 0});
  REQUIRE(values(triu(x, -1)) == D{1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12});
  REQUIRE(values(tril(x, 10)) == values(x));
  REQUIRE(values(triu(x, 10)) == D(12, 0.0));
  // a batch of 2: each matrix on its own; NaN and inf above the diagonal become 0
  const Tensor b = stack({f64({kNaN, kNaN, kInf, 4}, {2, 2}), f64({1, 2, 3, 4}, {2, 2})});
  const auto tb = values(tril(b));
  REQUIRE(std::isnan(tb[0]));
  REQUIRE(D(tb.begin() + 1, tb.end()) == D{0, kInf, 4, 1, 0, 3, 4});
  REQUIRE(values(triu(ones({2, 2}).to(kBool))) == D{1, 1, 0, 1});
  REQUIRE(gradcheck([](const V& v) { return tril(v[0], -1) + triu(v[0], 1) * 2.0; },
                    {random_tensor({2, 3, 4}, kFloat64, true)}));
  REQUIRE_THROWS_AS(tril(ones({3})), ShapeError);
  REQUIRE_THROWS_WITH(triu(ones({3})), Contains("triu") && Contains("at least 2 dims") && Contains("[3]"));
}

// ---- topk ---------------------------------------------------------------------------------------

TEST_CASE("topk: values and int64 indices, ties by index, NaN as the largest, any dim", "[index]") {
  const Tensor x = f64({3, 1, 4, 1, 5, 9, 2, 6}, {8});
  auto [v, i] = topk(x, 3);
  REQUIRE(values(v) == D{9, 6, 5});
  REQUIRE(i.dtype() == kInt64);
  REQUIRE(values(i) == D{5, 7, 4});
  auto [sv, si] = topk(x, 3, 0, false);
  REQUIRE(values(sv) == D{1, 1, 2});
  REQUIRE(values(si) == D{1, 3, 6});  // the tie 1, 1 by ascending index
  // ties among the largest, NaN above everything (first when largest, last when smallest)
  const Tensor t = f64({2, kNaN, 2, 7, kNaN, 2}, {6});
  auto [tv, ti] = topk(t, 6);
  REQUIRE(values(ti) == D{1, 4, 3, 0, 2, 5});
  auto [uv, ui] = topk(t, 6, -1, false);
  REQUIRE(values(ui) == D{0, 2, 5, 3, 1, 4});
  REQUIRE(std::isnan(values(uv)[5]));
  // along dim 0 of a matrix; k = 0; integers; a 0-dim input
  const Tensor m = f64({1, 8, 5, 7, 2, 6}, {3, 2});
  auto [mv, mi] = topk(m, 2, 0);
  REQUIRE(mv.shape() == Shape{2, 2});
  REQUIRE(values(mv) == D{5, 8, 2, 7});
  REQUIRE(values(mi) == D{1, 0, 2, 1});
  REQUIRE(topk(m, 0, 1).first.shape() == Shape{3, 0});
  REQUIRE(values(topk(m.to(kInt32), 1, 1).first) == D{8, 7, 6});
  REQUIRE(values(topk(scalar_tensor(4.0), 1).first) == D{4});
  // gradient: scattered back to the chosen elements
  Tensor mg = m.clone();
  mg.requires_grad_(true);
  topk(mg, 1, 1).first.sum().backward();
  REQUIRE(values(mg.grad()) == D{0, 1, 0, 1, 0, 1});
  REQUIRE_THROWS_AS(topk(m, 3, 1), ValueError);
  REQUIRE_THROWS_WITH(topk(m, 3, 1), Contains("topk: k = 3") && Contains("size 2") && Contains("[3, 2]"));
  REQUIRE_THROWS_AS(topk(m, -1), ValueError);
  REQUIRE_THROWS_AS(topk(m, 1, 2), IndexError);
  REQUIRE_THROWS_AS(topk(gt(m, 2.0), 1), DTypeError);
}

TEST_CASE("topk equals a sorted reference on random inputs; gradcheck", "[index][gradcheck]") {
  manual_seed(907);
  const Tensor x = random_tensor({4, 5, 37}, kFloat64);
  for (bool largest : {true, false})
    for (int64_t dim : {0, 1, 2}) {
      const int64_t k = std::min<int64_t>(3, x.size(dim));
      auto [v, idx] = topk(x, k, dim, largest);
      // the reference: values along dim sorted, and x gathered at the indices equals the values
      REQUIRE(values(gather(x, dim, idx)) == values(v));
      const Tensor xt = x.transpose(dim, -1).contiguous();
      const auto xs = values(xt), vs = values(v.transpose(dim, -1).contiguous());
      const int64_t n = x.size(dim), rows = x.numel() / n;
      for (int64_t r = 0; r < rows; ++r) {
        D row(xs.begin() + r * n, xs.begin() + (r + 1) * n);
        if (largest) std::sort(row.begin(), row.end(), std::greater<double>());
        else std::sort(row.begin(), row.end());
        REQUIRE(D(vs.begin() + r * k, vs.begin() + (r + 1) * k) == D(row.begin(), row.begin() + k));
      }
    }
  REQUIRE(gradcheck([](const V& v) { return topk(v[0], 2, 1).first; }, {random_tensor({3, 6}, kFloat64, true)}));
  REQUIRE(gradcheck([](const V& v) { return topk(v[0], 2, 0, false).first; }, {random_tensor({5, 2}, kFloat64, true)}));
}

// ---- multinomial ----------------------------------------------------------------------------------

TEST_CASE("multinomial: reproducible from a seed, frequencies follow probs", "[index][random]") {
  const Tensor p = f64({0.1, 0.2, 0.3, 0.4}, {4});
  manual_seed(908);
  const Tensor a = multinomial(p, 20000, true);
  REQUIRE(a.shape() == Shape{20000});
  REQUIRE(a.dtype() == kInt64);
  manual_seed(908);
  REQUIRE(values(multinomial(p, 20000, true)) == values(a));
  REQUIRE(values(multinomial(p, 20000, true)) != values(a));  // the generator moved on
  // 20000 draws: the sd of a frequency is at most 0.0035; 0.02 is over 5 sd
  std::vector<double> count(4, 0.0);
  for (double s : values(a)) count[std::size_t(s)] += 1;
  for (int j = 0; j < 4; ++j) CHECK(count[std::size_t(j)] / 20000 == Approx(0.1 * (j + 1)).margin(0.02));
  // unnormalised weights and float32; zero weights never drawn
  const Tensor w = from_vector<float>({0, 3, 0, 1}, {1, 4});
  const auto ws = values(multinomial(w, 4000, true));
  REQUIRE(std::all_of(ws.begin(), ws.end(), [](double s) { return s == 1 || s == 3; }));
  CHECK(double(std::count(ws.begin(), ws.end(), 1.0)) / 4000 == Approx(0.75).margin(0.03));
  // an own Generator: the same seed, the same draws; the default generator is untouched
  Generator g1(77), g2(77);
  const uint64_t before = default_generator().offset();
  REQUIRE(values(multinomial(p, 50, true, &g1)) == values(multinomial(p, 50, true, &g2)));
  REQUIRE(g1.offset() == 50);
  REQUIRE(default_generator().offset() == before);
}

TEST_CASE("multinomial without replacement: distinct draws, first-draw frequencies follow probs",
          "[index][random]") {
  const Tensor p = f64({0.1, 0.2, 0.3, 0.4, 0.0, 0.5, 0.3, 0.2}, {2, 4});
  manual_seed(909);
  const Tensor s = multinomial(p, 3);
  REQUIRE(s.shape() == Shape{2, 3});
  const auto sv = values(s);
  REQUIRE(std::set<double>(sv.begin(), sv.begin() + 3).size() == 3);
  REQUIRE(std::set<double>(sv.begin() + 3, sv.end()) == std::set<double>{1, 2, 3});  // row 1: weight 0 never
  // all 4 of row 0: a permutation
  const auto perm = values(multinomial(p.select(0, 0), 4));
  REQUIRE(std::set<double>(perm.begin(), perm.end()) == std::set<double>{0, 1, 2, 3});
  // the first of 2 draws, over 3000 rows of the same weights, follows them
  const Tensor many = f64({0.1, 0.2, 0.3, 0.4}, {1, 4}).expand({3000, 4});
  const auto first = values(multinomial(many, 2).select(1, 0));
  std::vector<double> count(4, 0.0);
  for (double f : first) count[std::size_t(f)] += 1;
  for (int j = 0; j < 4; ++j) CHECK(count[std::size_t(j)] / 3000 == Approx(0.1 * (j + 1)).margin(0.04));
  manual_seed(3);
  const auto one = values(multinomial(p, 1));
  manual_seed(3);
  REQUIRE(values(multinomial(p, 1)) == one);
}

TEST_CASE("multinomial rejects bad distributions and sample counts", "[index][random][errors]") {
  REQUIRE_THROWS_AS(multinomial(f64({0.5, -0.1}, {2}), 1), ValueError);
  REQUIRE_THROWS_WITH(multinomial(f64({0.5, -0.1}, {2}), 1),
                      Contains("multinomial") && Contains("negative") && Contains("[2]"));
  REQUIRE_THROWS_WITH(multinomial(f64({0.5, kNaN}, {2}), 1), Contains("NaN"));
  REQUIRE_THROWS_WITH(multinomial(f64({0.5, kInf}, {2}), 1), Contains("inf"));
  REQUIRE_THROWS_WITH(multinomial(f64({1, 0, 0, 0}, {2, 2}), 1), Contains("sums to 0"));
  REQUIRE_THROWS_WITH(multinomial(f64({1, 1}, {2}), 3), Contains("cannot draw 3 samples without replacement from 2"));
  REQUIRE_THROWS_WITH(multinomial(f64({1, 0, 1}, {3}), 3), Contains("only 2 positive weights"));
  REQUIRE(multinomial(f64({1, 1}, {2}), 3, true).numel() == 3);
  REQUIRE_THROWS_AS(multinomial(f64({1, 1}, {2}), 0, true), ValueError);
  REQUIRE_THROWS_AS(multinomial(ints({1, 1}), 1), DTypeError);
  REQUIRE_THROWS_AS(multinomial(ones({2, 2, 2}), 1), ShapeError);
  REQUIRE_THROWS_AS(multinomial(ones({2, 0}), 1), ValueError);
}

// ---- cross_entropy / nll_loss: ignore_index, label_smoothing, [N, C, d] ---------------------------

namespace {
/// -log_softmax(x)[i, c] for rows of a [N, C] float64 tensor.
std::vector<D> neg_log_softmax(const Tensor& x) {
  const auto v = values(x);
  const int64_t N = x.size(0), C = x.size(1);
  std::vector<D> out(static_cast<std::size_t>(N), D(static_cast<std::size_t>(C)));
  for (int64_t i = 0; i < N; ++i) {
    double m = -kInf, s = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, v[std::size_t(i * C + c)]);
    for (int64_t c = 0; c < C; ++c) s += std::exp(v[std::size_t(i * C + c)] - m);
    for (int64_t c = 0; c < C; ++c) out[std::size_t(i)][std::size_t(c)] = m + std::log(s) - v[std::size_t(i * C + c)];
  }
  return out;
}
}  // namespace

TEST_CASE("cross_entropy: ignore_index and label_smoothing follow PyTorch's formula", "[index][loss]") {
  manual_seed(910);
  const Tensor x = random_tensor({5, 4}, kFloat64) * 2.0;
  const Tensor t = ints({3, -100, 0, 2, -100});
  const auto nls = neg_log_softmax(x);
  for (double e : {0.0, 0.1, 1.0}) {
    // PyTorch: (1 - e) * nll + e / C * sum_c -logp_c, over targets that are not ignored
    D per;
    double total = 0;
    for (int64_t i = 0; i < 5; ++i) {
      const int64_t ti = int64_t(values(t)[std::size_t(i)]);
      if (ti == -100) {
        per.push_back(0);
        continue;
      }
      double smooth = 0;
      for (double v : nls[std::size_t(i)]) smooth += v;
      per.push_back((1 - e) * nls[std::size_t(i)][std::size_t(ti)] + e / 4 * smooth);
      total += per.back();
    }
    INFO("label_smoothing " << e);
    const auto none = values(cross_entropy(x, t, Reduction::None, -100, e));
    for (std::size_t i = 0; i < per.size(); ++i) REQUIRE(none[i] == Approx(per[i]).epsilon(1e-12));
    REQUIRE(cross_entropy(x, t, Reduction::Sum, -100, e).item<double>() == Approx(total).epsilon(1e-12));
    REQUIRE(cross_entropy(x, t, Reduction::Mean, -100, e).item<double>() == Approx(total / 3).epsilon(1e-12));
  }
  // an ignore_index inside [0, C): those targets are skipped, and -100 is then out of range
  const Tensor t2 = ints({3, 1, 0, 1, 1});
  const double want = (nls[0][3] + nls[2][0]) / 2;
  REQUIRE(cross_entropy(x, t2, Reduction::Mean, 1).item<double>() == Approx(want).epsilon(1e-12));
  REQUIRE_THROWS_WITH(cross_entropy(x, t, Reduction::Mean, 1), Contains("target -100 at index 1"));
  // every target ignored: the mean is NaN (0 / 0), as PyTorch
  REQUIRE(std::isnan(cross_entropy(x, ints({-100, -100, -100, -100, -100})).item<double>()));
  REQUIRE(nll_loss(x, ints({-100, -100, -100, -100, -100}), Reduction::Sum).item<double>() == 0.0);
  // gradients: ignored rows get none
  Tensor xg = x.clone();
  xg.requires_grad_(true);
  cross_entropy(xg, t, Reduction::Mean, -100, 0.2).backward();
  const auto g = values(xg.grad());
  for (int64_t c = 0; c < 4; ++c) {
    REQUIRE(g[std::size_t(4 + c)] == 0.0);
    REQUIRE(g[std::size_t(16 + c)] == 0.0);
  }
  for (double e : {0.0, 0.3})
    for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum})
      REQUIRE(gradcheck([t, r, e](const V& v) { return cross_entropy(v[0], t, r, -100, e); },
                        {random_tensor({5, 4}, kFloat64, true)}));
  REQUIRE_THROWS_AS(cross_entropy(x, t, Reduction::Mean, -100, 1.5), ValueError);
  REQUIRE_THROWS_WITH(cross_entropy(x, t, Reduction::Mean, -100, -0.1), Contains("label_smoothing"));
}

TEST_CASE("cross_entropy over [N, C, d1, d2] equals [N * d1 * d2, C]; [C] with a 0-dim target", "[index][loss]") {
  manual_seed(911);
  const Tensor x = random_tensor({2, 3, 4, 2}, kFloat64);
  const Tensor t = randint(0, 3, {2, 4, 2});
  t.data_ptr<int64_t>()[5] = -100;
  const Tensor flat_x = x.permute({0, 2, 3, 1}).reshape({16, 3});
  const Tensor flat_t = t.reshape({16});
  for (double e : {0.0, 0.25}) {
    const Tensor none = cross_entropy(x, t, Reduction::None, -100, e);
    REQUIRE(none.shape() == Shape{2, 4, 2});
    const auto a = values(none), b = values(cross_entropy(flat_x, flat_t, Reduction::None, -100, e));
    for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(b[i]).epsilon(1e-14));
    REQUIRE(cross_entropy(x, t, Reduction::Mean, -100, e).item<double>() ==
            Approx(cross_entropy(flat_x, flat_t, Reduction::Mean, -100, e).item<double>()).epsilon(1e-14));
  }
  REQUIRE(gradcheck([t](const V& v) { return cross_entropy(v[0], t, Reduction::Mean, -100, 0.1); },
                    {random_tensor({2, 3, 4, 2}, kFloat64, true)}));
  REQUIRE(gradcheck([t](const V& v) { return nll_loss(v[0], t); }, {random_tensor({2, 3, 4, 2}, kFloat64, true)}));
  // unbatched: [C] logits, a 0-dim target
  const Tensor l = f64({1, 2, 3}, {3});
  const Tensor one = cross_entropy(l, scalar_tensor(2, TensorOptions(kInt64)), Reduction::None);
  REQUIRE(one.dim() == 0);
  REQUIRE(one.item<double>() == Approx(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3).epsilon(1e-12));
  REQUIRE_THROWS_WITH(cross_entropy(x, randint(0, 3, {2, 4})), Contains("expected [2, 4, 2]"));
}

// ---- gelu tanh ------------------------------------------------------------------------------------

TEST_CASE("gelu(approximate=\"tanh\") matches its formula; gradcheck; bad strings", "[index][gelu]") {
  const D xs{-6, -2.5, -1, -0.1, 0, 0.3, 1, 2, 5};
  const auto got = values(gelu(f64(xs, {9}), "tanh"));
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    const double want = 0.5 * x * (1 + std::tanh(std::sqrt(2 / kPi) * (x + 0.044715 * x * x * x)));
    REQUIRE(got[i] == Approx(want).epsilon(1e-14).margin(1e-300));
  }
  const double at1 = 0.5 * (1 + std::tanh(std::sqrt(2 / kPi) * 1.044715));
  REQUIRE(gelu(from_vector<float>({1.0f}), "tanh").item<double>() == Approx(at1).epsilon(1e-6));
  REQUIRE(values(gelu(f64(xs, {9}), "none")) == values(gelu(f64(xs, {9}))));
  REQUIRE(gradcheck([](const V& v) { return gelu(v[0], "tanh"); }, {random_tensor({4, 3}, kFloat64, true)}));
  REQUIRE_THROWS_AS(gelu(ones({2}), "erf"), ValueError);
  REQUIRE_THROWS_WITH(gelu(ones({2}), "erf"), Contains("gelu") && Contains("\"tanh\"") && Contains("\"erf\""));
}

// ---- clip_grad_norm_ --------------------------------------------------------------------------------

TEST_CASE("clip_grad_norm_: total norm, PyTorch's clip coefficient, norm types, non-finite", "[index][nn]") {
  auto param = [](const D& grad) {
    Tensor p = zeros({int64_t(grad.size())}, TensorOptions(kFloat64));
    p.requires_grad_(true);
    p.set_grad(f64(grad, {int64_t(grad.size())}));
    return p;
  };
  {
    Tensor a = param({3, 0}), b = param({0, 4});
    Tensor none = zeros({2}, TensorOptions(kFloat64));
    none.requires_grad_(true);  // no gradient: skipped
    const Tensor total = nn::utils::clip_grad_norm_({a, none, b}, 1.0);
    REQUIRE(total.dim() == 0);
    REQUIRE(total.item<double>() == 5.0);
    const double coef = 1.0 / (5.0 + 1e-6);
    REQUIRE(values(a.grad()) == D{3 * coef, 0});
    REQUIRE(values(b.grad()) == D{0, 4 * coef});
  }
  {
    Tensor a = param({3, 0}), b = param({0, 4});
    REQUIRE(nn::utils::clip_grad_norm_({a, b}, 10.0).item<double>() == 5.0);
    REQUIRE(values(a.grad()) == D{3, 0});  // coefficient clamped to 1
  }
  {
    Tensor a = param({3, -1}), b = param({-4, 2});
    REQUIRE(nn::utils::clip_grad_norm_({a, b}, 100.0, kInf).item<double>() == 4.0);
    REQUIRE(nn::utils::clip_grad_norm_({a, b}, 100.0, 1.0).item<double>() == 10.0);
    REQUIRE(nn::utils::clip_grad_norm_({a, b}, 100.0, 3.0).item<double>() == Approx(std::cbrt(27 + 1 + 64 + 8.0)));
    REQUIRE(nn::utils::clip_grad_norm_({a, b}, 2.0, 1.0).item<double>() == 10.0);
    REQUIRE(values(b.grad())[0] == Approx(-4 * 2.0 / (10 + 1e-6)).epsilon(1e-15));
  }
  {
    Tensor a = param({kNaN, 1});
    REQUIRE(std::isnan(nn::utils::clip_grad_norm_({a}, 1.0).item<double>()));
    Tensor b = param({kInf, 1});
    REQUIRE_THROWS_AS(nn::utils::clip_grad_norm_({b}, 1.0, 2.0, true), ValueError);
    REQUIRE_THROWS_WITH(nn::utils::clip_grad_norm_({b}, 1.0, 2.0, true),
                        Contains("clip_grad_norm_") && Contains("inf") && Contains("error_if_nonfinite"));
    REQUIRE(values(b.grad())[1] == 1.0);  // unchanged when it throws
  }
  REQUIRE(nn::utils::clip_grad_norm_({}, 1.0).item<double>() == 0.0);
  REQUIRE_THROWS_AS(nn::utils::clip_grad_norm_({param({1})}, 1.0, 0.0), ValueError);
}

// ---- float16 / bfloat16 ---------------------------------------------------------------------------

TEST_CASE("index ops on float16 and bfloat16: lookups exact, sums in float32 rounded once", "[index][dtype]") {
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    const Tensor w = f64({0.5, 1.5, -2, 3.25, 4, -0.125}, {3, 2}).to(dt);
    const Tensor y = embedding(w, ints({2, 0}));
    REQUIRE(y.dtype() == dt);
    REQUIRE(values_of(y) == D{4, -0.125, 0.5, 1.5});
    Tensor wl = w.clone();
    wl.requires_grad_(true);
    embedding(wl, ints({1, 1, 1}), 0).sum().backward();
    REQUIRE(wl.grad().dtype() == dt);
    REQUIRE(values_of(wl.grad()) == D{0, 0, 3, 3, 0, 0});
    auto [v, i] = topk(f64({1, 3, 2, kNaN}, {4}).to(dt), 2);
    REQUIRE(v.dtype() == dt);
    REQUIRE(std::isnan(values_of(v)[0]));
    REQUIRE(values_of(v)[1] == 3);
    REQUIRE(values(i) == D{3, 1});
    // 0.1 three times: the float32 sum rounded once, not three roundings
    const Tensor src = full({3}, 0.1, TensorOptions(dt));
    const Tensor want = index_add(zeros({2}), 0, ints({0, 0, 0}), src.to(kFloat32)).to(dt);
    REQUIRE(values_of(index_add(zeros({2}, TensorOptions(dt)), 0, ints({0, 0, 0}), src)) == values_of(want));
    REQUIRE(values_of(gather(w, 1, ints({1, 0, 1}, {3, 1}))) == D{1.5, -2, -0.125});
    const auto draws = values(multinomial(f64({0, 1, 0}, {3}).to(dt), 5, true));
    REQUIRE(draws == D(5, 1.0));
  }
}
