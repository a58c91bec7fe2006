// data::DataLoaderOptions, spelled as libtorch's (torch/data/dataloader_options.h), and the
// TESSERA_ARG macro that gives an options struct its chained setters, as TORCH_ARG does.
#pragma once
#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>

/// Declares a private member `name_` of type T with a public chained setter and getters,
/// as libtorch's TORCH_ARG (torch/csrc/api/include/torch/arg.h):
///   opts.name(v)   sets it and returns *this (so setters chain);
///   opts.name()    reads it (a reference; the non-const overload can be assigned through).
/// Put a default after the macro: `TESSERA_ARG(size_t, batch_size) = 1;`.
#define TESSERA_ARG(T, name)                                                   \
 public:                                                                       \
  inline auto name(const T& new_##name)->decltype(*this) {                     \
    this->name##_ = new_##name;                                                \
    return *this;                                                              \
  }                                                                            \
  inline auto name(T&& new_##name)->decltype(*this) {                          \
    this->name##_ = std::move(new_##name);                                     \
    return *this;                                                              \
  }                                                                            \
  inline const T& name() const noexcept { return this->name##_; }              \
  inline T& name() noexcept { return this->name##_; }                          \
                                                                               \
 private:                                                                      \
  T name##_

namespace tessera::data {

/// Options of the general data loader (make_data_loader / StatelessDataLoader), libtorch's
/// fields and defaults:
///   DataLoaderOptions().batch_size(64).workers(2).drop_last(true)
/// A size_t converts implicitly (`make_data_loader(ds, 64)`), as in libtorch.
struct DataLoaderOptions {
  DataLoaderOptions() = default;
  /* implicit */ DataLoaderOptions(size_t batch_size) : batch_size_(batch_size) {}

  /// Examples per batch (> 0; the loader throws ValueError for 0). The last batch of an
  /// epoch is smaller unless drop_last.
  TESSERA_ARG(size_t, batch_size) = 1;
  /// Worker threads that call the dataset's get_batch(). 0: batches are loaded on the
  /// thread that iterates, when it asks for them.
  TESSERA_ARG(size_t, workers) = 0;
  /// Batches requested ahead of the consumer (in flight at once); default 2 * workers.
  /// Must be > 0 when workers > 0.
  TESSERA_ARG(std::optional<size_t>, max_jobs);
  /// How long the consumer waits for one batch from the workers before the loader throws
  /// tessera::Error (no timeout when unset). Ignored with workers(0), as in libtorch.
  TESSERA_ARG(std::optional<std::chrono::milliseconds>, timeout);
  /// Deliver batches in sampler order even when workers finish them out of order (so a run
  /// with workers(n) sees exactly the batches of workers(0)). false: first finished, first out.
  TESSERA_ARG(bool, enforce_ordering) = true;
  /// Drop the last batch of an epoch when it has fewer than batch_size examples.
  TESSERA_ARG(bool, drop_last) = false;
  /// Accepted for PyTorch compatibility and a no-op: batches are ordinary CPU tensors.
  /// Tessera's host-to-device copy (kernels/allocator.cu) always goes through its own ring
  /// of pinned memory and queues the copy asynchronously, so a batch in pinned memory would
  /// save one host memcpy at most, and Tessera has no pinned CPU allocator to put it in.
  TESSERA_ARG(bool, pin_memory) = false;
};

}  // namespace tessera::data
