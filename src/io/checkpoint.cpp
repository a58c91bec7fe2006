// io::Checkpoint, CheckpointManager and InterruptGuard (see io/checkpoint.hpp for the
// folder layout and the crash-safety argument).
#include "tessera/io/checkpoint.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"
#include "tessera/io/atomic_file.hpp"
#include "tessera/io/safetensors.hpp"

namespace tessera::io {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kDoneFile = "DONE";
constexpr const char* kOptimizerPrefix = "optimizer.";

std::string state_file(int rank) { return "state-rank" + std::to_string(rank) + ".safetensors"; }

std::string join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

[[noreturn]] void bad(const std::string& file, const std::string& what) {
  throw IOError("checkpoint " + file + ": " + what);
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IOError("checkpoint " + dir + ": cannot create the folder: " + ec.message());
  if (!fs::is_directory(dir)) throw IOError("checkpoint " + dir + ": exists and is not a folder");
}

std::string read_small_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) bad(path, std::string("cannot open: ") + std::strerror(errno));
  std::string s;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    s.append(buf, n);
    if (s.size() > (1u << 20)) {
      std::fclose(f);
      bad(path, "larger than 1 MiB: not a DONE marker");
    }
  }
  std::fclose(f);
  return s;
}

/// DONE's content, checked: a JSON object of the format with a step and file sizes.
json read_done(const std::string& dir) {
  const std::string path = join(dir, kDoneFile);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    bad(dir, "not a finished checkpoint: no DONE marker (the save did not finish, or this is not a checkpoint folder)");
  json done = json::parse(read_small_file(path), nullptr, false);
  if (done.is_discarded() || !done.is_object()) bad(path, "is not JSON");
  auto fmt = done.find("format");
  if (fmt == done.end() || *fmt != "tessera.checkpoint") bad(path, "is not a Tessera checkpoint marker");
  auto ver = done.find("version");
  if (ver == done.end() || !ver->is_number_integer()) bad(path, "has no format version");
  if (ver->get<int>() > kCheckpointVersion)
    bad(path, "format version " + std::to_string(ver->get<int>()) + " is newer than this Tessera reads (" +
                  std::to_string(kCheckpointVersion) + ")");
  auto step = done.find("step");
  auto ws = done.find("world_size");
  auto files = done.find("files");
  if (step == done.end() || !step->is_number_integer() || ws == done.end() || !ws->is_number_integer() ||
      ws->get<int>() < 1 || files == done.end() || !files->is_object())
    bad(path, "lacks step, world_size or files");
  for (const auto& kv : files->items()) {
    if (!kv.value().is_number_unsigned()) bad(path, "file size of " + kv.key() + " is not a count");
    const std::string f = join(dir, kv.key());
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec) bad(f, "missing (listed in DONE): " + ec.message());
    if (size != kv.value().get<uint64_t>())
      bad(f, "has " + std::to_string(size) + " bytes, DONE says " + std::to_string(kv.value().get<uint64_t>()) +
                 " (truncated or replaced)");
  }
  return done;
}

std::string metadata_string(const Metadata& m, const char* key, const std::string& file) {
  auto it = m.find(key);
  if (it == m.end()) bad(file, std::string("metadata has no \"") + key + "\"");
  return it->second;
}

int64_t parse_int(const std::string& s, const char* what, const std::string& file) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0) bad(file, std::string("metadata \"") + what + "\" is not an integer: " + s);
  return v;
}

}  // namespace

Checkpoint& Checkpoint::distributed(int rank, int world_size, std::function<void()> barrier) {
  TESSERA_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, ValueError, "Checkpoint::distributed: rank ",
                rank, " is not in [0, ", world_size, ")");
  TESSERA_CHECK(world_size == 1 || barrier, ValueError,
                "Checkpoint::distributed: world_size ", world_size, " needs a barrier function");
  rank_ = rank;
  world_size_ = world_size;
  barrier_ = std::move(barrier);
  return *this;
}

void Checkpoint::save(const std::string& dir, int64_t step, const std::map<std::string, std::string>& metadata) const {
  TESSERA_CHECK(step >= 0, ValueError, "Checkpoint::save: step must be >= 0, got ", step);
  auto barrier = [&] {
    if (world_size_ > 1) barrier_();
  };
  make_dirs(dir);
  if (rank_ == 0) {
    // Unpublish an older checkpoint of this folder before any of its files change.
    const std::string done = join(dir, kDoneFile);
    if (::unlink(done.c_str()) != 0 && errno != ENOENT)
      bad(done, std::string("cannot remove the old marker: ") + std::strerror(errno));
    fsync_directory(dir);
  }
  barrier();

  // This rank's state file.
  TensorMap tensors;
  Metadata meta;
  meta["tessera.checkpoint"] = std::to_string(kCheckpointVersion);
  meta["step"] = std::to_string(step);
  meta["rank"] = std::to_string(rank_);
  meta["world_size"] = std::to_string(world_size_);
  meta["user"] = json(metadata).dump();
  if (optimizer_) {
    SavedState s = optimizer_->state_dict();
    for (auto& kv : s.tensors) tensors[kOptimizerPrefix + kv.first] = std::move(kv.second);
    meta["optimizer"] = s.json;
  }
  if (scheduler_) meta["scheduler"] = scheduler_->state_dict().json;
  if (loader_) meta["loader"] = loader_->state_dict().json;
  if (scaler_) meta["scaler"] = scaler_->state_dict().json;
  if (generator_) meta["generator"] = json{{"seed", generator_->seed()}, {"offset", generator_->offset()}}.dump();
  save_safetensors(join(dir, state_file(rank_)), tensors, meta);
  if (rank_ == 0 && model_) save_safetensors(join(dir, kModelFile), model_->state_dict(), {{"format", "pt"}});
  barrier();

  if (rank_ == 0) {
    json files = json::object();
    std::vector<std::string> names;
    if (model_) names.push_back(kModelFile);
    for (int r = 0; r < world_size_; ++r) names.push_back(state_file(r));
    for (const auto& n : names) {
      std::error_code ec;
      const auto size = fs::file_size(join(dir, n), ec);
      if (ec) bad(join(dir, n), "missing after the save (did every rank write its state?): " + ec.message());
      files[n] = size;
    }
    json done = {{"format", "tessera.checkpoint"}, {"version", kCheckpointVersion}, {"step", step},
                 {"world_size", world_size_},     {"files", files}};
    write_file_atomically(join(dir, kDoneFile), done.dump(1) + "\n");
  }
  barrier();
}

CheckpointInfo Checkpoint::load(const std::string& dir, bool strict) {
  // ---- read and check everything ---------------------------------------------------------
  const json done = read_done(dir);
  const int world = done["world_size"].get<int>();
  if (world != world_size_)
    throw ValueError(detail::str_cat("Checkpoint::load: ", dir, " was saved by ", world,
                                     " processes; this run has ", world_size_));
  const std::string state_path = join(dir, state_file(rank_));
  Metadata meta;
  TensorMap state_tensors = load_safetensors(state_path, &meta);
  const std::string version = metadata_string(meta, "tessera.checkpoint", state_path);
  if (parse_int(version, "tessera.checkpoint", state_path) > kCheckpointVersion)
    bad(state_path, "format version " + version + " is newer than this Tessera reads");
  CheckpointInfo info;
  info.step = parse_int(metadata_string(meta, "step", state_path), "step", state_path);
  if (info.step != done["step"].get<int64_t>())
    bad(state_path, "is for step " + std::to_string(info.step) + ", DONE says " +
                        std::to_string(done["step"].get<int64_t>()) + " (files from different saves)");
  {
    json user = json::parse(metadata_string(meta, "user", state_path), nullptr, false);
    if (user.is_discarded() || !user.is_object()) bad(state_path, "metadata \"user\" is not a JSON object");
    for (const auto& kv : user.items()) {
      if (!kv.value().is_string()) bad(state_path, "user metadata \"" + kv.key() + "\" is not a string");
      info.metadata[kv.key()] = kv.value().get<std::string>();
    }
  }

  std::vector<std::string> problems;
  auto problem = [&](const std::string& p) {
    if (strict) problems.push_back(p);
    else info.skipped.push_back(p);
  };

  // The model: keys, shapes and dtypes, all listed.
  nn::StateDict model_state;
  if (model_) {
    const std::string model_path = join(dir, kModelFile);
    if (!done["files"].contains(kModelFile)) {
      problem("the checkpoint has no model (" + model_path + ")");
    } else {
      TensorMap saved = load_safetensors(model_path);
      const nn::StateDict own = model_->state_dict();
      for (const auto& kv : own) {
        auto it = saved.find(kv.first);
        if (it == saved.end()) {
          problem("missing model key '" + kv.first + "'");
        } else if (it->second.shape() != kv.second.shape()) {
          problem("model key '" + kv.first + "' has shape " + shape_str(it->second.shape()) + " in the checkpoint, " +
                  shape_str(kv.second.shape()) + " in the model");
        } else if (it->second.dtype() != kv.second.dtype()) {
          problem("model key '" + kv.first + "' has dtype " + dtype_name(it->second.dtype()) + " in the checkpoint, " +
                  dtype_name(kv.second.dtype()) + " in the model");
        } else {
          model_state[kv.first] = it->second;
        }
      }
      for (const auto& kv : saved)
        if (!own.count(kv.first)) problem("unexpected model key '" + kv.first + "'");
    }
  }
  auto part = [&](const char* key, bool registered) -> std::optional<std::string> {
    auto it = meta.find(key);
    if (!registered) return std::nullopt;
    if (it == meta.end()) {
      problem(std::string("the checkpoint has no ") + key + " state");
      return std::nullopt;
    }
    return it->second;
  };
  std::optional<SavedState> opt_state;
  if (auto j = part("optimizer", optimizer_ != nullptr)) {
    SavedState s;
    s.json = *j;
    for (auto& kv : state_tensors)
      if (kv.first.rfind(kOptimizerPrefix, 0) == 0) s.tensors[kv.first.substr(std::strlen(kOptimizerPrefix))] = kv.second;
    opt_state = std::move(s);
  }
  std::optional<SavedState> sched_state, loader_state;
  if (auto j = part("scheduler", scheduler_ != nullptr)) sched_state = SavedState{{}, *j};
  if (auto j = part("loader", loader_ != nullptr)) loader_state = SavedState{{}, *j};
  // A scaler saved disabled ("{}") or restored into a disabled one: nothing to restore.
  std::optional<SavedState> scaler_state;
  if (auto j = part("scaler", scaler_ != nullptr && scaler_->is_enabled()))
    if (*j != "{}") scaler_state = SavedState{{}, *j};
  std::optional<std::pair<uint64_t, uint64_t>> gen_state;
  if (auto j = part("generator", generator_ != nullptr)) {
    json g = json::parse(*j, nullptr, false);
    if (g.is_discarded() || !g.is_object() || !g.contains("seed") || !g.contains("offset") ||
        !g["seed"].is_number_unsigned() || !g["offset"].is_number_unsigned())
      bad(state_path, "metadata \"generator\" is not {\"seed\": n, \"offset\": n}");
    gen_state = std::make_pair(g["seed"].get<uint64_t>(), g["offset"].get<uint64_t>());
  }
  if (!problems.empty()) {
    std::ostringstream os;
    os << "Checkpoint::load: " << dir << " does not fit what is being restored (" << problems.size() << " problem"
       << (problems.size() == 1 ? "" : "s") << "; load with strict=false to skip them):";
    for (const auto& p : problems) os << "\n  " << p;
    throw ValueError(os.str());
  }

  // ---- apply: each part restores atomically; on a failure the parts already restored are
  // put back from snapshots, so the objects end as they were ----------------------------------
  std::vector<std::function<void()>> undo;
  try {
    if (opt_state) {
      SavedState before = optimizer_->state_dict();
      optimizer_->load_state_dict(*opt_state);
      undo.push_back([this, before] { optimizer_->load_state_dict(before); });
    }
    if (sched_state) {
      SavedState before = scheduler_->state_dict();
      scheduler_->load_state_dict(*sched_state);
      undo.push_back([this, before] { scheduler_->load_state_dict(before); });
    }
    if (loader_state) {
      SavedState before = loader_->state_dict();
      loader_->load_state_dict(*loader_state);
      undo.push_back([this, before] { loader_->load_state_dict(before); });
    }
    if (scaler_state) {
      SavedState before = scaler_->state_dict();
      scaler_->load_state_dict(*scaler_state);
      undo.push_back([this, before] { scaler_->load_state_dict(before); });
    }
  } catch (const Error& e) {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)();
    throw ValueError(detail::str_cat("Checkpoint::load: ", dir, ": ", e.what(), " (nothing was restored)"));
  }
  if (gen_state) generator_->set_state(gen_state->first, gen_state->second);
  if (model_ && !model_state.empty()) model_->load_state_dict(model_state, /*strict=*/false);
  return info;
}

bool is_checkpoint(const std::string& dir) {
  try {
    read_done(dir);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// ---- CheckpointManager -------------------------------------------------------------------------

namespace {

/// "step-00000120" -> 120; nullopt for other names.
std::optional<int64_t> step_of(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() <= 5) return std::nullopt;
  int64_t v = 0;
  for (std::size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

std::vector<std::pair<int64_t, std::string>> step_folders(const std::string& root) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.is_directory()) continue;
    if (auto s = step_of(e.path().filename().string())) out.emplace_back(*s, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

CheckpointManager::CheckpointManager(std::string root, const Checkpoint& checkpoint, CheckpointManagerOptions options)
    : root_(std::move(root)), checkpoint_(checkpoint), options_(options) {
  TESSERA_CHECK(options.save_every >= 0 && options.keep_last >= 0, ValueError,
                "CheckpointManager: save_every and keep_last must be >= 0, got ", options.save_every, " and ",
                options.keep_last);
  make_dirs(root_);
}

bool CheckpointManager::maybe_save(int64_t step, const std::map<std::string, std::string>& metadata) {
  if (options_.save_every <= 0 || step % options_.save_every != 0) return false;
  save(step, metadata);
  return true;
}

std::string CheckpointManager::save(int64_t step, const std::map<std::string, std::string>& metadata) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  const std::string dir = join(root_, name);
  checkpoint_.save(dir, step, metadata);
  // Prune: finished checkpoints beyond keep_last, unfinished ones older than this one. Only
  // after the new one is finished, so there is always one to resume from.
  std::vector<std::pair<int64_t, std::string>> finished;
  for (const auto& f : step_folders(root_)) {
    if (f.second == dir) {
      finished.push_back(f);
      continue;
    }
    if (is_checkpoint(f.second)) finished.push_back(f);
    else if (f.first < step) fs::remove_all(f.second);
  }
  if (options_.keep_last > 0 && finished.size() > std::size_t(options_.keep_last)) {
    const std::size_t drop = finished.size() - std::size_t(options_.keep_last);
    for (std::size_t i = 0; i < drop; ++i) {
      // Unpublish first (DONE), so a crash mid-removal leaves an unfinished folder, not a
      // finished one with files missing.
      std::error_code ec;
      fs::remove(fs::path(finished[i].second) / kDoneFile, ec);
      fs::remove_all(finished[i].second, ec);
    }
  }
  fsync_directory(root_);
  return dir;
}

std::vector<std::string> CheckpointManager::list() const {
  std::vector<std::string> out;
  for (const auto& f : step_folders(root_))
    if (is_checkpoint(f.second)) out.push_back(f.second);
  return out;
}

std::optional<std::string> CheckpointManager::latest() const {
  auto all = list();
  if (all.empty()) return std::nullopt;
  return all.back();
}

// ---- InterruptGuard --------------------------------------------------------------------------

namespace {
volatile std::sig_atomic_t g_signal = 0;
std::atomic<bool> g_guard_active{false};

extern "C" void tessera_interrupt_handler(int sig) {
  if (g_signal != 0) {  // a second signal: stop now, the default way
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_signal = sig;
}
}  // namespace

InterruptGuard::InterruptGuard() {
  TESSERA_CHECK(!g_guard_active.exchange(true), ValueError,
                "InterruptGuard: another InterruptGuard is active in this process");
  g_signal = 0;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = tessera_interrupt_handler;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int_);
  ::sigaction(SIGTERM, &sa, &old_term_);
}

InterruptGuard::~InterruptGuard() {
  ::sigaction(SIGINT, &old_int_, nullptr);
  ::sigaction(SIGTERM, &old_term_, nullptr);
  g_signal = 0;
  g_guard_active = false;
}

int InterruptGuard::requested() const { return g_signal; }

}  // namespace tessera::io
