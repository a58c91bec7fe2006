// Samplers: the epoch bookkeeping of DeterministicSampler and Tessera's one shuffle
// (Philox4x32-10 + Fisher-Yates), shared with the MNIST DataLoader.
#include "tessera/data/samplers.hpp"

#include <algorithm>
#include <numeric>

#include "tessera/error.hpp"
#include "tessera/random.hpp"

namespace tessera::data::samplers {
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

std::vector<size_t> iota(size_t n) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t(0));
  return idx;
}

}  // namespace

std::vector<size_t> RandomSampler::permutation(size_t size, uint64_t seed, uint64_t epoch) {
  std::vector<size_t> idx = iota(size);
  // Fisher-Yates (Knuth, TAOCP vol. 2, Algorithm 3.4.2P), from the end.
  ShuffleStream rng(seed, epoch);
  for (size_t i = size; i-- > 1;) {
    const size_t j = size_t(rng.below(uint64_t(i) + 1));
    std::swap(idx[i], idx[j]);
  }
  return idx;
}

void DeterministicSampler::reset(std::optional<size_t> new_size) {
  if (new_size) set_size(*new_size);
  current_epoch_ = next_epoch_++;
  order_ = order(current_epoch_);
  index_ = 0;
  started_ = true;
}

std::optional<std::vector<size_t>> DeterministicSampler::next(size_t batch_size) {
  TESSERA_CHECK(batch_size > 0, ValueError, name(), "::next: batch_size must be > 0, got ", batch_size);
  if (!started_) reset(std::nullopt);
  if (index_ >= order_.size()) return std::nullopt;
  const size_t count = std::min(batch_size, order_.size() - index_);
  std::vector<size_t> out(order_.begin() + std::ptrdiff_t(index_), order_.begin() + std::ptrdiff_t(index_ + count));
  index_ += count;
  return out;
}

std::vector<size_t> SequentialSampler::order(uint64_t) const { return iota(size_); }

DistributedSampler::DistributedSampler(size_t size, size_t num_replicas, size_t rank, bool shuffle, uint64_t seed,
                                       bool drop_last)
    : size_(size), num_replicas_(num_replicas), rank_(rank), shuffle_(shuffle), seed_(seed), drop_last_(drop_last) {
  TESSERA_CHECK(num_replicas > 0, ValueError, "DistributedSampler: num_replicas must be > 0, got ", num_replicas);
  TESSERA_CHECK(rank < num_replicas, ValueError, "DistributedSampler: rank ", rank,
                " is out of range for num_replicas ", num_replicas, " (expected 0 <= rank < num_replicas)");
}

size_t DistributedSampler::size() const noexcept {
  // torch.utils.data.DistributedSampler: with drop_last and an uneven split,
  // ceil((N - R) / R) == floor(N / R); otherwise ceil(N / R).
  if (drop_last_ && size_ % num_replicas_ != 0) return size_ / num_replicas_;
  return (size_ + num_replicas_ - 1) / num_replicas_;
}

std::vector<size_t> DistributedSampler::order(uint64_t epoch) const {
  std::vector<size_t> all = shuffle_ ? RandomSampler::permutation(size_, seed_, epoch) : iota(size_);
  const size_t per = size(), total = per * num_replicas_;
  if (total > all.size() && !all.empty()) {
    // Pad by repeating the order from its start (as many times as needed, as PyTorch).
    const size_t n = all.size();
    for (size_t k = 0; all.size() < total; ++k) all.push_back(all[k % n]);
  }
  all.resize(std::min(all.size(), total));
  std::vector<size_t> mine;
  mine.reserve(per);
  for (size_t k = rank_; k < all.size(); k += num_replicas_) mine.push_back(all[k]);
  return mine;
}

}  // namespace tessera::data::samplers
