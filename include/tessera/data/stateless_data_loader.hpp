// The general data loader: StatelessDataLoader over any dataset and sampler, and
// make_data_loader, as libtorch's (torch/data/dataloader.h, dataloader/stateless.h):
//   auto ds = datasets::MNIST(root).map(transforms::Normalize<>(0.1307, 0.3081))
//                                  .map(transforms::Stack<>());
//   auto loader = data::make_data_loader(std::move(ds), DataLoaderOptions().batch_size(64));
//   for (auto& batch : *loader) { ... batch.data, batch.target ... }
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/data/data_loader_options.hpp"
#include "tessera/data/loader_state.hpp"
#include "tessera/data/samplers.hpp"
#include "tessera/error.hpp"

namespace tessera::data {

namespace detail {
/// Run first on each loader worker thread: the OpenMP thread count of this thread becomes 1
/// (as PyTorch's DataLoader workers call torch.set_num_threads(1)). Only this thread's
/// OpenMP setting changes; tessera::set_num_threads is not called, since it also sets
/// Eigen's process-wide count.
void enter_loader_worker_thread();
/// Throws ValueError naming op for batch_size 0, or workers > 0 with max_jobs 0.
void check_loader_options(const DataLoaderOptions& options, size_t max_jobs, const char* op);

template <typename T, typename = void>
struct is_sampler : std::false_type {};
template <typename T>
struct is_sampler<T, std::void_t<typename T::BatchRequestType>>
    : std::is_base_of<samplers::Sampler<typename T::BatchRequestType>, T> {};
}  // namespace detail

/// An input iterator over the batches a loader hands out (libtorch's data::Iterator).
/// Dereferencing or comparing fetches the first batch; ++ fetches the next. Compares equal
/// to end() once the loader returns no batch.
template <typename Batch>
class Iterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = Batch;
  using difference_type = std::ptrdiff_t;
  using pointer = Batch*;
  using reference = Batch&;

  /// The end (sentinel) iterator.
  Iterator() = default;
  explicit Iterator(std::function<std::optional<Batch>()> next)
      : state_(std::make_shared<State>(State{std::move(next), std::nullopt, false})) {}

  /// Throws IndexError on the end iterator.
  Batch& operator*() {
    TESSERA_CHECK(state_ && state_->get(), IndexError, "DataLoader iterator: dereferenced past the end");
    return *state_->batch;
  }
  Batch* operator->() { return &**this; }
  Iterator& operator++() {
    TESSERA_CHECK(state_ && state_->get(), IndexError, "DataLoader iterator: incremented past the end");
    state_->batch = state_->next();
    return *this;
  }
  friend bool operator==(const Iterator& a, const Iterator& b) { return a.done() == b.done(); }
  friend bool operator!=(const Iterator& a, const Iterator& b) { return !(a == b); }

 private:
  struct State {
    std::function<std::optional<Batch>()> next;
    std::optional<Batch> batch;
    bool initialized;
    bool get() {
      if (!initialized) {
        initialized = true;
        batch = next();
      }
      return batch.has_value();
    }
  };
  bool done() const { return !state_ || !state_->get(); }
  std::shared_ptr<State> state_;
};

/// Hands out the batches of `dataset` in the order of `sampler`: each batch is
/// dataset.get_batch(sampler.next(batch_size)). Each begin() starts an epoch (it resets the
/// sampler). The batch type is the dataset's: vector<Example> for a plain Dataset, Example
/// after .map(transforms::Stack<>()). Semantics of libtorch's StatelessDataLoader:
/// - workers(0): get_batch runs on the iterating thread when a batch is asked for.
/// - workers(n): n threads, each with its own copy of the dataset (so Dataset must be
///   copyable; TensorDataset and MNIST copies share their tensors), run get_batch; up to
///   max_jobs (default 2n) batches are requested ahead. With enforce_ordering (default)
///   batches arrive in sampler order, so the batches equal those of workers(0).
/// - An exception thrown by get_batch on a worker is rethrown by the iterator at that
///   batch, on the consuming thread; the loader stays usable (the next ++ gives the batch
///   after it).
/// - Destroying the loader, or a new begin(), mid-epoch drops the batches still queued;
///   the destructor waits only for the get_batch calls already running.
/// What get_batch may do on a worker thread: create and compute with CPU tensors (the CPU
/// allocator is thread-safe; grad mode is off there, so batches carry no autograd history,
/// and autocast is off, both being per-thread; the library's OpenMP loops run one thread
/// per worker, see detail::enter_loader_worker_thread, though a matmul there may still use
/// Eigen's process-wide GEMM thread count). It must not draw from default_generator() (not
/// thread-safe: seed a Generator of its own, e.g. from the index), must not mutate state
/// shared between the copies, and should not touch CUDA (move batches on the consumer).
/// With a DeterministicSampler (SequentialSampler, RandomSampler, DistributedSampler) the
/// loader is resumable: state_dict() / load_state_dict() as the MNIST DataLoader's.
/// Not copyable or movable (the workers refer to it); make_data_loader returns a unique_ptr.
template <typename Dataset, typename Sampler = samplers::RandomSampler>
class StatelessDataLoader : public ResumableLoader {
 public:
  using BatchType = typename Dataset::BatchType;
  using BatchRequestType = typename Sampler::BatchRequestType;
  using DatasetType = Dataset;
  using SamplerType = Sampler;

  /// Throws ValueError for batch_size 0, or max_jobs 0 with workers > 0.
  StatelessDataLoader(Dataset dataset, Sampler sampler, DataLoaderOptions options)
      : dataset_(std::move(dataset)), sampler_(std::move(sampler)), options_(std::move(options)) {
    max_jobs_ = options_.max_jobs().value_or(2 * options_.workers());
    detail::check_loader_options(options_, max_jobs_, "StatelessDataLoader");
    workers_.reserve(options_.workers());
    for (size_t w = 0; w < options_.workers(); ++w)
      workers_.emplace_back([this, copy = dataset_]() mutable { worker_loop(std::move(copy)); });
  }
  StatelessDataLoader(const StatelessDataLoader&) = delete;
  StatelessDataLoader& operator=(const StatelessDataLoader&) = delete;
  ~StatelessDataLoader() override { join(); }

  /// Starts an epoch: resets the sampler (a DeterministicSampler then moves to its next
  /// epoch; after load_state_dict, the saved epoch, from the saved batch on).
  Iterator<BatchType> begin() {
    reset();
    return Iterator<BatchType>([this] { return next(); });
  }
  Iterator<BatchType> end() { return Iterator<BatchType>(); }

  /// The next batch of the epoch, or nullopt at its end (libtorch's next()). Rethrows an
  /// exception of the dataset's get_batch; throws tessera::Error when options().timeout()
  /// passes with no batch from the workers.
  std::optional<BatchType> next() {
    if (workers_.empty()) {
      std::optional<BatchRequestType> request = next_request();
      if (!request) return std::nullopt;
      ++served_;
      autograd::NoGradGuard no_grad;
      return std::optional<BatchType>(dataset_.get_batch(std::move(*request)));
    }
    prefetch();
    if (in_flight_ == 0) return std::nullopt;
    Result r;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      auto ready = [&] { return options_.enforce_ordering() ? results_.count(next_deliver_) > 0 : !results_.empty(); };
      if (options_.timeout()) {
        TESSERA_CHECK(result_cv_.wait_for(lock, *options_.timeout(), ready), Error,
                      "DataLoader: timeout waiting for the next batch from the workers (timeout was ",
                      options_.timeout()->count(), " ms)");
      } else {
        result_cv_.wait(lock, ready);
      }
      auto it = options_.enforce_ordering() ? results_.find(next_deliver_) : results_.begin();
      r = std::move(it->second);
      results_.erase(it);
    }
    ++next_deliver_;
    --in_flight_;
    ++served_;
    prefetch();
    if (r.error) std::rethrow_exception(r.error);
    return std::move(r.batch);
  }

  /// Stops and joins the workers (the destructor calls it); later batches load on the
  /// calling thread, as with workers(0).
  void join() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
      jobs_.clear();
    }
    job_cv_.notify_all();
    for (auto& t : workers_)
      if (t.joinable()) t.join();
    workers_.clear();
    in_flight_ = 0;
    results_.clear();
  }

  const DataLoaderOptions& options() const noexcept { return options_; }
  Sampler& sampler() noexcept { return sampler_; }
  const Sampler& sampler() const noexcept { return sampler_; }
  const Dataset& dataset() const noexcept { return dataset_; }

  /// Chooses the epoch of the next begin(), which then starts at its first batch
  /// (DeterministicSampler only; torch's DistributedSampler.set_epoch).
  void set_epoch(uint64_t epoch) {
    sampler_.set_epoch(epoch);
    resume_batch_ = 0;
    in_epoch_ = false;
  }
  /// Batches per epoch (DeterministicSampler only): ceil(n / batch_size), floor with
  /// drop_last, n being the sampler's size().
  size_t num_batches() const {
    static_assert(std::is_base_of_v<samplers::DeterministicSampler, Sampler>,
                  "num_batches() needs a DeterministicSampler");
    const size_t n = sampler_.size(), b = options_.batch_size();
    return options_.drop_last() ? n / b : (n + b - 1) / b;
  }

  /// Where the loader is (see ResumableLoader). Inside a range-for, the current batch
  /// counts as handed out, so a state saved in the loop body resumes with the batch after
  /// it. Throws UnsupportedError unless the sampler is a DeterministicSampler.
  SavedState state_dict() const override {
    if constexpr (std::is_base_of_v<samplers::DeterministicSampler, Sampler>) {
      uint64_t epoch = sampler_.epoch(), batch = resume_batch_;
      if (in_epoch_ && served_ < num_batches()) {
        epoch = sampler_.current_epoch();
        batch = served_;
      }
      return detail::loader_state(epoch, batch, config());
    } else {
      throw UnsupportedError("StatelessDataLoader.state_dict: the sampler is not a DeterministicSampler");
    }
  }
  /// Restores a state_dict(): the next begin() starts its epoch at its batch, with the same
  /// examples in the same order. Throws ValueError as ResumableLoader says, UnsupportedError
  /// unless the sampler is a DeterministicSampler.
  void load_state_dict(const SavedState& state) override {
    if constexpr (std::is_base_of_v<samplers::DeterministicSampler, Sampler>) {
      auto [epoch, batch] =
          detail::parse_loader_state(state, config(), num_batches(), "StatelessDataLoader.load_state_dict");
      sampler_.set_epoch(epoch);
      resume_batch_ = batch;
      in_epoch_ = false;
    } else {
      (void)state;
      throw UnsupportedError("StatelessDataLoader.load_state_dict: the sampler is not a DeterministicSampler");
    }
  }

 private:
  struct Job {
    uint64_t generation = 0, sequence = 0;
    BatchRequestType request;
  };
  struct Result {
    std::optional<BatchType> batch;
    std::exception_ptr error;
  };

  detail::LoaderConfig config() const {
    detail::LoaderConfig c;
    c.seed = sampler_.seed();
    c.shuffle = sampler_.shuffle();
    c.batch_size = options_.batch_size();
    c.drop_last = options_.drop_last();
    std::optional<size_t> n = dataset_.size();
    c.num_examples = n ? uint64_t(*n) : uint64_t(sampler_.size());
    return c;
  }

  void reset() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++generation_;
      jobs_.clear();
      results_.clear();
    }
    in_flight_ = 0;
    next_sequence_ = next_deliver_ = 0;
    exhausted_ = false;
    sampler_.reset(std::nullopt);
    served_ = 0;
    if constexpr (std::is_base_of_v<samplers::DeterministicSampler, Sampler>) {
      for (; served_ < resume_batch_ && next_request(); ++served_) {
      }
      resume_batch_ = 0;
      in_epoch_ = true;
    }
  }

  /// The sampler's next request, or nullopt at the end of the epoch (drop_last included).
  std::optional<BatchRequestType> next_request() {
    if (exhausted_) return std::nullopt;
    std::optional<BatchRequestType> r = sampler_.next(options_.batch_size());
    if (!r || r->size() == 0 || (options_.drop_last() && r->size() < options_.batch_size())) {
      exhausted_ = true;
      return std::nullopt;
    }
    return r;
  }

  void prefetch() {
    while (in_flight_ < max_jobs_) {
      std::optional<BatchRequestType> request = next_request();
      if (!request) return;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        jobs_.push_back(Job{generation_, next_sequence_++, std::move(*request)});
      }
      ++in_flight_;
      job_cv_.notify_one();
    }
  }

  void worker_loop(Dataset dataset) {
    detail::enter_loader_worker_thread();
    autograd::NoGradGuard no_grad;
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        job_cv_.wait(lock, [&] { return quit_ || !jobs_.empty(); });
        if (quit_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      Result r;
      try {
        r.batch.emplace(dataset.get_batch(std::move(job.request)));
      } catch (...) {
        r.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (quit_) return;
        if (job.generation != generation_) continue;  // from an epoch that was abandoned
        results_.emplace(job.sequence, std::move(r));
      }
      result_cv_.notify_one();
    }
  }

  Dataset dataset_;
  Sampler sampler_;
  DataLoaderOptions options_;
  size_t max_jobs_ = 0;

  // Consumer-thread state.
  size_t in_flight_ = 0;       // requested and not yet handed out (this epoch)
  uint64_t next_sequence_ = 0;  // sequence number of the next request
  uint64_t next_deliver_ = 0;   // with enforce_ordering: the sequence handed out next
  bool exhausted_ = false;      // the sampler has no more batches this epoch
  uint64_t served_ = 0;         // batches handed out this epoch (resume position)
  uint64_t resume_batch_ = 0;   // where the next begin() starts (load_state_dict)
  bool in_epoch_ = false;

  // Shared with the workers, under mutex_.
  std::mutex mutex_;
  std::condition_variable job_cv_, result_cv_;
  std::deque<Job> jobs_;
  std::map<uint64_t, Result> results_;
  uint64_t generation_ = 0;
  bool quit_ = false;
  std::vector<std::thread> workers_;
};

/// A loader over dataset with a Sampler constructed from the dataset's size (libtorch's
/// make_data_loader<Sampler>(dataset, options)); the default RandomSampler(size) has seed 0
/// (pass a RandomSampler(size, seed) for another). options may be a batch size.
/// Throws ValueError when the dataset's size() is nullopt, and as StatelessDataLoader.
template <typename Sampler = samplers::RandomSampler, typename Dataset,
          typename = std::enable_if_t<std::is_constructible_v<Sampler, size_t>>>
std::unique_ptr<StatelessDataLoader<Dataset, Sampler>> make_data_loader(Dataset dataset,
                                                                        DataLoaderOptions options = DataLoaderOptions()) {
  const std::optional<size_t> size = dataset.size();
  TESSERA_CHECK(size.has_value(), ValueError,
                "make_data_loader: the dataset has no size(); pass a sampler: make_data_loader(dataset, sampler, options)");
  Sampler sampler(*size);
  return std::make_unique<StatelessDataLoader<Dataset, Sampler>>(std::move(dataset), std::move(sampler),
                                                                 std::move(options));
}

/// A loader over dataset in the order of sampler (libtorch's make_data_loader(dataset,
/// sampler, options)). Indices the sampler gives beyond the dataset make its get() throw
/// (IndexError for Tessera's datasets) at that batch.
template <typename Dataset, typename Sampler, typename = std::enable_if_t<detail::is_sampler<Sampler>::value>>
std::unique_ptr<StatelessDataLoader<Dataset, Sampler>> make_data_loader(Dataset dataset, Sampler sampler,
                                                                        DataLoaderOptions options = DataLoaderOptions()) {
  return std::make_unique<StatelessDataLoader<Dataset, Sampler>>(std::move(dataset), std::move(sampler),
                                                                 std::move(options));
}

}  // namespace tessera::data
