#!/usr/bin/env bash
# Exact resumption of a whole training program (issue: "Long runs that survive"):
# examples/mnist_conv on 640 Fashion-MNIST images, 2 epochs x 10 steps, dropout and
# shuffling on, trained once uninterrupted and then
#   - killed with SIGKILL after a step (inside epoch 1 and inside epoch 2) with
#     --save-every 3, and resumed with --resume from the run's folder;
#   - stopped with SIGTERM and with SIGINT mid-run (exit status 143 / 130, a checkpoint
#     written at the step it was in), and resumed;
# for Adam (all four) and SGD with momentum (epoch 2 kill, SIGTERM). Every resumed run must end with weights that are
# byte-identical to the uninterrupted run's, and print the same test loss and accuracy.
#   resume-test.sh MNIST_CONV_BINARY [DATA_DIR]      exit 77 (skipped) without the dataset
set -euo pipefail
bin=$1
source "$(dirname "$0")/../lib/fashion-mnist.sh" "${2:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail=0
check_same() {  # name reference candidate
  if cmp -s "$2.safetensors" "$3.safetensors" && [[ "$(grep '^epoch 2:' "$2.log" | cut -d, -f1-2)" == "$(grep '^epoch 2:' "$3.log" | cut -d, -f1-2)" ]]; then
    echo "ok: $1: weights byte-identical, $(grep '^epoch 2:' "$3.log" | cut -d, -f1-2)"
  else
    echo "FAIL: $1: the resumed run differs from the uninterrupted one"; fail=1
    tail -3 "$2.log" "$3.log"
  fi
}
for opt in adam sgd; do
  args=(--data "$data" --limit 640 --test-limit 200 --epochs 2 --threads 2 --log-interval 1 --optimizer "$opt" --seed 7)
  "$bin" "${args[@]}" --save "full-$opt.safetensors" >"full-$opt.log" 2>&1
  # SIGKILL after step 8 (epoch 1; newest checkpoint: step 6) and 14 (epoch 2; step 12).
  kills=(8 14) signals=(TERM INT)
  if [[ $opt == sgd ]]; then kills=(14) signals=(TERM); fi  # fewer runs: the CI budget
  for k in "${kills[@]}"; do
    run="kill$k-$opt"
    set +e
    ( exec "$bin" "${args[@]}" --save-every 3 --checkpoint-dir "$run" --crash-at-step $k >"$run-crash.log" 2>&1 ) 2>/dev/null
    rc=$?
    set -e
    if [[ $rc -ne 137 ]]; then echo "FAIL: $run: expected death by SIGKILL (137), got $rc"; fail=1; continue; fi
    "$bin" "${args[@]}" --resume "$run" --save "$run.safetensors" >"$run.log" 2>&1
    last=$(( k / 3 * 3 ))  # the newest checkpoint before the kill
    grep -q "resumed from .*$(printf 'step-%08d' $last) at step $last" "$run.log" ||
      { echo "FAIL: $run: did not resume from step $last"; grep resumed "$run.log"; fail=1; }
    check_same "$run SIGKILL after step $k" "full-$opt" "$run"
  done
  # SIGTERM / SIGINT once the run is in epoch 1 (after its 3rd progress line).
  for sig in "${signals[@]}"; do
    run="sig$sig-$opt"
    "$bin" "${args[@]}" --checkpoint-dir "$run" >"$run-stop.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
      grep -q "epoch 1/2 3/10" "$run-stop.log" 2>/dev/null && break
      sleep 0.01
    done
    kill -s "$sig" $pid
    set +e
    wait $pid
    rc=$?
    set -e
    want=$([[ $sig == TERM ]] && echo 143 || echo 130)
    if [[ $rc -ne $want ]]; then
      echo "FAIL: $run: exit status $rc, expected $want"; tail -3 "$run-stop.log"; fail=1; continue
    fi
    grep -q "stopped by signal" "$run-stop.log" || { echo "FAIL: $run: no stop message"; fail=1; }
    "$bin" "${args[@]}" --resume "$run" --save "$run.safetensors" >"$run.log" 2>&1
    check_same "$run SIG$sig $(grep -o 'at step [0-9]*' "$run-stop.log" | head -1), status $rc" "full-$opt" "$run"
  done
done
exit $fail
