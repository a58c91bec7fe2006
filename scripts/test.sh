#!/usr/bin/env bash
# Builds Tessera and runs the whole test suite (README's test command).
#   scripts/test.sh            Release build in build/, then ctest
#   TESSERA_SANITIZE=1 scripts/test.sh   also an ASan+UBSan build of the unit tests in build-asan/
#   TESSERA_EMULATE_CUDA=0 scripts/test.sh  skips the last stage: the CUDA backend built
#                                          against the emulator (tests/cuda_emu) in build-emu/,
#                                          running the GPU parity suite on the host
# The CUDA backend is compiled when the CUDA toolkit is found (TESSERA_CUDA=AUTO); its GPU
# tests are reported as skipped by CTest when no GPU is usable. The emulator stage runs them
# on the host whenever the CUDA and cuDNN headers are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_CUDA="${TESSERA_CUDA:-AUTO}"
cmake --build build -j"$jobs"
ctest --test-dir build -j"$jobs" --output-on-failure --timeout 600

if [[ "${TESSERA_SANITIZE:-0}" == "1" ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_CUDA=OFF -DTESSERA_SANITIZE=ON \
    -DTESSERA_BUILD_BENCHMARKS=OFF -DTESSERA_BUILD_EXAMPLES=OFF
  cmake --build build-asan -j"$jobs" --target tessera_tests
  # allocator_may_return_null: a request ASan cannot serve (the catalogue asks for 256 TiB)
  # returns null, as malloc does, so Tessera's out-of-memory error is what gets tested.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -j"$jobs" --output-on-failure -R '^unit:' --timeout 900
fi

if [[ "${TESSERA_EMULATE_CUDA:-1}" != "0" ]]; then
  if ls /usr/local/cuda/include/cuda_runtime.h /usr/local/cuda/include/cudnn.h >/dev/null 2>&1 ||
     ls /usr/include/cuda_runtime.h /usr/include/cudnn.h >/dev/null 2>&1; then
    cmake -S . -B build-emu -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_CUDA=EMULATE \
      -DTESSERA_BUILD_BENCHMARKS=ON -DTESSERA_BUILD_EXAMPLES=OFF
    cmake --build build-emu -j"$jobs" --target tessera_cuda_tests tessera_cuda_emu_selftest tessera_bench
    # Each emulator run keeps about one core busy: the parity configurations run side by side.
    ctest --test-dir build-emu -j"$jobs" --output-on-failure -R '^cuda-emu:' --timeout 1800
  else
    echo "test.sh: CUDA emulator stage skipped: no CUDA/cuDNN headers (cuda_runtime.h, cudnn.h)"
  fi
fi
