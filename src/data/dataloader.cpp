// DataLoader: seeded, platform-independent shuffling and fast uint8 -> float batch assembly.
#include "tessera/data/dataloader.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tessera/error.hpp"
#include "tessera/data/samplers.hpp"

namespace tessera::data {

DataLoader::DataLoader(const MnistDataset& dataset, MnistLoaderOptions opts)
    : dataset_(dataset), opts_(opts) {
  TESSERA_CHECK(opts.batch_size() > 0, ValueError, "DataLoader: batch_size must be > 0, got ", opts.batch_size());
  TESSERA_CHECK(std::isfinite(opts.mean()), ValueError, "DataLoader: mean must be finite, got ", opts.mean());
  TESSERA_CHECK(std::isfinite(opts.std()) && opts.std() != 0.f, ValueError,
                "DataLoader: std must be finite and non-zero, got ", opts.std());
}

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_.size(), b = opts_.batch_size();
  return opts_.drop_last() ? n / b : (n + b - 1) / b;
}

int64_t DataLoader::num_examples() const {
  return opts_.drop_last() ? num_batches() * opts_.batch_size() : dataset_.size();
}

std::vector<int64_t> DataLoader::order(uint64_t epoch) const {
  const int64_t n = dataset_.size();
  std::vector<int64_t> idx(static_cast<size_t>(n));
  if (!opts_.shuffle()) {
    for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = i;
    return idx;
  }
  const std::vector<size_t> perm = samplers::RandomSampler::permutation(size_t(n), opts_.seed(), epoch);
  for (size_t i = 0; i < perm.size(); ++i) idx[i] = int64_t(perm[i]);
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
  const float mean = opts_.mean(), std = opts_.std();
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
  if (opts_.device() != Device::cpu()) return Batch{data.to(opts_.device()), target.to(opts_.device())};
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
    const int64_t bs = loader_->opts_.batch_size();
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

detail::LoaderConfig DataLoader::config() const {
  detail::LoaderConfig c;
  c.seed = opts_.seed();
  c.shuffle = opts_.shuffle();
  c.batch_size = uint64_t(opts_.batch_size());
  c.drop_last = opts_.drop_last();
  c.num_examples = uint64_t(dataset_.size());
  return c;
}

SavedState DataLoader::state_dict() const {
  uint64_t epoch = epoch_;
  int64_t batch = resume_batch_;
  if (in_epoch_ && served_ < num_batches()) {
    epoch = current_epoch_;
    batch = served_;
  }
  return detail::loader_state(epoch, uint64_t(batch), config());
}

void DataLoader::load_state_dict(const SavedState& state) {
  auto [epoch, batch] = detail::parse_loader_state(state, config(), uint64_t(num_batches()), "DataLoader.load_state_dict");
  epoch_ = epoch;
  resume_batch_ = int64_t(batch);
  in_epoch_ = false;
}

}  // namespace tessera::data
