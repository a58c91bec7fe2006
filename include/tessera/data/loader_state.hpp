// Where a data loader is in its epochs, saved and restored as PyTorch's state_dict(): the
// interface io::Checkpoint uses, and the one JSON format every Tessera loader writes.
#pragma once
#include <cstdint>
#include <utility>

#include "tessera/io/saved_state.hpp"

namespace tessera::data {

/// A loader that can save where it is and resume there (the MNIST DataLoader, and a
/// StatelessDataLoader whose sampler is a DeterministicSampler). The state is JSON
///   {"epoch": e, "batch": b, "seed", "shuffle", "batch_size", "drop_last", "num_examples"}
/// meaning: the next batch handed out is batch b of epoch e (torchdata's StatefulDataLoader
/// counts the same way). No tensors.
class ResumableLoader {
 public:
  virtual ~ResumableLoader() = default;
  virtual SavedState state_dict() const = 0;
  /// Throws ValueError (nothing changed) for a malformed state or one saved by a loader
  /// with another seed, shuffle, batch_size, drop_last or dataset size (naming the fields).
  virtual void load_state_dict(const SavedState& state) = 0;
};

namespace detail {
/// The configuration a saved position is valid for.
struct LoaderConfig {
  uint64_t seed = 0;
  bool shuffle = false;
  uint64_t batch_size = 0;
  bool drop_last = false;
  uint64_t num_examples = 0;
};
/// The JSON state of position (epoch, batch) under config.
SavedState loader_state(uint64_t epoch, uint64_t batch, const LoaderConfig& config);
/// The (epoch, batch) of a state saved under config `now` by loader `op` (used in messages,
/// e.g. "DataLoader.load_state_dict"); batch must be <= num_batches. Throws ValueError.
std::pair<uint64_t, uint64_t> parse_loader_state(const SavedState& state, const LoaderConfig& now,
                                                 uint64_t num_batches, const char* op);
}  // namespace detail

}  // namespace tessera::data
