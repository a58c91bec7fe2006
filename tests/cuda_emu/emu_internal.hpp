// Shared between the emulator's runtime (emu_runtime.cpp) and scheduler (emu_scheduler.cpp).
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace tessera_emu {

/// Makes `error` the value the next cudaGetLastError / cudaPeekAtLastError / synchronising
/// call returns, and prints `message` (cuda-emu: ...) so a failing test says what happened.
void record_launch_failure(cudaError_t error, const std::string& message);
/// Runs the cudaMemcpyAsync copies to/from pinned memory queued since the last wait.
void flush_pending_copies();
/// The kernel running now (for the memory-fault report), or nullptr.
const char*& running_work();
/// Makes sure the emulator's memory-fault report handles SIGSEGV/SIGBUS (cheap when it does).
void install_fault_handler();
/// Records a failure when `stream` is not 0 and not a stream created by cudaStreamCreate*.
void check_stream(cudaStream_t stream, const char* what);

}  // namespace tessera_emu
