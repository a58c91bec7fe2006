// The general data API (data/data.hpp): datasets, map/transforms, samplers and the
// StatelessDataLoader with worker threads, checked against hand-built batches and the MNIST
// DataLoader's pinned shuffle.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor_testing.hpp"
#include "tessera/io/checkpoint.hpp"
#include "tessera/tessera.hpp"

using namespace tessera;
using namespace tessera::data;
using tessera::testing::values;

namespace {

/// The message of the E that f throws (fails the test when it throws nothing or another type).
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception of the requested type");
  return {};
}

/// Random float data [n, 3, 2, 2] and int64 targets [n] in [0, 10) (from the default generator).
datasets::TensorDataset random_tensor_dataset(int64_t n) {
  Tensor x = randn({n, 3, 2, 2}, TensorOptions(kFloat32));
  Tensor u = rand({n}, TensorOptions(kFloat32));
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[size_t(i)] = int64_t(std::floor(values(u)[size_t(i)] * 10));
  return datasets::TensorDataset(x, from_vector<int64_t>(y));
}

/// Targets of a batch from a dataset whose target is the example index.
std::vector<int64_t> ids(const Example<>& batch) {
  std::vector<int64_t> out;
  for (double v : values(batch.target)) out.push_back(int64_t(v));
  return out;
}

/// A dataset whose example i is {float32 [2] = (i, -i), int64 i}; get() throws on `bad`.
class IndexedDataset : public datasets::Dataset<IndexedDataset> {
 public:
  explicit IndexedDataset(size_t n, size_t bad = size_t(-1)) : n_(n), bad_(bad) {}
  Example<> get(size_t index) override {
    if (index == bad_) throw std::runtime_error("IndexedDataset: bad example " + std::to_string(index));
    TESSERA_CHECK(index < n_, IndexError, "IndexedDataset::get: index ", index, " out of range for ", n_);
    return {from_vector<float>({float(index), -float(index)}, {2}), scalar_tensor(double(index), TensorOptions(kInt64))};
  }
  std::optional<size_t> size() const override { return n_; }

 private:
  size_t n_, bad_;
};

/// All batches of one epoch, as example-id lists.
template <typename Loader>
std::vector<std::vector<int64_t>> epoch_ids(Loader& loader) {
  std::vector<std::vector<int64_t>> out;
  for (auto& batch : loader) out.push_back(ids(batch));
  return out;
}

}  // namespace

TEST_CASE("Example, DataLoaderOptions chained setters and getters", "[data][data_api]") {
  auto o = DataLoaderOptions().batch_size(64).workers(2).drop_last(true).max_jobs(3).pin_memory(true);
  CHECK(o.batch_size() == 64);
  CHECK(o.workers() == 2);
  CHECK(o.drop_last());
  CHECK(o.max_jobs() == std::optional<size_t>(3));
  CHECK(o.enforce_ordering());
  CHECK(o.pin_memory());
  CHECK_FALSE(o.timeout().has_value());
  o.batch_size() = 5;  // the non-const getter can be assigned through, as TORCH_ARG's
  CHECK(o.batch_size() == 5);
  DataLoaderOptions from_size = 16;
  CHECK(from_size.batch_size() == 16);
  CHECK(DataLoaderOptions().batch_size() == 1);
  CHECK(DataLoaderOptions().workers() == 0);

  Example<> e(ones({2}), zeros({}));
  CHECK(e.data.numel() == 2);
  TensorExample t(ones({3}));
  CHECK(t.data.numel() == 3);
}

TEST_CASE("TensorDataset + Stack batches equal manual index + stack", "[data][data_api]") {
  manual_seed(11);
  const int64_t n = 23;
  datasets::TensorDataset ds = random_tensor_dataset(n);
  REQUIRE(ds.size() == std::optional<size_t>(n));
  Example<> e5 = ds.get(5);
  CHECK(e5.data.shape() == Shape{3, 2, 2});
  CHECK(e5.target.dim() == 0);
  CHECK(values(e5.data) == values(ds.data()[5]));

  for (bool shuffle : {false, true}) {
    auto stacked = ds.map(transforms::Stack<>());
    std::vector<std::vector<int64_t>> seen;
    auto check = [&](auto& loader, auto order) {
      size_t pos = 0, nbatches = 0;
      for (Example<>& b : loader) {
        const int64_t bs = b.data.size(0);
        std::vector<Tensor> xs, ys;
        for (int64_t k = 0; k < bs; ++k) {
          xs.push_back(ds.data()[int64_t(order[pos + size_t(k)])]);
          ys.push_back(ds.target()[int64_t(order[pos + size_t(k)])]);
        }
        CHECK(b.data.shape() == Shape{bs, 3, 2, 2});
        CHECK(b.target.shape() == Shape{bs});
        CHECK(b.target.dtype() == kInt64);
        CHECK(values(b.data) == values(stack(xs)));
        CHECK(values(b.target) == values(stack(ys)));
        pos += size_t(bs);
        ++nbatches;
      }
      CHECK(pos == size_t(n));
      CHECK(nbatches == 5);  // ceil(23 / 5)
    };
    if (shuffle) {
      auto loader = make_data_loader(stacked, samplers::RandomSampler(n, 99), DataLoaderOptions().batch_size(5));
      check(*loader, samplers::RandomSampler::permutation(n, 99, 0));
    } else {
      auto loader = make_data_loader<samplers::SequentialSampler>(stacked, 5);
      std::vector<size_t> seq(n);
      std::iota(seq.begin(), seq.end(), size_t(0));
      check(*loader, seq);
    }
  }

  // Without Stack the batch is the vector of examples.
  auto loader = make_data_loader<samplers::SequentialSampler>(ds, DataLoaderOptions(4));
  std::vector<Example<>> first = *loader->begin();
  REQUIRE(first.size() == 4);
  CHECK(values(first[3].data) == values(ds.data()[3]));

  // From one tensor: no targets, and Stack leaves the target undefined.
  datasets::TensorDataset only_x(ds.data());
  CHECK_FALSE(only_x.get(0).target.defined());
  auto only_loader = make_data_loader<samplers::SequentialSampler>(only_x.map(transforms::Stack<>()), 8);
  Example<> b = *only_loader->begin();
  CHECK(b.data.shape() == Shape{8, 3, 2, 2});
  CHECK_FALSE(b.target.defined());
}

TEST_CASE("TensorDataset and the loaders reject bad inputs with typed errors", "[data][data_api]") {
  const std::string sizes = message_of<ShapeError>([] { datasets::TensorDataset(zeros({4, 2}), zeros({5})); });
  CHECK_THAT(sizes, Catch::Contains("TensorDataset") && Catch::Contains("[4, 2]") && Catch::Contains("[5]"));
  CHECK_THROWS_AS(datasets::TensorDataset(zeros({})), ValueError);
  CHECK_THROWS_AS(datasets::TensorDataset(Tensor()), ValueError);

  datasets::TensorDataset ds(zeros({4, 2}), zeros({4}));
  const std::string range = message_of<IndexError>([&] { ds.get(4); });
  CHECK_THAT(range, Catch::Contains("TensorDataset::get") && Catch::Contains("index 4") && Catch::Contains("4 examples"));

  const std::string bs0 = message_of<ValueError>([&] { make_data_loader(ds, DataLoaderOptions().batch_size(0)); });
  CHECK_THAT(bs0, Catch::Contains("batch_size must be > 0, got 0"));
  CHECK_THROWS_AS(make_data_loader(ds, DataLoaderOptions(2).workers(2).max_jobs(0)), ValueError);

  // A sampler reaching past the dataset: the dataset's IndexError, at that batch, on both paths.
  for (size_t workers : {size_t(0), size_t(2)}) {
    auto loader = make_data_loader(ds.map(transforms::Stack<>()), samplers::SequentialSampler(6),
                                   DataLoaderOptions(3).workers(workers));
    auto it = loader->begin();
    CHECK((*it).data.size(0) == 3);
    const std::string past = message_of<IndexError>([&] { ++it; });
    CHECK_THAT(past, Catch::Contains("index 4") && Catch::Contains("4 examples"));
  }

  CHECK_THROWS_AS(samplers::SequentialSampler(3).next(0), ValueError);
  CHECK_THAT(message_of<ValueError>([] { samplers::DistributedSampler(10, 2, 2); }),
             Catch::Contains("rank 2") && Catch::Contains("num_replicas 2"));
}

TEST_CASE("RandomSampler orders: permutations, reproducible per (seed, epoch), new every epoch", "[data][data_api]") {
  for (size_t n : {size_t(1), size_t(7), size_t(100), size_t(1000)}) {
    for (uint64_t seed : {uint64_t(0), uint64_t(42), uint64_t(0x123456789abcdefULL)}) {
      samplers::RandomSampler a(n, seed), b(n, seed);
      std::vector<std::vector<size_t>> epochs;
      for (uint64_t e = 0; e < 3; ++e) {
        a.reset();
        CHECK(a.current_epoch() == e);
        std::vector<size_t> got;
        while (auto r = a.next(13)) got.insert(got.end(), r->begin(), r->end());
        std::vector<size_t> sorted = got;
        std::sort(sorted.begin(), sorted.end());
        std::vector<size_t> iota(n);
        std::iota(iota.begin(), iota.end(), size_t(0));
        CHECK(sorted == iota);
        CHECK(got == samplers::RandomSampler::permutation(n, seed, e));
        epochs.push_back(got);
      }
      if (n >= 7) {
        CHECK(epochs[0] != epochs[1]);
        CHECK(epochs[1] != epochs[2]);
      }
      // set_epoch chooses the order of the next reset; another sampler gives the same.
      b.set_epoch(2);
      b.reset();
      std::vector<size_t> again;
      while (auto r = b.next(n)) again.insert(again.end(), r->begin(), r->end());
      CHECK(again == epochs[2]);
      CHECK(b.epoch() == 3);
    }
  }
  CHECK(samplers::RandomSampler::permutation(50, 1, 0) != samplers::RandomSampler::permutation(50, 2, 0));

  // The same orders as the MNIST DataLoader (whose order is pinned in test_dataloader.cpp).
  const int64_t n = 37;
  MnistDataset mnist(zeros({n, 2, 2}, TensorOptions(kUInt8)), zeros({n}, TensorOptions(kInt64)));
  DataLoader old(mnist, MnistLoaderOptions().shuffle(true).seed(1234));
  for (uint64_t e : {uint64_t(0), uint64_t(1), uint64_t(5)}) {
    std::vector<int64_t> want = old.order(e);
    std::vector<size_t> got = samplers::RandomSampler::permutation(size_t(n), 1234, e);
    CHECK(std::vector<int64_t>(got.begin(), got.end()) == want);
  }
}

TEST_CASE("DistributedSampler pads or drops as PyTorch's DistributedSampler", "[data][data_api]") {
  const size_t n = 10;
  for (bool shuffle : {false, true}) {
    std::multiset<size_t> all;
    std::vector<size_t> order = shuffle ? samplers::RandomSampler::permutation(n, 3, 0) : std::vector<size_t>{};
    if (!shuffle)
      for (size_t i = 0; i < n; ++i) order.push_back(i);
    // padded: 12 = [order..., order[0], order[1]], replica r takes r, r+3, ...
    std::vector<size_t> padded = order;
    padded.push_back(order[0]);
    padded.push_back(order[1]);
    for (size_t r = 0; r < 3; ++r) {
      samplers::DistributedSampler s(n, 3, r, shuffle, 3);
      CHECK(s.size() == 4);
      s.reset();
      std::vector<size_t> got = *s.next(100);
      std::vector<size_t> want;
      for (size_t k = r; k < padded.size(); k += 3) want.push_back(padded[k]);
      CHECK(got == want);
      all.insert(got.begin(), got.end());
    }
    CHECK(all.size() == 12);
    for (size_t i = 0; i < n; ++i) CHECK(all.count(i) >= 1);
    // drop_last: floor(10 / 3) = 3 each, disjoint, from the first 9 of the order.
    std::set<size_t> kept;
    for (size_t r = 0; r < 3; ++r) {
      samplers::DistributedSampler s(n, 3, r, shuffle, 3, /*drop_last=*/true);
      CHECK(s.size() == 3);
      s.reset();
      const std::vector<size_t> mine = *s.next(100);
      for (size_t i : mine) CHECK(kept.insert(i).second);
    }
    CHECK(kept == std::set<size_t>(order.begin(), order.begin() + 9));
  }
}

TEST_CASE("StatelessDataLoader batch counts with and without drop_last", "[data][data_api]") {
  struct Case {
    size_t n, bs;
    bool drop;
    std::vector<size_t> sizes;
  };
  for (const Case& c : {Case{10, 3, false, {3, 3, 3, 1}}, Case{10, 3, true, {3, 3, 3}}, Case{9, 3, true, {3, 3, 3}},
                        Case{2, 3, true, {}}, Case{2, 3, false, {2}}, Case{0, 3, false, {}}}) {
    for (size_t workers : {size_t(0), size_t(2)}) {
      auto loader = make_data_loader(IndexedDataset(c.n), DataLoaderOptions(c.bs).drop_last(c.drop).workers(workers));
      for (int epoch = 0; epoch < 2; ++epoch) {
        std::vector<size_t> sizes;
        for (auto& batch : *loader) sizes.push_back(batch.size());
        CHECK(sizes == c.sizes);
      }
      CHECK(loader->num_batches() == c.sizes.size());
    }
  }
}

TEST_CASE("workers(2) gives the batches of workers(0), batch for batch", "[data][data_api]") {
  manual_seed(5);
  datasets::TensorDataset ds = random_tensor_dataset(41);
  auto pipeline = ds.map(transforms::Normalize<>(0.5, 2.0)).map(transforms::Stack<>());
  auto serial = make_data_loader(pipeline, samplers::RandomSampler(41, 7), DataLoaderOptions(4));
  auto parallel = make_data_loader(pipeline, samplers::RandomSampler(41, 7), DataLoaderOptions(4).workers(2));
  auto parallel_one_job = make_data_loader(pipeline, samplers::RandomSampler(41, 7),
                                           DataLoaderOptions(4).workers(3).max_jobs(1));
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<Example<>> a, b, c;
    for (auto& x : *serial) a.push_back(x);
    for (auto& x : *parallel) b.push_back(x);
    for (auto& x : *parallel_one_job) c.push_back(x);
    REQUIRE(a.size() == 11);
    REQUIRE(b.size() == a.size());
    REQUIRE(c.size() == a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(values(a[i].data) == values(b[i].data));
      CHECK(values(a[i].target) == values(b[i].target));
      CHECK(values(a[i].data) == values(c[i].data));
    }
  }
  // Without enforce_ordering the same batches arrive, in some order.
  auto unordered = make_data_loader(IndexedDataset(30).map(transforms::Stack<>()), samplers::SequentialSampler(30),
                                    DataLoaderOptions(4).workers(3).enforce_ordering(false));
  std::multiset<int64_t> seen;
  size_t batches = 0;
  for (auto& batch : *unordered) {
    for (int64_t i : ids(batch)) seen.insert(i);
    ++batches;
  }
  CHECK(batches == 8);
  CHECK(seen.size() == 30);
  CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 30);
}

TEST_CASE("An exception in a worker is rethrown at that batch on the consuming thread", "[data][data_api]") {
  for (size_t workers : {size_t(0), size_t(1), size_t(3)}) {
    // Example 9 is in batch 2 (batch size 4, sequential).
    auto loader = make_data_loader(IndexedDataset(20, 9).map(transforms::Stack<>()), samplers::SequentialSampler(20),
                                   DataLoaderOptions(4).workers(workers));
    std::vector<std::vector<int64_t>> got;
    auto it = loader->begin();
    got.push_back(ids(*it));
    ++it;
    got.push_back(ids(*it));
    const std::string what = [&] {
      try {
        ++it;
      } catch (const std::runtime_error& e) {
        return std::string(e.what());
      }
      return std::string("nothing thrown");
    }();
    CHECK(what == "IndexedDataset: bad example 9");
    // The loader goes on with the batch after the failed one.
    std::vector<int64_t> next = ids(*loader->next());
    CHECK(next == std::vector<int64_t>{12, 13, 14, 15});
    CHECK(got == std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}});
  }
}

TEST_CASE("Destroying or restarting a loader mid-epoch joins its workers", "[data][data_api]") {
  std::atomic<int> calls{0};
  auto counted = IndexedDataset(200).map(transforms::Lambda<Example<>>([&calls](Example<> e) {
    ++calls;
    return e;
  }));
  {
    auto loader = make_data_loader(counted.map(transforms::Stack<>()), samplers::SequentialSampler(200),
                                   DataLoaderOptions(2).workers(3).max_jobs(4));
    auto it = loader->begin();
    CHECK(ids(*it) == std::vector<int64_t>{0, 1});
  }  // destroyed with batches in flight
  CHECK(calls.load() <= 2 * (1 + 4 + 3));  // at most the batch taken, max_jobs queued, one per worker running
  {
    auto idle = make_data_loader(IndexedDataset(10), DataLoaderOptions(2).workers(2));
  }  // never iterated
  // Breaking out of a loop and starting again: the new epoch starts from its first batch.
  auto loader = make_data_loader(IndexedDataset(12).map(transforms::Stack<>()), samplers::SequentialSampler(12),
                                 DataLoaderOptions(3).workers(2));
  for (auto& batch : *loader) {
    CHECK(ids(batch) == std::vector<int64_t>{0, 1, 2});
    break;
  }
  CHECK(epoch_ids(*loader) == std::vector<std::vector<int64_t>>{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9, 10, 11}});
  loader->join();  // later batches load on the calling thread
  CHECK(epoch_ids(*loader).size() == 4);
}

TEST_CASE("StatelessDataLoader state_dict round trip mid-epoch resumes with the next batch", "[data][data_api]") {
  const size_t n = 23;
  auto make = [&](size_t workers, uint64_t seed = 3, size_t bs = 4) {
    return make_data_loader(IndexedDataset(n).map(transforms::Stack<>()), samplers::RandomSampler(n, seed),
                            DataLoaderOptions(bs).workers(workers));
  };
  // The uninterrupted run: epochs 0 and 1.
  auto straight = make(0);
  std::vector<std::vector<int64_t>> want = epoch_ids(*straight);
  std::vector<std::vector<int64_t>> want1 = epoch_ids(*straight);
  REQUIRE(want.size() == 6);
  for (size_t workers : {size_t(0), size_t(2)}) {
    auto first = make(workers);
    SavedState state;
    size_t k = 0;
    for (auto& batch : *first) {
      CHECK(ids(batch) == want[k]);
      if (++k == 2) {
        state = first->state_dict();  // inside the body: batch 2 is the next
        break;
      }
    }
    CHECK_THAT(state.json, Catch::Contains("\"batch\":2") && Catch::Contains("\"epoch\":0"));
    auto resumed = make(workers);
    resumed->load_state_dict(state);
    std::vector<std::vector<int64_t>> rest = epoch_ids(*resumed);
    CHECK(rest == std::vector<std::vector<int64_t>>(want.begin() + 2, want.end()));
    CHECK(epoch_ids(*resumed) == want1);  // and epoch 1 follows
    // At the end of an epoch the state points at the next epoch's first batch.
    CHECK_THAT(resumed->state_dict().json, Catch::Contains("\"batch\":0") && Catch::Contains("\"epoch\":2"));
  }
  // Same JSON shape as the MNIST DataLoader's, and a state of another configuration is refused.
  auto a = make(0);
  const SavedState s = a->state_dict();
  CHECK_THAT(message_of<ValueError>([&] { make(0, 4)->load_state_dict(s); }),
             Catch::Contains("seed 3 (now 4)"));
  CHECK_THAT(message_of<ValueError>([&] { make(0, 3, 5)->load_state_dict(s); }),
             Catch::Contains("batch_size 4 (now 5)"));
  auto plain = make_data_loader(IndexedDataset(n), samplers::SequentialSampler(n), DataLoaderOptions(4));
  CHECK_THAT(message_of<ValueError>([&] { plain->load_state_dict(s); }), Catch::Contains("shuffle true (now false)"));
  CHECK_THROWS_AS(a->load_state_dict(SavedState{{}, "[1]"}), ValueError);
}

TEST_CASE("Normalize scalar and per-channel against hand-computed values", "[data][data_api]") {
  manual_seed(21);
  Tensor x = randn({3, 2, 4}, TensorOptions(kFloat32));
  const std::vector<double> mean{0.485, 0.456, 0.406}, stddev{0.229, 0.224, 0.225};
  transforms::Normalize<> per_channel(mean, stddev);
  Tensor y = per_channel(x);
  CHECK(y.shape() == x.shape());
  CHECK(y.dtype() == kFloat32);
  std::vector<double> xv = values(x), yv = values(y);
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = i / 8;
    const double want = (xv[i] - mean[c]) / stddev[c];
    CHECK(yv[i] == Approx(want).epsilon(1e-6).margin(1e-6));
  }
  // Scalar: every element; shape unchanged even for 1-d data.
  transforms::Normalize<> scalar(0.1307, 0.3081);
  Tensor v = from_vector<float>({0.f, 0.5f, 1.f});
  std::vector<double> sv = values(scalar(v));
  REQUIRE(sv.size() == 3);
  CHECK(sv[1] == Approx((0.5 - 0.1307) / 0.3081).epsilon(1e-6));
  // Applied through map() to the data only; uint8 data gives float32.
  datasets::TensorDataset ds(full({2, 3, 1, 1}, 2.0, TensorOptions(kUInt8)), from_vector<int64_t>({4, 5}));
  auto batch = *make_data_loader<samplers::SequentialSampler>(ds.map(per_channel).map(transforms::Stack<>()), 2)->begin();
  CHECK(batch.data.dtype() == kFloat32);
  CHECK(values(batch.target) == std::vector<double>{4, 5});
  CHECK(values(batch.data)[2] == Approx((2.0 - 0.406) / 0.225).epsilon(1e-6));
  // Errors.
  CHECK_THAT(message_of<ShapeError>([&] { per_channel(zeros({2, 4})); }),
             Catch::Contains("Normalize") && Catch::Contains("[2, 4]"));
  CHECK_THROWS_AS(transforms::Normalize<>(0.5, 0.0), ValueError);
  CHECK_THROWS_AS(transforms::Normalize<>({0.5, 0.5}, {1.0}), ValueError);
  CHECK_THROWS_AS(transforms::Normalize<>(NAN, 1.0), ValueError);
}

TEST_CASE("Lambda, TensorLambda, BatchLambda and Stack errors", "[data][data_api]") {
  datasets::TensorDataset ds(arange(0.0, 6.0).reshape({6, 1}).to(kFloat32), arange(0.0, 6.0));
  auto doubled = ds.map(transforms::TensorLambda<>([](Tensor t) { return t * 2.0; }))
                     .map(transforms::Lambda<Example<>>([](Example<> e) {
                       e.target = e.target + 10.0;
                       return e;
                     }))
                     .map(transforms::Stack<>());
  auto loader = make_data_loader<samplers::SequentialSampler>(std::move(doubled), 3);
  Example<> b = *loader->begin();
  CHECK(values(b.data) == std::vector<double>{0, 2, 4});
  CHECK(values(b.target) == std::vector<double>{10, 11, 12});
  auto sizes = ds.map(transforms::BatchLambda<std::vector<Example<>>, size_t>([](std::vector<Example<>> v) { return v.size(); }));
  CHECK(sizes.get_batch({1, 2, 3}) == 3);
  CHECK(datasets::map(ds, transforms::Stack<>()).get_batch({0, 5}).data.shape() == Shape{2, 1});

  transforms::Stack<> st;
  CHECK_THROWS_AS(st.apply_batch({}), ValueError);
  CHECK_THROWS_AS(st.apply_batch({Example<>(ones({1}), zeros({})), Example<>(ones({1}), Tensor())}), ValueError);
  CHECK_THROWS_AS(st.apply_batch({Example<>(ones({1}), zeros({})), Example<>(ones({2}), zeros({}))}), ShapeError);
}

TEST_CASE("datasets::MNIST examples and the MNIST DataLoader agree", "[data][data_api]") {
  const int64_t n = 9, rows = 3, cols = 4;
  std::vector<uint8_t> px(size_t(n * rows * cols));
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t((i * 37 + 11) % 256);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back((i * 7) % 10);
  MnistDataset raw(from_vector<uint8_t>(px, {n, rows, cols}), from_vector<int64_t>(labels));
  datasets::MNIST mnist(raw);
  CHECK(mnist.size() == std::optional<size_t>(n));
  Example<> e = mnist.get(4);
  CHECK(e.data.shape() == Shape{1, rows, cols});
  CHECK(e.data.dtype() == kFloat32);
  CHECK(e.target.dim() == 0);
  CHECK(e.target.dtype() == kInt64);
  CHECK(e.target.item<int64_t>() == labels[4]);
  std::vector<double> d = values(e.data);
  for (int64_t k = 0; k < rows * cols; ++k) CHECK(d[size_t(k)] == double(float(px[size_t(4 * rows * cols + k)]) / 255.0f));
  CHECK_THROWS_AS(mnist.get(size_t(n)), IndexError);

  // map(Normalize).map(Stack) with a RandomSampler gives the MNIST DataLoader's batches, bit for bit.
  const float mean = 0.1307f, stdev = 0.3081f;
  DataLoader fast(raw, MnistLoaderOptions().batch_size(4).shuffle(true).seed(8).mean(mean).std(stdev));
  auto general = make_data_loader(mnist.map(transforms::Normalize<>(mean, stdev)).map(transforms::Stack<>()),
                                  samplers::RandomSampler(n, 8), DataLoaderOptions(4).workers(2));
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<Batch> a;
    for (const Batch& b : fast) a.push_back(b);
    size_t i = 0;
    for (auto& b : *general) {
      REQUIRE(i < a.size());
      CHECK(values(b.target) == values(a[i].target));
      std::vector<double> x = values(b.data), y = values(a[i].data);
      REQUIRE(x.size() == y.size());
      for (size_t k = 0; k < x.size(); ++k) CHECK(x[k] == y[k]);
      ++i;
    }
    CHECK(i == a.size());
  }
  // The general loader's state has the MNIST loader's meaning: one loads the other's.
  for (const Batch& b : fast) {
    (void)b;
    break;
  }
  general->load_state_dict(fast.state_dict());
  CHECK(epoch_ids(*general).size() == 2);  // epoch 2 from batch 1: batches 1 and 2 of 3
}

TEST_CASE("make_data_loader needs a sampler for a dataset of unknown size", "[data][data_api]") {
  class Endless : public datasets::Dataset<Endless> {
   public:
    Example<> get(size_t i) override { return {full({1}, double(i)), Tensor()}; }
    std::optional<size_t> size() const override { return std::nullopt; }
  };
  CHECK_THAT(message_of<ValueError>([] { make_data_loader(Endless(), 2); }), Catch::Contains("no size()"));
  auto loader = make_data_loader(Endless(), samplers::SequentialSampler(5), DataLoaderOptions(2));
  size_t batches = 0;
  for (auto& b : *loader) batches += b.empty() ? 0 : 1;
  CHECK(batches == 3);
}

TEST_CASE("The README's data snippet compiles and runs", "[data][data_api]") {
  const int64_t N = 10;
  Tensor x = randn({N, 3, 2, 2}), y = arange(0.0, double(N));
  // ---- as in README.md, "Data" ----
  auto dataset = data::datasets::TensorDataset(x, y)
                     .map(data::transforms::Normalize<>({0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}))
                     .map(data::transforms::Stack<>());
  auto loader = data::make_data_loader(std::move(dataset), data::samplers::RandomSampler(N, /*seed=*/1),
                                       data::DataLoaderOptions().batch_size(64).workers(2));
  size_t seen = 0;
  for (auto& batch : *loader) seen += size_t(batch.data.size(0));
  CHECK(seen == size_t(N));
}

TEST_CASE("Loader workers run with grad mode off and one OpenMP thread, and leave the caller's settings", "[data][data_api]") {
  struct Seen {
    std::atomic<int> grad_on{0}, multi_thread{0}, calls{0};
  };
  auto seen = std::make_shared<Seen>();
  class Probe : public datasets::Dataset<Probe> {
   public:
    explicit Probe(std::shared_ptr<Seen> s) : s_(std::move(s)) {}
    Example<> get(size_t i) override {
      s_->grad_on += autograd::grad_mode_enabled() ? 1 : 0;
      s_->multi_thread += get_num_threads() != 1 ? 1 : 0;
      ++s_->calls;
      return {full({1}, double(i)), Tensor()};
    }
    std::optional<size_t> size() const override { return 8; }

   private:
    std::shared_ptr<Seen> s_;
  };
  const int threads_before = get_num_threads();
  REQUIRE(autograd::grad_mode_enabled());
  auto loader = make_data_loader(Probe(seen), DataLoaderOptions(2).workers(2));
  for (auto& b : *loader) CHECK(b.size() == 2);
  CHECK(seen->calls.load() == 8);
  CHECK(seen->grad_on.load() == 0);
  CHECK(seen->multi_thread.load() == 0);
  CHECK(get_num_threads() == threads_before);
  CHECK(autograd::grad_mode_enabled());
  // workers(0): get() runs on this thread, also without grad mode, which is restored after.
  auto serial = make_data_loader(Probe(seen), DataLoaderOptions(4));
  for (auto& b : *serial) CHECK(b.size() == 4);
  CHECK(seen->grad_on.load() == 0);
  CHECK(autograd::grad_mode_enabled());
}

TEST_CASE("io::Checkpoint saves and restores a general loader's position", "[data][data_api][checkpoint]") {
  testing::TempDir dir("data_api_ckpt");
  auto make = [] {
    return make_data_loader(IndexedDataset(17).map(transforms::Stack<>()), samplers::RandomSampler(17, 9),
                            DataLoaderOptions(5).workers(1));
  };
  auto straight = make();
  const std::vector<std::vector<int64_t>> want = epoch_ids(*straight);
  auto first = make();
  auto it = first->begin();
  CHECK(ids(*it) == want[0]);
  io::Checkpoint save;
  save.loader(*first).save(dir.file("step-1"), 1);
  auto second = make();
  io::Checkpoint load;
  load.loader(*second).load(dir.file("step-1"));
  CHECK(epoch_ids(*second) == std::vector<std::vector<int64_t>>(want.begin() + 1, want.end()));
}

TEST_CASE("A user-defined sampler drives the loader; only deterministic samplers are resumable", "[data][data_api]") {
  // Every other index, as a libtorch user would write a sampler.
  class EvenSampler : public samplers::Sampler<> {
   public:
    explicit EvenSampler(size_t n) : n_(n) {}
    void reset(std::optional<size_t> new_size = std::nullopt) override {
      if (new_size) n_ = *new_size;
      next_ = 0;
    }
    std::optional<std::vector<size_t>> next(size_t batch_size) override {
      std::vector<size_t> out;
      for (; next_ < n_ && out.size() < batch_size; next_ += 2) out.push_back(next_);
      if (out.empty()) return std::nullopt;
      return out;
    }

   private:
    size_t n_, next_ = 0;
  };
  for (size_t workers : {size_t(0), size_t(2)}) {
    auto loader = make_data_loader(IndexedDataset(11).map(transforms::Stack<>()), EvenSampler(11),
                                   DataLoaderOptions(2).workers(workers));
    CHECK(epoch_ids(*loader) == std::vector<std::vector<int64_t>>{{0, 2}, {4, 6}, {8, 10}});
    CHECK_THROWS_AS(loader->state_dict(), UnsupportedError);
    CHECK_THROWS_AS(loader->load_state_dict(SavedState{}), UnsupportedError);
  }
}
