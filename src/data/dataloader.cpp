// DataLoader: seeded, platform-independent shuffling and fast uint8 -> float batch assembly.
#include "tessera/data/dataloader.hpp"

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
  ++epoch_;
  return iterator(this, std::move(ord), 0);
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
  }
  return batch_;
}

DataLoader::iterator& DataLoader::iterator::operator++() {
  ++index_;
  batch_ = Batch{};
  ready_ = false;
  return *this;
}

}  // namespace tessera::data
