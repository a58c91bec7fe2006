#!/usr/bin/env bash
# Copies the header-only / small build dependencies and the Fashion-MNIST data from this
# machine's Debian packages into .deps/ (ignored by git), laid out as an install prefix, so
# that scripts/gpu-check.sh can build on the device machine, which has CUDA, CMake and ninja
# but no Debian dev packages and no network.
#
#   scripts/populate-deps.sh            # fills .deps/ (about 40 MiB, mostly the data)
#
# Sources (Debian 12 packages): libeigen3-dev, catch2, nlohmann-json3-dev, libbenchmark-dev
# (+ libbenchmark1), libcli11-dev, zlib1g-dev, dataset-fashion-mnist. The CMake package files
# compute their prefix relative to their own location, so pointing CMAKE_PREFIX_PATH at .deps
# is enough: cmake -DCMAKE_PREFIX_PATH=$PWD/.deps ...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deps="$root/.deps"
arch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
rm -rf "$deps"
mkdir -p "$deps/include" "$deps/share" "$deps/lib/cmake" "$deps/lib/$arch/cmake" "$deps/data"

copy() {  # copy SRC DST-DIR (fails loudly when the package is missing)
  if [ ! -e "$1" ]; then echo "populate-deps: missing $1 (install the Debian package that provides it)" >&2; exit 1; fi
  mkdir -p "$2"
  cp -a "$1" "$2/"
}

# Eigen 3.4 (headers only; 'unsupported' is not used by Tessera)
mkdir -p "$deps/include/eigen3"
copy /usr/include/eigen3/Eigen "$deps/include/eigen3"
copy /usr/include/eigen3/signature_of_eigen3_matrix_library "$deps/include/eigen3"
copy /usr/share/eigen3/cmake "$deps/share/eigen3"
# Catch2 v2 (single header + CMake package with Catch.cmake / catch_discover_tests)
copy /usr/include/catch2 "$deps/include"
copy /usr/lib/cmake/Catch2 "$deps/lib/cmake"
copy /usr/lib/libCatch2WithMain.a "$deps/lib"
# nlohmann/json
copy /usr/include/nlohmann "$deps/include"
copy /usr/share/cmake/nlohmann_json "$deps/share/cmake"
# Google Benchmark (shared library from libbenchmark1; it needs glibc >= 2.32 and the libstdc++ of
# GCC >= 12, GLIBCXX_3.4.30, on the machine that runs it)
copy /usr/include/benchmark "$deps/include"
cp -a /usr/lib/"$arch"/libbenchmark.so* /usr/lib/"$arch"/libbenchmark_main.a "$deps/lib/$arch/"
copy /usr/lib/"$arch"/cmake/benchmark "$deps/lib/$arch/cmake"
# CLI11 (examples/mnist_conv)
copy /usr/include/CLI "$deps/include"
copy /usr/share/cmake/CLI11 "$deps/share/cmake"
# zlib (headers + static library)
copy /usr/include/zlib.h "$deps/include"
if [ -e /usr/include/"$arch"/zconf.h ]; then copy /usr/include/"$arch"/zconf.h "$deps/include"; else copy /usr/include/zconf.h "$deps/include"; fi
copy /usr/lib/"$arch"/libz.a "$deps/lib"
# Fashion-MNIST (dataset-fashion-mnist), for mnist_conv --device cuda
copy /usr/share/datasets/fashion-mnist "$deps/data"

du -sh "$deps"
echo "populate-deps: done; carry '.deps' in the device tool's run call"
