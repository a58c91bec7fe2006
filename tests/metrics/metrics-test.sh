#!/usr/bin/env bash
# mnist_conv --metrics: a 40-step run (640 Fashion-MNIST images, batch 16, 2 epochs) writes
# JSON lines whose step and epoch records agree with what it prints, a resumed run appends to
# the file, and scripts/plot-metrics draws them as a PNG (when gnuplot is installed).
#   metrics-test.sh MNIST_CONV_BINARY PLOT_METRICS [DATA_DIR]     exit 77 (skipped) without the dataset
set -euo pipefail
bin=$1
plot=$2
source "$(dirname "$0")/../lib/fashion-mnist.sh" "${3:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(--data "$data" --limit 640 --batch-size 16 --test-limit 200 --threads 1 --log-interval 10 --seed 3
      --checkpoint-dir "$work/ckpt" --metrics "$work/m.jsonl")
"$bin" "${args[@]}" --epochs 1 --save-every 40 >"$work/a.log" 2>&1 || { cat "$work/a.log"; exit 1; }
"$bin" "${args[@]}" --epochs 2 --resume "$work/ckpt" >"$work/b.log" 2>&1 || { cat "$work/b.log"; exit 1; }
python3 - "$work/m.jsonl" "$work/a.log" "$work/b.log" <<'PY'
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
steps = [r for r in recs if r["kind"] == "step"]
epochs = [r for r in recs if r["kind"] == "epoch"]
assert [r["step"] for r in steps] == [10, 20, 30, 40, 50, 60, 70, 80], [r["step"] for r in steps]
assert [r["epoch"] for r in epochs] == [1, 2], epochs
for r in steps:
    assert r["loss"] > 0 and r["lr"] > 0 and r["images_per_s"] > 0, r
for r, log in zip(epochs, sys.argv[2:]):
    m = re.search(r"^epoch %d: test loss ([0-9.]+), accuracy (\d+)/(\d+) .*train loss ([0-9.]+)" % r["epoch"],
                  open(log).read(), re.M)
    assert m, "no epoch line in " + log
    assert abs(r["test_loss"] - float(m.group(1))) < 1e-4, (r, m.group(0))
    assert abs(r["test_accuracy"] - int(m.group(2)) / int(m.group(3))) < 1e-12, (r, m.group(0))
    assert abs(r["train_loss"] - float(m.group(4))) < 1e-4, (r, m.group(0))
print("ok: %d step and %d epoch records, matching the printed epochs" % (len(steps), len(epochs)))
PY
if command -v gnuplot >/dev/null; then
  "$plot" "$work/m.jsonl" -o "$work/curves.png" --title "metrics-test"
  head -c 8 "$work/curves.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" || { echo "FAIL: not a PNG"; exit 1; }
  echo "ok: plot-metrics wrote a PNG"
else
  echo "note: gnuplot not installed, plot not checked"
fi
