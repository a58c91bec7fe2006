#include "tessera/deterministic.hpp"

#include <atomic>
#include <string>

#include "tessera/error.hpp"

namespace tessera {

namespace {
std::atomic<bool> g_deterministic{false};
}

void set_deterministic(bool on) { g_deterministic.store(on, std::memory_order_relaxed); }
bool deterministic() { return g_deterministic.load(std::memory_order_relaxed); }

void alert_not_deterministic(const char* op, const char* why) {
  if (!deterministic()) return;
  throw UnsupportedError(std::string(op) + ": has no deterministic implementation (" + why +
                         "); set_deterministic(true) is on");
}

}  // namespace tessera
