#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, build-fuzz/) and runs each for a bounded
# time on a copy of the checked-in seed corpus (fuzz/corpus/<target>/ is never modified).
#   scripts/fuzz.sh                     every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=600 scripts/fuzz.sh shape idx
# Prints and records (build-fuzz/fuzz-results/summary.txt) the executions per target.
# Exits non-zero when a target crashes, leaks, times out or runs out of memory; the
# reproducer is kept under build-fuzz/fuzz-results/<target>/ and its path printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds="${FUZZ_SECONDS:-60}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac  # absolute from here on
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=(idx safetensors shape); fi

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
start=$(date +%s)
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTESSERA_FUZZ=ON -DTESSERA_CUDA=OFF -DTESSERA_NATIVE=OFF -DTESSERA_SANITIZE=OFF \
  -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCHMARKS=OFF -DTESSERA_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
echo "fuzz.sh: built in $(( $(date +%s) - start )) s"

# The targets write each input to a file: put those on tmpfs when there is one.
scratch=$(mktemp -d -p /dev/shm tessera-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
results="$build/fuzz-results"
rm -rf "$results"
mkdir -p "$results"
summary="$results/summary.txt"
: >"$summary"
status=0
for t in "${targets[@]}"; do
  out="$results/$t"
  mkdir -p "$out/corpus"
  cp -r "fuzz/corpus/$t/." "$out/corpus/"   # work on a copy: CI never grows the checked-in corpus
  dict=()
  if [[ -f "fuzz/$t.dict" ]]; then dict=(-dict="fuzz/$t.dict"); fi
  log="$out/fuzz.log"
  echo "fuzz.sh: running fuzz_$t for ${seconds} s"
  set +e
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
  TMPDIR="$scratch" \
    "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
      -artifact_prefix="$out/" "${dict[@]}" "$out/corpus" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  line="fuzz_$t: ${execs:-?} executions in ${seconds} s, exit $rc"
  if [[ $rc -ne 0 || -n "$crashes" ]]; then
    status=1
    line="$line, FAILED"
    tail -n 60 "$log"
    for c in $crashes; do line="$line; reproducer: $c"; done
    line="$line (rerun: $build/fuzz/fuzz_$t <reproducer>)"
  fi
  echo "$line" | tee -a "$summary"
done
echo "fuzz.sh: total $(( $(date +%s) - start )) s; summary in $summary"
exit $status
