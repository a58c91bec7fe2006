// DataLoader: seeded, platform-independent shuffling and fast uint8 -> float batch assembly.
#include "tessera/data/dataloader.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tessera/error.hpp"
#include "tessera/random.hpp"

namespace tessera::data {
namespace {

/// 64-bit random words from Philox4x32-10 keyed by seed, counter (k, epoch): two per block.
class ShuffleStream {
 public:
  ShuffleStream(uint64_t seed, uint64_t epoch) : seed_(seed), epoch_(epoch) {}
  uint64_t next() {
    if (used_ == 2) {
      block_ = philox4x32_10(uint32_t(counter_), uint32_t(counter_ >> 32), uint32_t(epoch_),
                             uint32_t(epoch_ >> 32), uint32_t(seed_), uint32_t(seed_ >> 32));
      ++counter_;
      used_ = 0;
    }
    uint64_t w = (uint64_t(block_.v[2 * used_]) << 32) | block_.v[2 * used_ + 1];
    ++used_;
    return w;
  }
  /// Uniform integer in [0, bound), bound >= 1, without modulo bias: words below
  /// 2^64 mod bound are rejected (so every residue has the same number of preimages).
  uint64_t below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;  // == 2^64 mod bound
    for (;;) {
      uint64_t x = next();
      if (x >= threshold) return x % bound;
    }
  }

 private:
  uint64_t seed_, epoch_;
  uint64_t counter_ = 0;
  Philox4x32 block_{};
  int used_ = 2;
};

}  // namespace

DataLoader::DataLoader(const MnistDataset& dataset, DataLoaderOptions opts)
    : dataset_(dataset), opts_(opts) {
  TESSERA_CHECK(opts.batch_size > 0, ValueError, "DataLoader: batch_size must be > 0, got ", opts.batch_size);
  TESSERA_CHECK(std::isfinite(opts.mean), ValueError, "DataLoader: mean must be finite, got ", opts.mean);
  TESSERA_CHECK(std::isfinite(opts.std) && opts.std != 0.f, ValueError,
                "DataLoader: std must be finite and non-zero, got ", opts.std);
}

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_.size(), b = opts_.batch_size;
  return opts_.drop_last ? n / b : (n + b - 1) / b;
}

int64_t DataLoader::num_examples() const {
  return opts_.drop_last ? num_batches() * opts_.batch_size : dataset_.size();
}

std::vector<int64_t> DataLoader::order(uint64_t epoch) const {
  const int64_t n = dataset_.size();
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = i;
  if (!opts_.shuffle) return idx;
  // Fisher-Yates (Knuth, TAOCP vol. 2, Algorithm 3.4.2P), from the end.
  ShuffleStream rng(opts_.seed, epoch);
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = int64_t(rng.below(uint64_t(i) + 1));
    std::swap(idx[size_t(i)], idx[size_t(j)]);
  }
  return idx;
}

Batch DataLoader::collate(const int64_t* indices, int64_t count) const {
  TESSERA_CHECK(count >= 0, ValueError, "DataLoader::collate: count must be >= 0, got ", count);
  const int64_t n = dataset_.size(), rows = dataset_.rows(), cols = dataset_.cols();
  const int64_t pixels = rows * cols;
  Tensor data = empty(Shape{count, 1, rows, cols}, TensorOptions(kFloat32));
  Tensor target = empty(Shape{count}, TensorOptions(kInt64));
  float* dst = data.data_ptr<float>();
  int64_t* tgt = target.data_ptr<int64_t>();
  const uint8_t* images = count > 0 ? dataset_.images().data_ptr<uint8_t>() : nullptr;
  const int64_t* labels = count > 0 ? dataset_.labels().data_ptr<int64_t>() : nullptr;
  const float mean = opts_.mean, std = opts_.std;
  for (int64_t b = 0; b < count; ++b) {
    const int64_t i = indices[b];
    TESSERA_CHECK(i >= 0 && i < n, IndexError, "DataLoader::collate: index ", i, " (batch position ", b,
                  ") is out of range for a dataset of ", n, " examples");
    const uint8_t* src = images + i * pixels;
    float* out = dst + b * pixels;
    // float32 in torchvision's order (ToTensor: p / 255; Normalize: (x - mean) / std), so a
    // batch equals PyTorch's bit for bit; the loop vectorises (no fused multiply-add here).
    for (int64_t k = 0; k < pixels; ++k) out[k] = (float(src[k]) / 255.0f - mean) / std;
    tgt[b] = labels[i];
  }
  if (opts_.device != Device::cpu()) return Batch{data.to(opts_.device), target.to(opts_.device)};
  return Batch{data, target};
}

DataLoader::iterator DataLoader::begin() {
  auto ord = std::make_shared<const std::vector<int64_t>>(order(epoch_));
  const int64_t start = std::min(resume_batch_, num_batches());
  resume_batch_ = 0;
  in_epoch_ = true;
  current_epoch_ = epoch_;
  served_ = start;
  ++epoch_;
  return iterator(this, std::move(ord), start);
}

DataLoader::iterator DataLoader::end() const { return iterator(this, nullptr, num_batches()); }

const Batch& DataLoader::iterator::operator*() const {
  TESSERA_CHECK(loader_ && order_ && index_ >= 0 && index_ < loader_->num_batches(), IndexError,
                "DataLoader::iterator: dereferenced past the end (batch ", index_, ")");
  if (!ready_) {
    const int64_t bs = loader_->opts_.batch_size;
    const int64_t start = index_ * bs;
    const int64_t count = std::min<int64_t>(bs, int64_t(order_->size()) - start);
    batch_ = loader_->collate(order_->data() + start, count);
    ready_ = true;
    loader_->served_ = std::max(loader_->served_, index_ + 1);
  }
  return batch_;
}

DataLoader::iterator& DataLoader::iterator::operator++() {
  ++index_;
  batch_ = Batch{};
  ready_ = false;
  return *this;
}

SavedState DataLoader::state_dict() const {
  uint64_t epoch = epoch_;
  int64_t batch = resume_batch_;
  if (in_epoch_ && served_ < num_batches()) {
    epoch = current_epoch_;
    batch = served_;
  }
  nlohmann::json j = {{"epoch", epoch},
                      {"batch", batch},
                      {"seed", opts_.seed},
                      {"shuffle", opts_.shuffle},
                      {"batch_size", opts_.batch_size},
                      {"drop_last", opts_.drop_last},
                      {"num_examples", dataset_.size()}};
  SavedState out;
  out.json = j.dump();
  return out;
}

void DataLoader::load_state_dict(const SavedState& state) {
  const nlohmann::json j = nlohmann::json::parse(state.json, nullptr, false);
  TESSERA_CHECK(!j.is_discarded() && j.is_object(), ValueError,
                "DataLoader.load_state_dict: the state is not a JSON object");
  auto count = [&](const char* key) -> uint64_t {
    auto it = j.find(key);
    TESSERA_CHECK(it != j.end() && it->is_number_unsigned(), ValueError, "DataLoader.load_state_dict: ", key,
                  " is missing or not a count");
    return it->get<uint64_t>();
  };
  auto flag = [&](const char* key) -> bool {
    auto it = j.find(key);
    TESSERA_CHECK(it != j.end() && it->is_boolean(), ValueError, "DataLoader.load_state_dict: ", key,
                  " is missing or not true/false");
    return it->get<bool>();
  };
  const uint64_t epoch = count("epoch"), batch = count("batch"), seed = count("seed");
  const uint64_t batch_size = count("batch_size"), n = count("num_examples");
  const bool shuffle = flag("shuffle"), drop_last = flag("drop_last");
  std::string diff;
  auto differs = [&](const char* what, const std::string& saved, const std::string& now) {
    if (saved != now) diff += detail::str_cat(diff.empty() ? "" : ", ", what, " ", saved, " (now ", now, ")");
  };
  differs("seed", std::to_string(seed), std::to_string(opts_.seed));
  differs("shuffle", shuffle ? "true" : "false", opts_.shuffle ? "true" : "false");
  differs("batch_size", std::to_string(batch_size), std::to_string(opts_.batch_size));
  differs("drop_last", drop_last ? "true" : "false", opts_.drop_last ? "true" : "false");
  differs("num_examples", std::to_string(n), std::to_string(dataset_.size()));
  TESSERA_CHECK(diff.empty(), ValueError,
                "DataLoader.load_state_dict: the state was saved by a loader with another order: ", diff);
  TESSERA_CHECK(int64_t(batch) <= num_batches(), ValueError, "DataLoader.load_state_dict: batch ", batch,
                " is past the end of the epoch (", num_batches(), " batches)");
  epoch_ = epoch;
  resume_batch_ = int64_t(batch);
  in_epoch_ = false;
}

}  // namespace tessera::data
