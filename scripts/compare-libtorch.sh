#!/usr/bin/env bash
# Trains the pytorch/examples MNIST conv net with Tessera (examples/mnist_conv) and with
# libtorch (benchmarks/libtorch_mnist) on the same images, same recipe (Adam lr 2e-3,
# batch 64), same number of threads, one after the other, and prints the training
# images/s of both and their ratio.
#
#   scripts/compare-libtorch.sh [--limit N] [--threads T] [--data DIR] [--build DIR]
#
# Defaults: --limit 6000 (0 = the full 60,000-image epoch), --threads 2, --build build,
# --data /usr/share/datasets/fashion-mnist. libtorch_mnist is built only when libtorch
# (Debian package libtorch-dev) was found at configure time.
set -euo pipefail

limit=6000
threads=2
data=/usr/share/datasets/fashion-mnist
build=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --limit) limit="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "compare-libtorch.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

tessera_bin="$build/examples/mnist_conv/mnist_conv"
torch_bin="$build/benchmarks/libtorch_mnist"
for bin in "$tessera_bin" "$torch_bin"; do
  if [[ ! -x "$bin" ]]; then
    echo "compare-libtorch.sh: $bin not found; build it first (cmake --build $build --target mnist_conv libtorch_mnist;" \
         "libtorch_mnist needs the Debian package libtorch-dev)" >&2
    exit 1
  fi
done

common=(--data "$data" --limit "$limit" --threads "$threads" --epochs 1 --batch-size 64 --lr 2e-3 --test-limit 1000)

echo "== Tessera (examples/mnist_conv) =="
tessera_out=$(OMP_NUM_THREADS="$threads" "$tessera_bin" "${common[@]}" --optimizer adam --log-interval 1000000 | tee /dev/stderr)
echo "== libtorch (benchmarks/libtorch_mnist) =="
torch_out=$(OMP_NUM_THREADS="$threads" "$torch_bin" "${common[@]}" --optimizer adam | tee /dev/stderr)
# libtorch's CPU tensors come straight from glibc malloc, which by default hands freed
# activation buffers back to the kernel and page-faults them in again every step (a fresh
# libtorch training process spends most of its time there on this VM). A second run with
# glibc's thresholds raised shows libtorch without that cost: the fairer baseline.
echo "== libtorch, glibc malloc tuned (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_) =="
tuned_out=$(MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864 \
  OMP_NUM_THREADS="$threads" "$torch_bin" "${common[@]}" --optimizer adam | tee /dev/stderr)

rate() { grep -o 'training: [0-9.]* images/s' <<<"$1" | tail -1 | grep -o '[0-9.]*' | head -1; }
t=$(rate "$tessera_out")
p=$(rate "$torch_out")
q=$(rate "$tuned_out")
if [[ -z "$t" || -z "$p" || -z "$q" ]]; then
  echo "compare-libtorch.sh: could not read images/s from the outputs" >&2
  exit 1
fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
printf 'images/s with %s threads, %s training images: Tessera %s, libtorch %s (Tessera/libtorch = %s), libtorch with tuned malloc %s (Tessera/libtorch = %s)\n' \
  "$threads" "$limit" "$t" "$p" "$(ratio "$t" "$p")" "$q" "$(ratio "$t" "$q")"
