// Runs emulated kernels: each CUDA thread of a block is a fiber (Boost.Context) on the
// launching host thread; blocks run one after another. See emu_device.hpp for the model.
#include <sys/mman.h>
#include <unistd.h>

#include <boost/context/fiber.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "emu_device.hpp"
#include "emu_internal.hpp"

namespace tessera_emu {

namespace {

constexpr std::size_t kStackBytes = std::size_t(256) << 10;
constexpr int kMaxThreads = 1024;

enum class State { Runnable, AtBlockBarrier, AtWarpExchange, Done };

namespace bc = boost::context;

struct Fiber {
  bc::fiber self;  // resumed by the scheduler
  bc::fiber main;  // the scheduler, resumed to suspend this thread
  uint3 tid{0, 0, 0};
  State state = State::Runnable;
  const char* barrier_file = nullptr;  // the __syncthreads this thread waits at
  int barrier_line = 0;
  // warp exchange
  alignas(16) unsigned char value[16];
  std::size_t bytes = 0;
  unsigned mask = 0;
};

struct Block {
  std::vector<Fiber> fibers;
  int current = -1;
  const std::function<void()>* body = nullptr;
  std::string failure;  // first failure of any thread, empty when none
};

thread_local Block* t_block = nullptr;
thread_local unsigned long long t_block_epoch = 0;  // one per run_block, for poison_shared

/// Fiber stacks, kept for the life of the process (never touched pages cost nothing).
std::vector<void*>& stack_pool() {
  static thread_local std::vector<void*> pool;
  return pool;
}

void* stack_for(int i) {
  auto& pool = stack_pool();
  while (int(pool.size()) <= i) {
    // A guard page below each stack (stacks grow down): an overflow faults instead of
    // overwriting the next fiber's stack.
    const std::size_t guard = std::size_t(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, kStackBytes + guard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("cuda-emu: cannot map a fiber stack");
    mprotect(m, guard, PROT_NONE);
    pool.push_back(static_cast<char*>(m) + guard);
  }
  return pool[std::size_t(i)];
}

/// Boost.Context stack allocator handing out thread i's stack from the pool (kept, not freed).
struct PooledStack {
  int index;
  bc::stack_context allocate() {
    bc::stack_context sc;
    sc.size = kStackBytes;
    sc.sp = static_cast<char*>(stack_for(index)) + kStackBytes;  // stacks grow down
    return sc;
  }
  void deallocate(bc::stack_context&) noexcept {}
};

/// The body of one CUDA thread.
bc::fiber thread_main(Block* b, int index, bc::fiber&& main) {
  Fiber& f = b->fibers[std::size_t(index)];
  f.main = std::move(main);
  try {
    (*b->body)();
  } catch (const bc::detail::forced_unwind&) {
    throw;  // the scheduler abandoned this block: let Boost.Context unwind the stack
  } catch (const std::exception& e) {
    if (b->failure.empty()) b->failure = std::string("a thread threw: ") + e.what();
  } catch (...) {
    if (b->failure.empty()) b->failure = "a thread threw an unknown exception";
  }
  f.state = State::Done;
  return std::move(f.main);
}

std::string thread_str(const Fiber& f) {
  std::ostringstream s;
  s << "threadIdx (" << f.tid.x << "," << f.tid.y << "," << f.tid.z << ") blockIdx (" << t_block_idx.x << ","
    << t_block_idx.y << "," << t_block_idx.z << ")";
  return s.str();
}

/// Suspends the running fiber with the given state and returns when the scheduler resumes it.
void suspend(State s) {
  Block* b = t_block;
  if (b == nullptr || b->current < 0) throw std::logic_error("cuda-emu: device built-in called outside a kernel");
  Fiber& f = b->fibers[std::size_t(b->current)];
  f.state = s;
  f.main = std::move(f.main).resume();
}

/// Thread order between barriers (TESSERA_EMU_ORDER): 0 forward, 1 reverse, 2 shuffle (the
/// default: a random order per pass), 3 warps (one warp at a time runs as far as it can, to a
/// __syncthreads or its end, its shuffles released as soon as its lanes arrive: a warp races
/// ahead of the others, as it may on a GPU, which exposes a missing barrier before shared
/// memory is reused).
int order_mode() {
  static const int mode = [] {
    const char* e = std::getenv("TESSERA_EMU_ORDER");
    if (e == nullptr || std::string(e) == "shuffle") return 2;
    if (std::string(e) == "forward") return 0;
    if (std::string(e) == "reverse") return 1;
    if (std::string(e) == "warps") return 3;
    std::fprintf(stderr, "cuda-emu: TESSERA_EMU_ORDER=%s is not forward, reverse, shuffle or warps; using shuffle\n", e);
    return 2;
  }();
  return mode;
}

/// Releases warp w when every live lane waits at a shuffle: 1 released, 0 not ready,
/// -1 a failure (b.failure says which lane named in a mask is missing).
int release_warp(Block& b, int w, int nthreads) {
  const int lo = w * 32, hi = std::min(nthreads, lo + 32);
  int waiting = 0, other = 0;
  for (int l = lo; l < hi; ++l) {
    const State st = b.fibers[std::size_t(l)].state;
    waiting += st == State::AtWarpExchange;
    other += st != State::AtWarpExchange && st != State::Done;
  }
  if (waiting == 0 || other != 0) return 0;
  // Every lane named in a waiting lane's mask must be waiting too.
  for (int l = lo; l < hi; ++l) {
    const Fiber& f = b.fibers[std::size_t(l)];
    if (f.state != State::AtWarpExchange) continue;
    for (int k = 0; k < 32; ++k) {
      if (!(f.mask >> k & 1u)) continue;
      const int lane = lo + k;
      // CUDA: every non-exited lane named in the mask must take part (an exited one may not,
      // but reading its value is undefined: warp_exchange reports that).
      if (lane < hi && b.fibers[std::size_t(lane)].state != State::AtWarpExchange &&
          b.fibers[std::size_t(lane)].state != State::Done) {
        std::ostringstream m;
        m << "warp shuffle with mask 0x" << std::hex << f.mask << std::dec << " by " << thread_str(f) << ", but lane "
          << k << " is elsewhere";
        b.failure = m.str();
        return -1;
      }
    }
  }
  for (int l = lo; l < hi; ++l)
    if (b.fibers[std::size_t(l)].state == State::AtWarpExchange) b.fibers[std::size_t(l)].state = State::Runnable;
  return 1;
}

/// Resumes thread i until it suspends or ends; false on a failure.
bool resume(Block& b, int i) {
  Fiber& f = b.fibers[std::size_t(i)];
  b.current = i;
  t_thread_idx = f.tid;
  f.self = std::move(f.self).resume();
  b.current = -1;
  return b.failure.empty();
}

/// Runs one block to completion; returns false (with b.failure set) on a failure.
bool run_block(Block& b, int nthreads, std::mt19937& rng) {
  std::vector<int> order(std::size_t(nthreads), 0);
  for (int i = 0; i < nthreads; ++i) order[std::size_t(i)] = i;
  if (order_mode() == 1) std::reverse(order.begin(), order.end());
  const dim3 bd = t_block_dim;
  for (int i = 0; i < nthreads; ++i) {
    Fiber& f = b.fibers[std::size_t(i)];
    f.tid = uint3{unsigned(i % int(bd.x)), unsigned((i / int(bd.x)) % int(bd.y)), unsigned(i / int(bd.x * bd.y))};
    f.state = State::Runnable;
    Block* bp = &b;
    f.self = bc::fiber(std::allocator_arg, PooledStack{i},
                       [bp, i](bc::fiber&& main) { return thread_main(bp, i, std::move(main)); });
  }
  const int nwarps = (nthreads + 31) / 32;
  std::vector<int> warp_order(std::size_t(nwarps), 0);
  for (int w = 0; w < nwarps; ++w) warp_order[std::size_t(w)] = w;
  ++t_block_epoch;
  for (;;) {
    bool ran = false;
    if (order_mode() == 3) {
      std::shuffle(warp_order.begin(), warp_order.end(), rng);
      for (int w : warp_order) {
        const int lo = w * 32, hi = std::min(nthreads, lo + 32);
        for (int rel = 1; rel == 1;) {
          for (int l = lo; l < hi; ++l) {
            if (b.fibers[std::size_t(l)].state != State::Runnable) continue;
            ran = true;
            if (!resume(b, l)) return false;
          }
          rel = release_warp(b, w, nthreads);
          if (rel < 0) return false;
        }
      }
    }
    if (order_mode() == 2) std::shuffle(order.begin(), order.end(), rng);
    for (int i : order) {
      if (b.fibers[std::size_t(i)].state != State::Runnable) continue;
      ran = true;
      if (!resume(b, i)) return false;
    }
    // Barriers: release a warp whose live lanes all wait at an exchange; the block when all
    // live threads wait at __syncthreads.
    int live = 0, at_block = 0, at_warp = 0;
    for (const Fiber& f : b.fibers) {
      if (f.state == State::Done) continue;
      ++live;
      at_block += f.state == State::AtBlockBarrier;
      at_warp += f.state == State::AtWarpExchange;
    }
    if (live == 0) return true;
    bool released = false;
    for (int w = 0; w < nwarps; ++w) {
      const int rel = release_warp(b, w, nthreads);
      if (rel < 0) return false;
      released |= rel == 1;
    }
    if (!released && at_block == live) {
      // CUDA allows __syncthreads in conditional code only when the condition is the same for
      // the whole block: a thread that exited without reaching this barrier breaks the rule.
      if (live < nthreads) {
        std::ostringstream s;
        s << at_block << " threads wait at __syncthreads but " << (nthreads - live)
          << " threads of the block exited without reaching it (a barrier after an early return or in "
             "divergent code)";
        b.failure = s.str();
        return false;
      }
      const Fiber* first = nullptr;
      for (const Fiber& f : b.fibers) {
        if (f.state != State::AtBlockBarrier) continue;
        if (first == nullptr) {
          first = &f;
        } else if (f.barrier_line != first->barrier_line || std::strcmp(f.barrier_file, first->barrier_file) != 0) {
          std::ostringstream m;
          m << thread_str(*first) << " waits at the __syncthreads of " << first->barrier_file << ":"
            << first->barrier_line << " but " << thread_str(f) << " at the one of " << f.barrier_file << ":"
            << f.barrier_line << " (CUDA requires every thread of a block to reach the same barrier)";
          b.failure = m.str();
          return false;
        }
      }
      for (Fiber& f : b.fibers)
        if (f.state == State::AtBlockBarrier) f.state = State::Runnable;
      released = true;
    }
    if (!released && !ran) {
      std::ostringstream s;
      s << "deadlock: of " << live << " live threads, " << at_block << " wait at __syncthreads and " << at_warp
        << " at a warp shuffle (a barrier in divergent code?)";
      b.failure = s.str();
      return false;
    }
  }
}

}  // namespace

int lane_id() {
  Block* b = t_block;
  if (b == nullptr || b->current < 0) throw std::logic_error("cuda-emu: device built-in called outside a kernel");
  return b->current % 32;
}

void sync_block(const char* file, int line) {
  Block* b = t_block;
  if (b == nullptr || b->current < 0) throw std::logic_error("cuda-emu: __syncthreads called outside a kernel");
  Fiber& f = b->fibers[std::size_t(b->current)];
  f.barrier_file = file;
  f.barrier_line = line;
  suspend(State::AtBlockBarrier);
}

void poison_shared(void* p, std::size_t bytes) {
  static thread_local std::map<void*, unsigned long long> seen;
  unsigned long long& e = seen[p];
  if (e != t_block_epoch) {
    e = t_block_epoch;
    std::memset(p, 0xFF, bytes);
  }
}

long long max_grid() {
  static const long long cap = [] {
    const char* e = std::getenv("TESSERA_EMU_MAX_GRID");
    return e != nullptr ? std::strtoll(e, nullptr, 10) : 0LL;
  }();
  return cap;
}

void warp_exchange(const void* in, void* out, std::size_t bytes, int src_lane, unsigned mask) {
  Block* b = t_block;
  if (b == nullptr || b->current < 0) throw std::logic_error("cuda-emu: warp shuffle called outside a kernel");
  const int me = b->current;
  {
    Fiber& f = b->fibers[std::size_t(me)];
    std::memcpy(f.value, in, bytes);
    f.bytes = bytes;
    f.mask = mask;
  }
  suspend(State::AtWarpExchange);
  // Every lane of the warp has deposited its value and none can deposit again before all
  // have read: a lane that runs on reaches its next exchange, which waits for everyone.
  const int src = src_lane < 0 ? me : (me / 32) * 32 + src_lane % 32;
  // release_warp checked that every live lane in the mask waited here: their values are valid.
  const bool src_ok = src < int(b->fibers.size()) && (mask >> (src % 32) & 1u) &&
                      b->fibers[std::size_t(src)].state != State::Done;
  if (!src_ok && b->failure.empty())
    b->failure = "warp shuffle by " + thread_str(b->fibers[std::size_t(me)]) + " reads lane " + std::to_string(src % 32) +
                 ", which is not in the mask, has exited or does not exist (undefined on a GPU)";
  const Fiber& s = b->fibers[std::size_t(src_ok ? src : me)];
  std::memcpy(out, s.value, bytes);
  // Second phase so that a fast lane cannot overwrite its value before slower ones read it.
  b->fibers[std::size_t(me)].mask = mask;
  suspend(State::AtWarpExchange);
}

void reject_host_pointer_argument(const char* name, int index, const void* p) {
  std::ostringstream s;
  s << "kernel " << name << ": argument " << index << " (" << p
    << ") is not device memory (a host pointer passed to a kernel faults on a GPU)";
  record_launch_failure(cudaErrorIllegalAddress, s.str());
}

void reject_foreign_device_argument(const char* name, int index, const void* p) {
  record_launch_failure(cudaErrorIllegalAddress,
                        std::string("kernel ") + name + ": argument " + std::to_string(index) + ": " + wrong_device(p));
}

void run_kernel(const LaunchConfig& cfg, const char* name, const std::function<void()>& body) {
  const dim3 g = cfg.grid, bl = cfg.block;
  const long long nthreads = (long long)bl.x * bl.y * bl.z;
  std::ostringstream bad;
  if (g.x == 0 || g.y == 0 || g.z == 0 || nthreads == 0)
    bad << "empty grid or block";
  else if (nthreads > kMaxThreads || bl.x > 1024 || bl.y > 1024 || bl.z > 64)
    bad << "block (" << bl.x << "," << bl.y << "," << bl.z << ") exceeds 1024 threads or the per-dimension limits";
  else if (g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535)
    bad << "grid (" << g.x << "," << g.y << "," << g.z << ") exceeds the limits";
  else if (cfg.max_threads > 0 && nthreads > cfg.max_threads)
    bad << "block of " << nthreads << " threads exceeds the kernel's __launch_bounds__(" << cfg.max_threads
        << ") (a GPU refuses the launch: too many resources requested)";
  else if (cfg.shared_bytes > 48 * 1024)
    bad << "dynamic shared memory " << cfg.shared_bytes << " bytes exceeds 48 KiB without opt-in";
  if (!bad.str().empty()) {
    record_launch_failure(cudaErrorInvalidConfiguration, std::string("kernel ") + name + ": " + bad.str());
    return;
  }
  check_stream(cfg.stream, name);
  install_fault_handler();
  DeviceAccess access;
  struct Running {
    const char* saved = running_work();
    explicit Running(const char* n) { running_work() = n; }
    ~Running() { running_work() = saved; }
  } running(name);
  Block b;
  b.body = &body;
  b.fibers.resize(std::size_t(nthreads));
  struct Current {  // t_block points at this launch's block while it runs, even on a throw
    Block* saved = t_block;
    explicit Current(Block* b) { t_block = b; }
    ~Current() { t_block = saved; }
  } current(&b);
  t_grid_dim = g;
  t_block_dim = bl;
  static thread_local unsigned long long launches = 0;
  std::mt19937 rng(unsigned(++launches));
  // Blocks run one at a time, in a shuffled order too (an affine permutation of the linear
  // block index, so no memory per block): a kernel whose result depends on the order of its
  // blocks is wrong on a GPU, where they run concurrently in no fixed order.
  const unsigned long long nblocks = (unsigned long long)g.x * g.y * g.z;
  unsigned long long mul = 1, add = 0;
  if (order_mode() != 0 && nblocks > 1) {
    std::uniform_int_distribution<unsigned long long> pick(1, nblocks - 1);
    do mul = pick(rng); while (std::gcd(mul, nblocks) != 1);
    add = pick(rng);
    if (order_mode() == 1) { mul = nblocks - 1; add = nblocks - 1; }  // reverse: i -> N-1-i
  }
  for (unsigned long long i = 0; i < nblocks; ++i) {
    const auto j = (unsigned long long)(((unsigned __int128)mul * i + add) % nblocks);
    const unsigned x = unsigned(j % g.x), y = unsigned((j / g.x) % g.y), z = unsigned(j / (g.x * (unsigned long long)g.y));
    t_block_idx = uint3{x, y, z};
    if (!run_block(b, int(nthreads), rng)) {
      std::string msg = std::string("kernel ") + name + " failed in block (" + std::to_string(x) + "," +
                        std::to_string(y) + "," + std::to_string(z) + "): " + b.failure;
      record_launch_failure(cudaErrorLaunchFailure, msg);
      return;
    }
  }
}

}  // namespace tessera_emu
