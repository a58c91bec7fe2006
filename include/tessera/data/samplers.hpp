// data::samplers: which example indices each batch gets, as libtorch's torch::data::samplers
// (torch/data/samplers/{base,sequential,random,distributed}.h), with seeded, epoch-keyed
// orders so a run can be reproduced and resumed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace tessera::data::samplers {

/// The sampler interface (libtorch's Sampler<BatchRequest>). reset() starts a new epoch
/// (optionally over a new dataset size); next(batch_size) gives the indices of the next
/// batch, at most batch_size of them, or nullopt when the epoch is over. Samplers are used
/// by one thread only (the loader's consumer thread).
template <typename BatchRequest = std::vector<size_t>>
class Sampler {
 public:
  using BatchRequestType = BatchRequest;
  virtual ~Sampler() = default;
  virtual void reset(std::optional<size_t> new_size) = 0;
  virtual std::optional<BatchRequest> next(size_t batch_size) = 0;
};

/// A sampler whose order for an epoch is a pure function of (seed, epoch, size): the data
/// loader can save where it is and resume (state_dict). Each reset() takes the order of
/// epoch() and then advances epoch() by one, so consecutive epochs see new orders without a
/// call (as libtorch's RandomSampler reshuffles on reset); set_epoch(e), as torch's
/// DistributedSampler.set_epoch, chooses the epoch of the next reset().
class DeterministicSampler : public Sampler<> {
 public:
  /// The epoch the next reset() uses.
  uint64_t epoch() const noexcept { return next_epoch_; }
  /// The epoch of the order being handed out (that of the last reset()).
  uint64_t current_epoch() const noexcept { return current_epoch_; }
  void set_epoch(uint64_t epoch) noexcept { next_epoch_ = epoch; }
  /// The seed of the orders (0 for samplers that do not shuffle).
  virtual uint64_t seed() const noexcept = 0;
  virtual bool shuffle() const noexcept = 0;
  /// Examples per epoch before batching (for a DistributedSampler: this replica's share).
  virtual size_t size() const noexcept = 0;
  /// Indices handed out so far in this epoch.
  size_t index() const noexcept { return index_; }

  void reset(std::optional<size_t> new_size = std::nullopt) override;
  /// Throws ValueError for batch_size 0.
  std::optional<std::vector<size_t>> next(size_t batch_size) override;

 protected:
  /// The indices of one epoch, in order (computed by reset()).
  virtual std::vector<size_t> order(uint64_t epoch) const = 0;
  virtual void set_size(size_t new_size) = 0;
  virtual const char* name() const noexcept = 0;

 private:
  uint64_t next_epoch_ = 0, current_epoch_ = 0;
  bool started_ = false;
  std::vector<size_t> order_;
  size_t index_ = 0;
};

/// 0, 1, ..., size - 1 every epoch (libtorch's SequentialSampler).
class SequentialSampler : public DeterministicSampler {
 public:
  explicit SequentialSampler(size_t size) : size_(size) {}
  uint64_t seed() const noexcept override { return 0; }
  bool shuffle() const noexcept override { return false; }
  size_t size() const noexcept override { return size_; }

 protected:
  std::vector<size_t> order(uint64_t epoch) const override;
  void set_size(size_t new_size) override { size_ = new_size; }
  const char* name() const noexcept override { return "SequentialSampler"; }

 private:
  size_t size_;
};

/// A new random permutation of 0..size-1 every epoch (libtorch's RandomSampler, but keyed:
/// the order of epoch e is permutation(size, seed, e), the same on every platform, and the
/// same as the MNIST DataLoader's order(e) for that seed).
class RandomSampler : public DeterministicSampler {
 public:
  explicit RandomSampler(size_t size, uint64_t seed = 0) : size_(size), seed_(seed) {}
  uint64_t seed() const noexcept override { return seed_; }
  bool shuffle() const noexcept override { return true; }
  size_t size() const noexcept override { return size_; }

  /// Fisher-Yates (Knuth, TAOCP vol. 2, Algorithm 3.4.2P, from the end) driven by
  /// Philox4x32-10 keyed by seed with counters (draw, epoch), 64-bit words, without modulo
  /// bias. The one implementation of Tessera's shuffle.
  static std::vector<size_t> permutation(size_t size, uint64_t seed, uint64_t epoch);

 protected:
  std::vector<size_t> order(uint64_t epoch) const override { return permutation(size_, seed_, epoch); }
  void set_size(size_t new_size) override { size_ = new_size; }
  const char* name() const noexcept override { return "RandomSampler"; }

 private:
  size_t size_;
  uint64_t seed_;
};

/// This replica's share of an epoch, as torch.utils.data.DistributedSampler: the order
/// (permutation(size, seed, epoch) with shuffle, else 0..size-1) is padded by repeating
/// its start until it divides evenly by num_replicas (or, with drop_last, cut to a
/// multiple of num_replicas), and replica `rank` takes elements rank, rank + R, rank + 2R...
/// So each replica sees ceil(size / R) (drop_last: floor(size / R)) indices per epoch and
/// the replicas' shares are disjoint apart from the padding. Unlike PyTorch, reset()
/// advances the epoch by itself (see DeterministicSampler); set_epoch still works. The
/// shuffled orders are Tessera's Philox ones, not torch.randperm's.
/// Throws ValueError for num_replicas 0 or rank >= num_replicas.
class DistributedSampler : public DeterministicSampler {
 public:
  DistributedSampler(size_t size, size_t num_replicas, size_t rank, bool shuffle = true, uint64_t seed = 0,
                     bool drop_last = false);
  uint64_t seed() const noexcept override { return seed_; }
  bool shuffle() const noexcept override { return shuffle_; }
  /// This replica's indices per epoch (PyTorch's num_samples).
  size_t size() const noexcept override;
  size_t num_replicas() const noexcept { return num_replicas_; }
  size_t rank() const noexcept { return rank_; }

 protected:
  std::vector<size_t> order(uint64_t epoch) const override;
  void set_size(size_t new_size) override { size_ = new_size; }
  const char* name() const noexcept override { return "DistributedSampler"; }

 private:
  size_t size_, num_replicas_, rank_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
};

}  // namespace tessera::data::samplers
