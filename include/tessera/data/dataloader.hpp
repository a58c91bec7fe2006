// DataLoader: batches of an MnistDataset as normalised float tensors, optionally shuffled
// with a seed, as torch.utils.data.DataLoader with a seeded RandomSampler does it. A fast
// special case (one uint8 -> float pass per batch, no per-example tensors) of the general
// loader (stateless_data_loader.hpp): the same shuffle (RandomSampler::permutation) and the
// same resumable state (ResumableLoader), so it works with io::Checkpoint.
#pragma once
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <vector>

#include "tessera/data/data_loader_options.hpp"
#include "tessera/data/loader_state.hpp"
#include "tessera/data/mnist.hpp"
#include "tessera/device.hpp"
#include "tessera/io/saved_state.hpp"
#include "tessera/tensor.hpp"

namespace tessera::data {

/// One batch: data float32 [B, 1, rows, cols], target int64 [B], both on the loader's device.
struct Batch {
  Tensor data;
  Tensor target;
};

/// Options of the MNIST DataLoader, with chained setters as libtorch's options types:
///   MnistLoaderOptions().batch_size(64).shuffle(true).seed(1).mean(0.1307f).std(0.3081f)
/// (the general loader's options are DataLoaderOptions, data_loader_options.hpp).
struct MnistLoaderOptions {
  /// Examples per batch (> 0). The last batch is smaller unless drop_last.
  TESSERA_ARG(int64_t, batch_size) = 64;
  /// Visit the examples in a new pseudo-random order every epoch.
  TESSERA_ARG(bool, shuffle) = false;
  /// The order of epoch e depends only on (seed, e) and N: the same on every platform
  /// (samplers::RandomSampler::permutation).
  TESSERA_ARG(uint64_t, seed) = 0;
  /// Drop the last batch when it has fewer than batch_size examples.
  TESSERA_ARG(bool, drop_last) = false;
  /// Normalisation: x = (pixel / 255 - mean) / std, computed in float32 in the order of
  /// torchvision's ToTensor + Normalize (so batches equal PyTorch's bit for bit).
  /// MNIST: mean 0.1307, std 0.3081; Fashion-MNIST: mean 0.2860, std 0.3530.
  TESSERA_ARG(float, mean) = 0.f;
  TESSERA_ARG(float, std) = 1.f;
  /// Device the batches are moved to.
  TESSERA_ARG(Device, device) = Device::cpu();
};

/// Iterates over the batches of a dataset; use with range-for:
///   for (const Batch& b : loader) { ... }
/// Each begin() starts an epoch: it takes the order of the current epoch number and then
/// advances the epoch number, so consecutive loops see different orders (when shuffling);
/// set_epoch() chooses the epoch number of the next loop, for resuming and reproducing.
class DataLoader : public ResumableLoader {
 public:
  /// Throws ValueError when batch_size <= 0 or std is zero or not finite, or mean is not finite.
  DataLoader(const MnistDataset& dataset, MnistLoaderOptions opts);

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    iterator() = default;
    /// The batch at this position, assembled on first access.
    const Batch& operator*() const;
    const Batch* operator->() const { return &**this; }
    iterator& operator++();
    /// Position in the epoch (0-based batch number).
    int64_t index() const { return index_; }
    friend bool operator==(const iterator& a, const iterator& b) { return a.index_ == b.index_; }
    friend bool operator!=(const iterator& a, const iterator& b) { return a.index_ != b.index_; }

   private:
    friend class DataLoader;
    iterator(const DataLoader* loader, std::shared_ptr<const std::vector<int64_t>> order, int64_t index)
        : loader_(loader), order_(std::move(order)), index_(index) {}
    const DataLoader* loader_ = nullptr;
    std::shared_ptr<const std::vector<int64_t>> order_;
    int64_t index_ = 0;
    mutable Batch batch_;
    mutable bool ready_ = false;
  };

  /// Starts an epoch (see the class comment).
  iterator begin();
  iterator end() const;

  /// Batches per epoch: ceil(N / batch_size), or floor(N / batch_size) with drop_last.
  int64_t num_batches() const;
  /// Examples per epoch (N, or num_batches() * batch_size with drop_last).
  int64_t num_examples() const;
  /// The epoch number the next begin() uses.
  uint64_t epoch() const { return epoch_; }
  /// The batch the next begin() starts at: 0, or where load_state_dict() left it.
  int64_t start_batch() const { return resume_batch_; }
  /// Chooses the epoch of the next begin(), which then starts at its first batch.
  void set_epoch(uint64_t epoch) {
    epoch_ = epoch;
    resume_batch_ = 0;
    in_epoch_ = false;
  }

  /// Where the loader is, as torchdata's StatefulDataLoader counts it: JSON
  /// {"epoch": e, "batch": b, "seed", "shuffle", "batch_size", "drop_last", "num_examples"}
  /// where the next batch handed out is batch b of epoch e. Inside a range-for, a batch
  /// counts as handed out once it has been dereferenced, so a state saved in the loop body
  /// resumes with the batch after the current one. No tensors.
  SavedState state_dict() const override;
  /// Restores a state_dict(): the next begin() starts epoch e at batch b (and later loops
  /// go on from epoch e + 1), visiting the same examples in the same order as the saved
  /// run would have. Throws ValueError (nothing changed) when the state is malformed or
  /// was saved with another seed, shuffle, batch_size, drop_last or dataset size.
  void load_state_dict(const SavedState& state) override;
  /// The dataset indices in the order epoch `epoch` visits them (all N of them, including
  /// those a drop_last would skip): 0..N-1 without shuffle, else a Fisher-Yates shuffle
  /// driven by Philox4x32-10 keyed by the seed, with counters (draw, epoch): the order of
  /// samplers::RandomSampler(N, seed) in epoch `epoch`.
  std::vector<int64_t> order(uint64_t epoch) const;
  /// The batch of the given dataset indices (each in [0, N); IndexError otherwise).
  Batch collate(const int64_t* indices, int64_t count) const;
  Batch collate(const std::vector<int64_t>& indices) const {
    return collate(indices.data(), int64_t(indices.size()));
  }

  const MnistDataset& dataset() const { return dataset_; }
  const MnistLoaderOptions& options() const { return opts_; }

 private:
  detail::LoaderConfig config() const;
  MnistDataset dataset_;
  MnistLoaderOptions opts_;
  uint64_t epoch_ = 0;
  // Position inside the epoch being iterated (for state_dict): in_epoch_ after begin();
  // served_ = batches dereferenced so far in epoch current_epoch_.
  bool in_epoch_ = false;
  uint64_t current_epoch_ = 0;
  mutable int64_t served_ = 0;
  int64_t resume_batch_ = 0;  // where the next begin() starts (load_state_dict)
};

}  // namespace tessera::data
