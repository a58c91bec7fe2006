#!/usr/bin/env bash
# Mixed precision end to end (issue: "Mixed precision"): examples/mnist_conv's net trained
# 300 steps (4800 Fashion-MNIST images, batch 16, seed 1) in float32, under bfloat16 autocast
# and under float16 autocast with the GradScaler, on the CPU. Each AMP run's test loss must be
# mean training loss over the 300 steps within 3% of the float32 run's (the test loss after
# so few steps moves by more than that with the summation order alone: 1 vs 2 threads).
#   amp-test.sh MNIST_CONV_BINARY [DATA_DIR]      exit 77 (skipped) without the dataset
set -euo pipefail
bin=$1
data=${2:-/usr/share/datasets/fashion-mnist}
if [[ ! -f "$data/train-images-idx3-ubyte.gz" && ! -f "$data/train-images-idx3-ubyte" ]]; then
  echo "skipped: no Fashion-MNIST in $data (Debian package dataset-fashion-mnist)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(--data "$data" --limit 4800 --batch-size 16 --test-limit 500 --epochs 1 --threads 1 --log-interval 100 --seed 1)
declare -A loss
for amp in off bf16 fp16; do
  "$bin" "${args[@]}" --amp "$amp" >"$work/$amp.log" 2>&1 || { echo "FAIL: --amp $amp exited $?"; cat "$work/$amp.log"; exit 1; }
  loss[$amp]=$(sed -n 's/^epoch 1: .*train loss \([0-9.]*\).*/\1/p' "$work/$amp.log")
  [[ -n "${loss[$amp]}" ]] || { echo "FAIL: no train loss in the --amp $amp log"; cat "$work/$amp.log"; exit 1; }
  printf '%-5s mean train loss %s  (%s)\n' "$amp" "${loss[$amp]}" "$(grep '^epoch 1:' "$work/$amp.log" | cut -d, -f1-3)"
done
grep '^amp fp16' "$work/fp16.log" || true
fail=0
for amp in bf16 fp16; do
  if awk -v a="${loss[$amp]}" -v r="${loss[off]}" 'BEGIN { d = (a - r) / r; if (d < 0) d = -d; exit !(d <= 0.03) }'; then
    echo "ok: $amp within 3% of float32"
  else
    echo "FAIL: $amp mean train loss ${loss[$amp]} is not within 3% of float32's ${loss[off]}"; fail=1
  fi
done
exit $fail
