#!/usr/bin/env bash
# Builds Tessera and trains examples/mnist_conv on Fashion-MNIST (README's main-job command).
# Extra arguments go to mnist_conv, e.g.  scripts/train.sh --epochs 3 --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_CUDA="${TESSERA_CUDA:-AUTO}"
cmake --build build -j"$(nproc)" --target mnist_conv
exec build/examples/mnist_conv/mnist_conv "$@"
