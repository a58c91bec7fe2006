#!/usr/bin/env bash
# The benchmark suite in one command: Tessera on the CPU (and on CUDA when this build has it
# and a GPU is usable) next to libtorch on the CPU, then the report.
#
#   scripts/bench.sh [--min-time S] [--filter REGEX] [--threads N] [--build DIR] [--out DIR]
#                    [--cuda AUTO|ON|OFF] [--no-deps] [--no-build] [--no-report]
#
# Steps: installs the Debian packages with TESSERA_WITH_PEERS=1 scripts/install-deps.sh
# (adds libtorch-dev and gnuplot-nox); configures DIR (default build/) as Release with the
# benchmarks and builds tessera_bench, libtorch_bench and tessera-env; runs both suites
# (Google Benchmark JSON) into benchmarks/results/<date>-<host>/ with tessera-env's report,
# an lscpu summary and the command; then scripts/bench-report writes <run>/report.md, the
# plots in <run>/plots/ and the measured part of BENCHMARKS.md.
# A --filter run is partial: it goes to <build>/bench-partial/<time>-<host>/ unless --out is
# given, and only its own report.md is written (BENCHMARKS.md is left alone); so is any run
# whose --out lies outside benchmarks/results/.
#
# Defaults: --min-time 0.2 (seconds per case, Google Benchmark's --benchmark_min_time),
# --threads $(nproc) for both Tessera and libtorch, every case; --cuda is passed to CMake as
# TESSERA_CUDA only when given (else the build's cached choice, or AUTO). With a CUDA build
# and a usable GPU the CUDA cases run too, and scripts/bench-pytorch.py when PyTorch sees
# the GPU. On a 2-core machine the two CPU suites take about 2 minutes from a built tree.
# Stop other work first: the numbers are only as quiet as the machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

min_time=0.2
filter=""
threads="$(nproc)"
build=build
out=""
cuda=""
deps=1
do_build=1
do_report=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --min-time) min_time="$2"; shift 2 ;;
    --filter) filter="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --cuda) cuda="$2"; shift 2 ;;
    --no-deps) deps=0; shift ;;
    --no-build) do_build=0; shift ;;
    --no-report) do_report=0; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }

if [[ $deps == 1 ]]; then
  echo "== dependencies (TESSERA_WITH_PEERS=1 scripts/install-deps.sh)"
  TESSERA_WITH_PEERS=1 "$root/scripts/install-deps.sh"
fi

if [[ $do_build == 1 ]]; then
  echo "== configure + build $build ($(elapsed))"
  gen=()
  if [[ ! -f "$build/CMakeCache.txt" ]] && command -v ninja >/dev/null; then gen=(-G Ninja); fi
  cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTESSERA_BUILD_BENCHMARKS=ON \
    ${cuda:+-DTESSERA_CUDA=$cuda} >/dev/null
  cmake --build "$build" -j "$(nproc)" --target tessera_bench tessera-env $(
    grep -q '^Torch_DIR:PATH=/' "$build/CMakeCache.txt" 2>/dev/null && echo libtorch_bench)
fi
tessera_bench="$build/benchmarks/tessera_bench"
libtorch_bench="$build/benchmarks/libtorch_bench"
[[ -x $tessera_bench ]] || { echo "bench.sh: $tessera_bench not built" >&2; exit 1; }

# ---- where the results go: benchmarks/results/<date>-<short host description> -------------------
model="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
host="$(echo "${model:-cpu}" | tr '[:upper:]' '[:lower:]' |
  sed -E 's/\((r|tm)\)//g; s/ cpu / /g; s/@.*//; s/[^a-z0-9]+/-/g; s/^-+|-+$//g')-$(nproc)c"
# A --filter run is partial: by default it goes under the build folder, so it never replaces
# the day's full run in benchmarks/results/ (from which BENCHMARKS.md is written).
case "$build" in /*) build_abs="$build" ;; *) build_abs="$root/$build" ;; esac
if [[ -z $out && -n $filter ]]; then out="$build_abs/bench-partial/$(date -u +%Y-%m-%dT%H%M%S)-$host"; fi
out="${out:-$root/benchmarks/results/$(date -u +%Y-%m-%d)-$host}"
case "$out" in /*) ;; *) out="$(pwd)/$out" ;; esac
rm -f "$out"/*.json  # no stale suite output from an earlier run into the same folder
mkdir -p "$out"
echo "== results in ${out#$root/} ($(elapsed))"

{
  lscpu | grep -E '^(Architecture|Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|CPU max MHz|L1d|L2|L3|NUMA node\(s\))'
  echo "Flags (vector): $(grep -o -w -E 'avx512f|avx512_bf16|avx2|fma|avx' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "Memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "Kernel: $(uname -r)"
} > "$out/lscpu.txt"
"$build/tools/tessera-env" > "$out/env.txt" 2>&1 || true
"$build/tools/tessera-env" --json > "$out/env.json" 2>/dev/null || true

gb_args=(--benchmark_min_time="$min_time" --benchmark_out_format=json)
[[ -n $filter ]] && gb_args+=(--benchmark_filter="$filter")
{
  echo "scripts/bench.sh --min-time $min_time --threads $threads${filter:+ --filter '$filter'}"
  echo "# = OMP_NUM_THREADS=$threads $tessera_bench ${gb_args[*]} --benchmark_out=tessera.json"
  [[ -x $libtorch_bench ]] && echo "#   OMP_NUM_THREADS=$threads $libtorch_bench ${gb_args[*]} --benchmark_out=libtorch.json"
} > "$out/command.txt"
export OMP_NUM_THREADS="$threads"

echo "== tessera_bench ($(elapsed))"
t0=$(date +%s)
"$tessera_bench" "${gb_args[@]}" --benchmark_out="$out/tessera.json" | tee "$out/tessera.log"
echo "# tessera_bench: $(( $(date +%s) - t0 )) s" >> "$out/command.txt"

if [[ -x $libtorch_bench ]]; then
  # libtorch's matmul and linear go through the system BLAS (Debian's alternatives): record
  # which, and warn about the reference BLAS (libblas3), which is about 20x slower than
  # OpenBLAS (Debian libopenblas0-pthread) and would make the baseline a straw man.
  blas="$(ldd "$libtorch_bench" | awk '/libblas\.so/ && !seen {print $3; seen = 1}')"
  blas="$(readlink -f "${blas:-/nonexistent}" 2>/dev/null || true)"
  echo "libtorch BLAS: ${blas:-unknown}" > "$out/peers.txt"
  case "$blas" in
    */blas/libblas.so.3*)
      echo "libtorch BLAS warning: reference BLAS (libblas3), slow matmul; install libopenblas0-pthread" >> "$out/peers.txt"
      echo "bench.sh: WARNING: libtorch uses the reference BLAS ($blas): its matmul is about 20x slower than with" \
           "OpenBLAS; install the Debian package libopenblas0-pthread for a fair baseline" >&2 ;;
  esac
  echo "== libtorch_bench ($(elapsed))"
  t0=$(date +%s)
  "$libtorch_bench" "${gb_args[@]}" --benchmark_out="$out/libtorch.json" | tee "$out/libtorch.log"
  echo "# libtorch_bench: $(( $(date +%s) - t0 )) s" >> "$out/command.txt"
else
  echo "bench.sh: no libtorch_bench (libtorch-dev not found at configure time): the report has no libtorch baseline" >&2
fi

# PyTorch on the GPU, when this machine has one that both Tessera and PyTorch can use.
if grep -q '"name": "BM_[a-z_0-9]*/cuda/' "$out/tessera.json" 2>/dev/null &&
    python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "== scripts/bench-pytorch.py ($(elapsed))"
  python3 "$root/scripts/bench-pytorch.py" --out "$out/pytorch.json" --min-time "$min_time" \
    ${filter:+--filter "$filter"} | tee "$out/pytorch.log"
  echo "#   python3 scripts/bench-pytorch.py --out pytorch.json --min-time $min_time${filter:+ --filter '$filter'}" >> "$out/command.txt"
else
  rm -f "$out/pytorch.json"
fi

if [[ $do_report == 1 ]]; then
  echo "== report ($(elapsed))"
  if [[ -z $filter && "$out" == "$root/benchmarks/results/"* ]]; then
    # A full run in benchmarks/results/: the newest run of every host (this one, and e.g. an
    # H200 run copied from gpu-check) into BENCHMARKS.md.
    python3 "$root/scripts/bench-report"
  else
    # A partial run or one elsewhere: its own report.md only; BENCHMARKS.md is left alone.
    python3 "$root/scripts/bench-report" --no-update "$out"
  fi
fi
echo "== done in $(elapsed): ${out#$root/}"
