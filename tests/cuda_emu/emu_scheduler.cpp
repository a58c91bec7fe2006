// Runs emulated kernels: each CUDA thread of a block is a fiber (Boost.Context) on the
// launching host thread; blocks run one after another. See emu_device.hpp for the model.
#include <sys/mman.h>

#include <boost/context/fiber.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
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

/// Fiber stacks, kept for the life of the process (never touched pages cost nothing).
std::vector<void*>& stack_pool() {
  static thread_local std::vector<void*> pool;
  return pool;
}

void* stack_for(int i) {
  auto& pool = stack_pool();
  while (int(pool.size()) <= i) {
    void* s = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED) throw std::runtime_error("cuda-emu: cannot map a fiber stack");
    pool.push_back(s);
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

int order_mode() {
  static const int mode = [] {
    const char* e = std::getenv("TESSERA_EMU_ORDER");
    if (e == nullptr || std::string(e) == "shuffle") return 2;
    if (std::string(e) == "forward") return 0;
    if (std::string(e) == "reverse") return 1;
    std::fprintf(stderr, "cuda-emu: TESSERA_EMU_ORDER=%s is not forward, reverse or shuffle; using shuffle\n", e);
    return 2;
  }();
  return mode;
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
  for (;;) {
    if (order_mode() == 2) std::shuffle(order.begin(), order.end(), rng);
    bool ran = false;
    for (int i : order) {
      Fiber& f = b.fibers[std::size_t(i)];
      if (f.state != State::Runnable) continue;
      ran = true;
      b.current = i;
      t_thread_idx = f.tid;
      f.self = std::move(f.self).resume();
      b.current = -1;
      if (!b.failure.empty()) return false;
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
      const int lo = w * 32, hi = std::min(nthreads, lo + 32);
      int waiting = 0, done = 0, other = 0;
      for (int l = lo; l < hi; ++l) {
        const State s = b.fibers[std::size_t(l)].state;
        waiting += s == State::AtWarpExchange;
        done += s == State::Done;
        other += s != State::AtWarpExchange && s != State::Done;
      }
      if (waiting == 0 || other != 0) continue;
      // Every lane named in a waiting lane's mask must be waiting too.
      for (int l = lo; l < hi; ++l) {
        const Fiber& f = b.fibers[std::size_t(l)];
        if (f.state != State::AtWarpExchange) continue;
        for (int k = 0; k < 32; ++k) {
          if (!(f.mask >> k & 1u)) continue;
          const int lane = lo + k;
          if (lane >= hi || b.fibers[std::size_t(lane)].state != State::AtWarpExchange) {
            b.failure = "warp shuffle with mask 0x" + [&] { std::ostringstream s; s << std::hex << f.mask; return s.str(); }() +
                        " by " + thread_str(f) + ", but lane " + std::to_string(k) +
                        (lane >= hi ? " does not exist (block smaller than the warp)" : " has exited");
            return false;
          }
        }
      }
      for (int l = lo; l < hi; ++l)
        if (b.fibers[std::size_t(l)].state == State::AtWarpExchange) b.fibers[std::size_t(l)].state = State::Runnable;
      released = true;
      (void)done;
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

void sync_block() { suspend(State::AtBlockBarrier); }

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
  const Fiber& s = b->fibers[std::size_t(src)];
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
  else if (cfg.shared_bytes > 48 * 1024)
    bad << "dynamic shared memory " << cfg.shared_bytes << " bytes exceeds 48 KiB without opt-in";
  if (!bad.str().empty()) {
    record_launch_failure(cudaErrorInvalidConfiguration, std::string("kernel ") + name + ": " + bad.str());
    return;
  }
  check_stream(cfg.stream, name);
  install_fault_handler();
  DeviceAccess access;
  Block b;
  b.body = &body;
  b.fibers.resize(std::size_t(nthreads));
  Block* saved = t_block;
  t_block = &b;
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
      t_block = saved;
      record_launch_failure(cudaErrorLaunchFailure, msg);
      return;
    }
  }
  t_block = saved;
  count_launch();
}

}  // namespace tessera_emu
