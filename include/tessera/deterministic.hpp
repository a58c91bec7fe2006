// Deterministic mode, as torch.use_deterministic_algorithms: when it is on, every op either
// takes a path whose results are bit-identical from run to run (no floating-point atomics,
// deterministic cuDNN algorithms) or throws instead of computing.
#pragma once

namespace tessera {

/// Turns deterministic mode on or off for the whole process (all threads), as
/// torch.use_deterministic_algorithms(mode). Off by default.
void set_deterministic(bool on);
/// Whether deterministic mode is on (torch.are_deterministic_algorithms_enabled()).
bool deterministic();

/// Called by an op (or a backend path) that has no deterministic implementation, before it
/// computes anything: throws UnsupportedError "<op>: has no deterministic implementation
/// (<why>); set_deterministic(true) is on" when deterministic mode is on, else does nothing.
/// `why` says what is not deterministic ("float atomicAdd of gradients into shared rows").
void alert_not_deterministic(const char* op, const char* why);

}  // namespace tessera
