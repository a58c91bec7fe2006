# Sourced by the example tests (tests/*/...-test.sh): sets `data` to the Fashion-MNIST folder
# (argument 1, default the Debian package's) and exits 77, which CTest reports as skipped,
# when it is not there.
data=${1:-/usr/share/datasets/fashion-mnist}
if [[ ! -f "$data/train-images-idx3-ubyte.gz" && ! -f "$data/train-images-idx3-ubyte" ]]; then
  echo "skipped: no Fashion-MNIST in $data (Debian package dataset-fashion-mnist)"
  exit 77
fi
