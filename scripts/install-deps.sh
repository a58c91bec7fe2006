#!/usr/bin/env bash
# Installs the Debian packages Tessera needs to build, test and train (see DESIGN.md).
# Does nothing when they are all present. Runs apt-get as root, or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libeigen3-dev libomp-dev zlib1g-dev nlohmann-json3-dev
  catch2 libbenchmark-dev libcli11-dev
  libdlpack-dev              # the DLPack header (tessera/interop/dlpack.hpp)
  dataset-fashion-mnist
  python3
  python3-jsonschema         # CTest env:json-schema validates tessera-env's JSON (docs/tessera-env.schema.json)
  clang libclang-rt-14-dev   # libFuzzer and the clang sanitizer runtimes (scripts/fuzz.sh)
  libboost-context-dev       # fibers for the CUDA emulator (tests/cuda_emu)
)
# Optional extras, installed when asked: libtorch (CPU peer for side-by-side numbers), gnuplot.
if [[ "${TESSERA_WITH_PEERS:-0}" == "1" ]]; then
  # libopenblas0-pthread: libtorch goes through the system BLAS; the reference BLAS that
  # libtorch-dev pulls in is ~20x slower at matmul and would make the baseline a straw man.
  packages+=(libtorch-dev libopenblas0-pthread gnuplot-nox)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
