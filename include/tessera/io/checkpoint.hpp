// Training checkpoints: everything a run needs to continue bit for bit after a crash
// (model, optimizer, LR scheduler, data-loader position, random generator, step, user
// metadata), crash-safe, and with several processes one consistent set.
//
// A checkpoint is a folder:
//   model.safetensors          the model's state_dict (written by rank 0; PyTorch's
//                              safetensors.torch.load_file reads it as is)
//   state-rank<r>.safetensors  rank r's optimizer tensors ("optimizer.state.<i>.<name>");
//                              its __metadata__ holds the format version, step, rank and the
//                              JSON state of the optimizer, scheduler, loader and generator
//                              (safetensors allows only strings there: JSON text)
//   DONE                       written last, after every rank's files are durable (a
//                              barrier with several ranks): JSON with the format version,
//                              step, world size and every file's size. A folder without it
//                              is an unfinished save and is never loaded.
// Every file is written with io::AtomicFile (temporary file, fsync, rename, fsync of the
// folder), so a crash at any moment leaves the previous checkpoint loadable.
#pragma once
#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tessera/amp/grad_scaler.hpp"
#include "tessera/data/dataloader.hpp"
#include "tessera/io/saved_state.hpp"
#include "tessera/nn/module.hpp"
#include "tessera/optim/lr_scheduler.hpp"
#include "tessera/optim/optimizer.hpp"
#include "tessera/random.hpp"

namespace tessera::io {

/// The format version written into every checkpoint (DONE and each state file).
constexpr int kCheckpointVersion = 1;

/// What load() found: the step saved, the user metadata, and (non-strict) what it skipped.
struct CheckpointInfo {
  int64_t step = 0;
  std::map<std::string, std::string> metadata;
  /// Non-strict loads only: "missing model key 'fc.bias'", "optimizer state absent", ...
  std::vector<std::string> skipped;
};

/// The objects one checkpoint saves and restores, by reference (they must outlive it):
///   io::Checkpoint ckpt;
///   ckpt.model(net).optimizer(opt).scheduler(sched).loader(train_loader)
///       .generator(default_generator());
///   ckpt.save("ckpt/step-00000100", 100);         ...      ckpt.load("ckpt/step-00000100");
/// Everything registered is saved; load() restores everything registered.
class Checkpoint {
 public:
  Checkpoint& model(nn::Module& m) { model_ = &m; return *this; }
  Checkpoint& optimizer(optim::Optimizer& o) { optimizer_ = &o; return *this; }
  Checkpoint& scheduler(optim::LRScheduler& s) { scheduler_ = &s; return *this; }
  Checkpoint& loader(data::ResumableLoader& l) { loader_ = &l; return *this; }
  Checkpoint& generator(Generator& g) { generator_ = &g; return *this; }
  /// The loss scale and its good-step count (a disabled scaler saves and restores nothing).
  Checkpoint& scaler(amp::GradScaler& s) { scaler_ = &s; return *this; }
  /// Several processes (data parallel): this process's rank in [0, world_size) and a
  /// function that returns when every rank has called it (ProcessGroup::barrier). Rank 0
  /// writes the model and DONE; each rank writes its own state file. Throws ValueError for
  /// a rank outside [0, world_size) or a missing barrier with world_size > 1.
  Checkpoint& distributed(int rank, int world_size, std::function<void()> barrier);

  /// Writes the checkpoint folder dir (created with its parents if missing) for `step`,
  /// with string metadata of the user's. An existing checkpoint in dir is replaced: its DONE
  /// is removed first, so a crash mid-save leaves dir unfinished (never mixed) and the
  /// previous checkpoints intact. Throws IOError naming the file and the failing step.
  void save(const std::string& dir, int64_t step, const std::map<std::string, std::string>& metadata = {}) const;

  /// Restores every registered object from the checkpoint folder dir.
  /// strict: every model key present with its shape and dtype, no unexpected key, and a
  /// saved state for every registered object; otherwise one ValueError lists every
  /// problem by name. Non-strict: what does not fit is skipped and listed in the result.
  /// A folder without DONE, a file missing, truncated, of the wrong size or corrupt is an
  /// IOError naming the file and what is wrong. All is read and checked before anything
  /// changes; a failed load leaves the model, optimizer and the rest as they were.
  CheckpointInfo load(const std::string& dir, bool strict = true);

 private:
  nn::Module* model_ = nullptr;
  optim::Optimizer* optimizer_ = nullptr;
  optim::LRScheduler* scheduler_ = nullptr;
  data::ResumableLoader* loader_ = nullptr;
  Generator* generator_ = nullptr;
  amp::GradScaler* scaler_ = nullptr;
  int rank_ = 0, world_size_ = 1;
  std::function<void()> barrier_;
};

/// Whether dir holds a finished checkpoint (a DONE file that parses).
bool is_checkpoint(const std::string& dir);

struct CheckpointManagerOptions {
  /// maybe_save(step) saves when step is a multiple of it (0: never).
  int64_t save_every = 0;
  /// Finished checkpoints kept: older ones are removed after a new one is finished
  /// (0 keeps all).
  int keep_last = 3;
};

/// Checkpoints of one run under a root folder, one subfolder per step
/// ("<root>/step-00000120"), the last keep_last kept:
///   io::CheckpointManagerOptions o; o.save_every = 500; o.keep_last = 3;
///   io::CheckpointManager manager("ckpt", ckpt, o);
///   if (auto last = manager.latest()) ckpt.load(*last);
///   ... after each step:  manager.maybe_save(step);
class CheckpointManager {
 public:
  /// Creates root if missing. Throws IOError when it cannot, ValueError for a negative
  /// save_every or keep_last.
  CheckpointManager(std::string root, const Checkpoint& checkpoint, CheckpointManagerOptions options = {});
  /// Saves when save_every > 0 and step % save_every == 0; returns whether it saved.
  bool maybe_save(int64_t step, const std::map<std::string, std::string>& metadata = {});
  /// Saves "<root>/step-<step>" now, then removes finished checkpoints beyond keep_last and
  /// unfinished ones older than it. Returns its folder.
  std::string save(int64_t step, const std::map<std::string, std::string>& metadata = {});
  /// Finished checkpoints, oldest step first.
  std::vector<std::string> list() const;
  /// The newest finished checkpoint, if any.
  std::optional<std::string> latest() const;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  const Checkpoint& checkpoint_;
  CheckpointManagerOptions options_;
};

/// Turns SIGINT and SIGTERM into a request a training loop polls, so it can finish the
/// current step, write a checkpoint and exit with 128 + the signal (130 / 143, as a shell
/// reports a process killed by it). The previous handlers are restored by the destructor.
/// A second signal while the first is pending restores the default action and re-raises
/// it (the user insists: stop now). One guard at a time per process.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  /// The signal received (SIGINT or SIGTERM), or 0.
  int requested() const;
  /// 128 + requested().
  int exit_status() const { return 128 + requested(); }

 private:
  struct sigaction old_int_, old_term_;
};

}  // namespace tessera::io
