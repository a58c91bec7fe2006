#!/usr/bin/env bash
# The GPU check of issue 4, in one call on a machine with an NVIDIA GPU (the H200 lent by the
# device tool): build with CMake + ninja, run the CUDA parity suite, the benchmark suite (Tessera
# CUDA, the same cases through PyTorch with scripts/bench-pytorch.py, Tessera on this host's CPU;
# about 2 minutes), one epoch of examples/mnist_conv on the GPU, and PyTorch eager with the
# same net for comparison. Fits in about 8 minutes on an H200 with 16 cores; every stage's
# timeout is cut to what is left of TOTAL_SECONDS, so the script ends before the tool's 600 s.
#
# Dependencies: CUDA toolkit with cuBLAS and cuDNN (or the nvidia-cudnn Python package), CMake,
# ninja. Eigen, Catch2, nlohmann-json, Google Benchmark, CLI11 and zlib are taken from the
# system when found, else from .deps/ (an install prefix filled on a Debian machine by
# scripts/populate-deps.sh, which also copies Fashion-MNIST to .deps/data/fashion-mnist).
#
# Output. The device tool returns at most 8 files from $OUT, so the logs and results are kept
# in $BUILD_DIR/gpu-check/ and, after every stage, $OUT gets exactly two files: summary.md and
# gpu-check.tar.gz, which holds everything written so far:
#   summary.md build.log env.txt parity.log bench.log bench-pytorch.log mnist.log torch.log
#   results/<date>-<gpu>/   nvidia-smi.txt lscpu.txt env.txt command.txt tessera-cuda.json
#                           pytorch.json tessera-cpu.json report.md (scripts/bench-report's layout)
# (a gpu-check.tar.gz.part is a refresh cut short: use gpu-check.tar.gz).
#
# Through the device tool (from the repository root on the development machine):
#   scripts/populate-deps.sh
#   run(command="bash scripts/gpu-check.sh", carry=[".deps"], timeout_s=600)
# then, with A the returned gpu-check.tar.gz (under the tool's files_at):
#   mkdir -p /tmp/gpu-check && tar -xzf A -C /tmp/gpu-check        # logs + summary
#   tar -xzf A -C benchmarks/results --strip-components=1 results/  # -> benchmarks/results/<date>-<gpu>/
#   scripts/bench-report benchmarks/results/<date>-<gpu>            # plots, report.md, BENCHMARKS.md
#
# Options (environment): ARCHS (CMAKE_CUDA_ARCHITECTURES, default 90), JOBS (default nproc),
# BUILD_DIR (default build-gpu), SKIP_TORCH=1, SUITE_SECONDS (benchmark budget, default 120),
# TOTAL_SECONDS (whole run, default 560), BUILD_SECONDS (build timeout, default 330).
# For a dry run without a GPU:
#   CUDA_MODE          -DTESSERA_CUDA value (default ON; EMULATE runs the kernels on the host,
#                      needs Boost.Context; TESSERA_EMU_PROTECT=0 makes it faster)
#   PARITY_ARGS        extra tessera_cuda_tests (Catch2) arguments, split at spaces, e.g.
#                      '*softmax*,*0-size*' (wildcards, not spaces, inside a test name)
#   BENCH_CUDA_FILTER  --benchmark_filter for the Tessera CUDA cases (default /cuda/)
#   MNIST_ARGS         extra mnist_conv arguments, e.g. '--limit 640 --test-limit 500'
# e.g. CUDA_MODE=EMULATE TESSERA_EMU_PROTECT=0 PARITY_ARGS='*softmax*' SUITE_SECONDS=60 \
#      BENCH_CUDA_FILTER='BM_add/cuda/1024/' MNIST_ARGS='--limit 640 --test-limit 500' \
#      BUILD_SECONDS=3000 TOTAL_SECONDS=3600 OUT=/tmp/gc-out bash scripts/gpu-check.sh
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
OUT="${OUT:-$root/gpu-check-out}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
ARCHS="${ARCHS:-90}"
JOBS="${JOBS:-$(nproc)}"
BUILD_DIR="${BUILD_DIR:-build-gpu}"
CUDA_MODE="${CUDA_MODE:-ON}"
TOTAL_SECONDS="${TOTAL_SECONDS:-560}"
BUILD_SECONDS="${BUILD_SECONDS:-330}"
BENCH_CUDA_FILTER="${BENCH_CUDA_FILTER:-/cuda/}"
read -ra parity_args <<< "${PARITY_ARGS:-}"
read -ra mnist_args <<< "${MNIST_ARGS:-}"
case "$BUILD_DIR" in /*) bin="$BUILD_DIR" ;; *) bin="$root/$BUILD_DIR" ;; esac
work="$bin/gpu-check"  # everything for $OUT, packed by checkpoint
rm -rf "$work" && mkdir -p "$work"
summary="$work/summary.md"
start=$(date +%s)
say() { echo "$*" | tee -a "$summary"; }
elapsed() { echo "$(( $(date +%s) - start ))s"; }
# A stage's timeout: $1 seconds, or what is left of TOTAL_SECONDS when that is less.
limit() { local l=$(( TOTAL_SECONDS - ($(date +%s) - start) )); (( l < $1 )) && echo $(( l > 1 ? l : 1 )) || echo "$1"; }
# $OUT gets two files, refreshed after every stage (the command may be killed at its limit):
# summary.md and gpu-check.tar.gz with all of $work, written aside and renamed into place.
checkpoint() {
  cp "$summary" "$OUT/summary.md"
  (cd "$work" && tar -czf "$OUT/gpu-check.tar.gz.part" -- *) &&
    mv -f "$OUT/gpu-check.tar.gz.part" "$OUT/gpu-check.tar.gz"
}
trap checkpoint EXIT
trap 'exit 143' TERM INT
smi() { timeout 30 nvidia-smi "$@" 2>/dev/null; }  # no nvidia-smi, or a hung one: no output

: > "$summary"
say "# Tessera GPU check"
say ""
say "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
gpu_name="$(smi --query-gpu=name --format=csv,noheader | head -1)"
say "- gpu: $(smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1 | grep . || echo 'nvidia-smi failed')"
say "- nvcc: $( { nvcc --version || /usr/local/cuda/bin/nvcc --version; } 2>/dev/null | grep -o 'release .*' || echo 'not found')"
say "- cmake: $(cmake --version | head -1), ninja $(ninja --version 2>/dev/null)"
say "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')"
say "- CUDA_MODE=$CUDA_MODE${PARITY_ARGS:+ PARITY_ARGS='$PARITY_ARGS'}${MNIST_ARGS:+ MNIST_ARGS='$MNIST_ARGS'}"
checkpoint

# ---- dependencies -------------------------------------------------------------------------
prefix=""
if [ -d "$root/.deps" ]; then prefix="$root/.deps"; fi
missing=""
[ -f /usr/include/eigen3/Eigen/Core ] || missing="$missing eigen"
[ -f /usr/include/catch2/catch.hpp ] || missing="$missing catch2"
[ -f /usr/include/nlohmann/json.hpp ] || missing="$missing nlohmann-json"
[ -f /usr/include/benchmark/benchmark.h ] || missing="$missing benchmark"
[ -f /usr/include/CLI/CLI.hpp ] || missing="$missing cli11"
[ -f /usr/include/zlib.h ] || missing="$missing zlib"
if [ -n "$missing" ] && [ -z "$prefix" ]; then
  say "- FAIL: missing$missing and no .deps/ (run scripts/populate-deps.sh and carry .deps)"
  exit 2
fi
say "- not on the system:${missing:- none}; prefix for them: ${prefix:-none}"
cudnn_root=""
if ! ls /usr/local/cuda/include/cudnn_version.h /usr/local/cuda/lib64/libcudnn.so >/dev/null 2>&1; then
  # No cuDNN in the toolkit: use the nvidia-cudnn Python package that PyTorch brings. It ships
  # only libcudnn.so.9, so give find_library an unversioned name in a shim prefix.
  py_cudnn="$(python3 -c 'import nvidia.cudnn, os; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null || true)"
  if [ -n "$py_cudnn" ]; then
    cudnn_root="/tmp/tessera-cudnn"
    mkdir -p "$cudnn_root/lib"
    ln -sfn "$py_cudnn/include" "$cudnn_root/include"
    for f in "$py_cudnn"/lib/libcudnn*.so.*; do ln -sf "$f" "$cudnn_root/lib/"; done
    ln -sf "$(ls "$py_cudnn"/lib/libcudnn.so.* | head -1)" "$cudnn_root/lib/libcudnn.so"
    say "- cuDNN from the Python package: $py_cudnn (shim prefix $cudnn_root)"
  fi
fi

data=""
for d in /usr/share/datasets/fashion-mnist "$root/.deps/data/fashion-mnist" "$root/data/fashion-mnist"; do
  if [ -f "$d/train-images-idx3-ubyte.gz" ] || [ -f "$d/train-images-idx3-ubyte" ]; then data="$d"; break; fi
done

# ---- build ----------------------------------------------------------------------------------
echo "== configure + build ($(elapsed))"
cmake_args=(-S "$root" -B "$bin" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_CUDA="$CUDA_MODE"
  -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DTESSERA_BUILD_TESTS=ON -DTESSERA_BUILD_BENCHMARKS=ON
  -DTESSERA_BUILD_EXAMPLES=ON)
[ -n "$prefix" ] && cmake_args+=(-DCMAKE_PREFIX_PATH="$prefix" -DEigen3_DIR="$prefix/share/eigen3/cmake")
[ -n "$cudnn_root" ] && cmake_args+=(-DCUDNN_ROOT="$cudnn_root")
[ -x /usr/local/cuda/bin/nvcc ] && cmake_args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
if ! cmake "${cmake_args[@]}" > "$work/build.log" 2>&1; then
  say "- FAIL: configure (see build.log)"; tail -40 "$work/build.log"; exit 3
fi
t=$(limit "$BUILD_SECONDS")
if ! timeout "$t" cmake --build "$bin" -j "$JOBS" --target tessera_cuda_tests tessera_bench mnist_conv tessera-env \
    >> "$work/build.log" 2>&1; then
  say "- FAIL: build (timeout ${t}s; see build.log)"; grep -E "error|Error" "$work/build.log" | head -40; exit 4
fi
say "- build: OK ($(elapsed))"
checkpoint
export LD_LIBRARY_PATH="${prefix:+$prefix/lib/x86_64-linux-gnu:}${cudnn_root:+$cudnn_root/lib:}${LD_LIBRARY_PATH:-}"

# ---- the GPU stack as tessera-env sees it (issue 5 wants this output from a GPU machine) -------
timeout 60 "$bin/tools/tessera-env" > "$work/env.txt" 2>&1
rc=$?
say "- tessera-env: rc=$rc ($(tail -1 "$work/env.txt"))"

# ---- parity suite -----------------------------------------------------------------------------
echo "== parity tests ($(elapsed))"
t=$(limit 120)
timeout "$t" "$bin/tests/tessera_cuda_tests" --durations yes "${parity_args[@]}" > "$work/parity.log" 2>&1
rc=$?
case $rc in
  0) say "- parity: PASS ($(grep -E 'test cases' "$work/parity.log" | tail -1), $(elapsed))" ;;
  77) say "- parity: SKIPPED (CUDA not usable: $(grep SKIPPED "$work/parity.log"))" ;;
  *) say "- parity: FAIL rc=$rc, timeout ${t}s ($(grep -E 'test cases' "$work/parity.log" | tail -1), $(elapsed))" ;;
esac
checkpoint

# ---- benchmarks (issue 6 suite): Tessera CUDA, PyTorch CUDA, Tessera CPU on this host's CPU -----
# About 2 minutes at most in all (SUITE_SECONDS): each part gets a timeout within what is left,
# writes its JSON as it goes (line-buffered stdout), and a part cut short still reports the
# cases it finished. Results: results/<date>-<gpu>/ in the archive, the layout scripts/bench-report
# reads; unpack that folder into benchmarks/results/ and run scripts/bench-report for plots.
echo "== benchmarks ($(elapsed))"
SUITE_SECONDS="$(limit "${SUITE_SECONDS:-120}")"
suite_start=$(date +%s)
suite_left() { echo $(( SUITE_SECONDS - ($(date +%s) - suite_start) )); }
cap() { local l; l=$(suite_left); (( l < $1 )) && echo $(( l > 5 ? l : 5 )) || echo "$1"; }
res="$work/results/$(date -u +%Y-%m-%d)-$(echo "${gpu_name:-gpu}" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9]+/-/g; s/^-+|-+$//g')"
mkdir -p "$res"
smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv,noheader > "$res/nvidia-smi.txt"
{
  lscpu 2>/dev/null | grep -E '^(Architecture|Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|L1d|L2|L3)'
  echo "Memory: $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
} > "$res/lscpu.txt"
cp "$work/env.txt" "$res/env.txt" 2>/dev/null
bench="$bin/benchmarks/tessera_bench"
{
  echo "scripts/gpu-check.sh (benchmark part, SUITE_SECONDS=$SUITE_SECONDS):"
  echo "$bench --benchmark_filter='$BENCH_CUDA_FILTER' --benchmark_min_time=0.02 --benchmark_format=json > tessera-cuda.json"
  echo "python3 scripts/bench-pytorch.py --out pytorch.json --min-time 0.02"
  echo "OMP_NUM_THREADS=$(nproc) $bench --benchmark_filter=/cpu/ --benchmark_min_time=0.02 --benchmark_format=json > tessera-cpu.json"
} > "$res/command.txt"
cases() {  # "N cases[, cut short], M skipped[: the first skip's reason]" of a benchmark JSON
  local n s cut=""
  n=$(grep -c '"name"' "$1" 2>/dev/null); s=$(grep -c '"error_occurred": true' "$1" 2>/dev/null)
  [ "$(tail -c 2 "$1" 2>/dev/null)" = "}" ] || cut=", cut short"
  echo "${n:-0} cases$cut, ${s:-0} skipped$(grep -m1 -o '"error_message": "[^"]*' "$1" 2>/dev/null | sed 's/^[^:]*: "/: /')"
}
t=$(cap 75)
timeout "$t" stdbuf -oL "$bench" --benchmark_filter="$BENCH_CUDA_FILTER" --benchmark_min_time=0.02 --benchmark_format=json \
  > "$res/tessera-cuda.json" 2> "$work/bench.log"
rc=$?
say "- benchmarks, Tessera CUDA: rc=$rc (timeout ${t}s; $(cases "$res/tessera-cuda.json"), $(elapsed))"
checkpoint
if [ -z "${SKIP_TORCH:-}" ] && python3 -c 'import torch' 2>/dev/null; then
  t=$(cap 50)
  timeout "$t" python3 "$root/scripts/bench-pytorch.py" --out "$res/pytorch.json" --min-time 0.02 \
    --max-seconds $(( t > 15 ? t - 10 : 5 )) > "$work/bench-pytorch.log" 2>&1
  rc=$?
  say "- benchmarks, PyTorch CUDA: rc=$rc (timeout ${t}s; $(cases "$res/pytorch.json"), $(elapsed))"
  checkpoint
fi
t=$(cap 40)
OMP_NUM_THREADS="$(nproc)" timeout "$t" stdbuf -oL "$bench" --benchmark_filter='/cpu/' --benchmark_min_time=0.02 \
  --benchmark_format=json > "$res/tessera-cpu.json" 2>> "$work/bench.log"
rc=$?  # before $(nproc) below, which would set $?
say "- benchmarks, Tessera CPU ($(nproc) threads): rc=$rc (timeout ${t}s; $(cases "$res/tessera-cpu.json"), $(elapsed))"
python3 "$root/scripts/bench-report" "$res" --no-update --no-plots > /dev/null 2>> "$work/bench.log" &&
  say "- benchmark report (no plots): ${res#$work/}/report.md"
python3 - "$res" >> "$summary" 2>&1 <<'PY'
# Issue 4's targets from the suite's JSON (names: BM_<op>/cuda/<size>/manual_time).
import json, os, re, sys
res = sys.argv[1]
b = {}
for f in ("tessera-cuda.json", "pytorch.json"):
    p = os.path.join(res, f)
    if not os.path.exists(p):
        continue
    try:
        text = open(p).read()
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:  # cut short by the timeout: keep the complete cases
            cut = text[: text.rfind("\n    }") + 6] + "\n  ]\n}\n"
            doc = json.loads(cut)
        for x in doc["benchmarks"]:
            if not x.get("error_occurred"):
                b[re.sub(r"/(manual|real)_time$|/iterations:\d+", "", x["name"])] = x
    except Exception as e:
        print(f"- {f}: unreadable ({e})")
def get(name, key, scale):  # None: the case is not in the JSON (skipped, filtered out, cut short)
    v = b.get(name, {}).get(key)
    return v / scale if v else None
def num(v, fmt):
    return "n/a" if v is None else format(v, fmt)
def ratio(v, of):
    return "n/a" if v is None or not of else f"{v / of:.2f}x"
copy = get("BM_peak_copy/cuda/67108864", "bytes_per_second", 1e9)
sgemm = get("BM_peak_sgemm/cuda/8192", "flop_per_second", 1e12)
print(f"- device-to-device copy: {num(copy, '.0f')} GB/s (bytes read + written); cuBLAS SGEMM 8192: {num(sgemm, '.1f')} TFLOP/s")
for n, mib in ((1 << 26, 256), (1 << 28, 1024)):
    add = get(f"BM_add/cuda/{n}", "bytes_per_second", 1e9)
    print(f"- add {mib} MiB per tensor: {num(add, '.0f')} GB/s = {ratio(add, copy)} copy (target >= 0.85)")
for op in ("softmax", "log_softmax"):
    for n in (1 << 26, 1 << 28):
        g = get(f"BM_{op}/cuda/{n}", "bytes_per_second", 1e9)
        print(f"- {op} rows of 4096, {n >> 12} rows: {num(g, '.0f')} GB/s = {ratio(g, copy)} copy (target >= 0.8)")
cu, ti = get("BM_matmul/cuda/4096", "flop_per_second", 1e12), get("BM_matmul_tiled/cuda/4096", "flop_per_second", 1e12)
print(f"- SGEMM 4096: cuBLAS {num(cu, '.1f')} TFLOP/s, tiled {num(ti, '.1f')} TFLOP/s = {ratio(ti, cu)} (target >= 0.6)")
def ms(name):
    x = b.get(name, {})
    return x.get("real_time", 0.0) * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}.get(x.get("time_unit", "ns"), 1e-6)
ts, ps = ms("BM_train_step/cuda/64"), ms("BM_train_step/pytorch_cuda/64")
if ts and ps:
    print(f"- mnist_conv train step, batch 64: Tessera {ts:.2f} ms, PyTorch {ps:.2f} ms (PyTorch/Tessera = {ps / ts:.2f})")
PY
checkpoint

# ---- MNIST on the GPU -------------------------------------------------------------------------
echo "== mnist_conv --device cuda ($(elapsed))"
if [ -n "$data" ]; then
  t=$(limit 150)
  t0=$(date +%s.%N)
  timeout "$t" "$bin/examples/mnist_conv/mnist_conv" --device cuda --epochs 1 --data "$data" "${mnist_args[@]}" \
    > "$work/mnist.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  say "- mnist_conv 1 epoch on cuda${MNIST_ARGS:+ ($MNIST_ARGS)}: rc=$rc, timeout ${t}s, wall $(python3 -c "print(f'{$t1-$t0:.1f}')")s; last lines:"
  tail -4 "$work/mnist.log" | sed 's/^/    /' | tee -a "$summary"
else
  say "- mnist_conv: SKIPPED (no Fashion-MNIST: run scripts/populate-deps.sh and carry .deps)"
fi
checkpoint

# ---- PyTorch eager, same net, batch 64, Adam 1e-3, data already on the GPU ----------------------
if [ -z "${SKIP_TORCH:-}" ] && [ -n "$data" ] && python3 -c 'import torch' 2>/dev/null; then
  echo "== PyTorch eager ($(elapsed))"
  timeout "$(limit 90)" python3 - "$data" > "$work/torch.log" 2>&1 <<'PY'
import gzip, os, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
d = sys.argv[1]
def idx(name):
    p = os.path.join(d, name)
    raw = gzip.open(p + ".gz").read() if os.path.exists(p + ".gz") else open(p, "rb").read()
    nd = raw[3]; dims = [int.from_bytes(raw[4 + 4*i:8 + 4*i], "big") for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4*nd).reshape(dims)
dev = torch.device("cuda")
x = torch.tensor(idx("train-images-idx3-ubyte"), device=dev).float().div_(255).sub_(0.2860).div_(0.3530).unsqueeze(1)
y = torch.tensor(idx("train-labels-idx1-ubyte"), device=dev).long()
xt = torch.tensor(idx("t10k-images-idx3-ubyte"), device=dev).float().div_(255).sub_(0.2860).div_(0.3530).unsqueeze(1)
yt = torch.tensor(idx("t10k-labels-idx1-ubyte"), device=dev).long()
class Net(nn.Module):  # pytorch/examples mnist/main.py, as examples/mnist_conv/net.hpp
    def __init__(s):
        super().__init__(); s.conv1 = nn.Conv2d(1, 32, 3); s.conv2 = nn.Conv2d(32, 64, 3)
        s.dropout1 = nn.Dropout(0.25); s.dropout2 = nn.Dropout(0.5); s.fc1 = nn.Linear(9216, 128); s.fc2 = nn.Linear(128, 10)
    def forward(s, x):
        x = F.max_pool2d(F.relu(s.conv2(F.relu(s.conv1(x)))), 2); x = torch.flatten(s.dropout1(x), 1)
        return F.log_softmax(s.fc2(s.dropout2(F.relu(s.fc1(x)))), 1)
torch.manual_seed(1)
torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False
m = Net().to(dev); opt = torch.optim.Adam(m.parameters(), lr=1e-3)
perm = torch.randperm(x.shape[0], device=dev)
torch.cuda.synchronize(); t0 = time.time()
m.train()
for i in range(0, x.shape[0], 64):
    b = perm[i:i + 64]; opt.zero_grad(); loss = F.nll_loss(m(x[b]), y[b]); loss.backward(); opt.step()
torch.cuda.synchronize(); t1 = time.time()
m.eval()
with torch.no_grad(): acc = sum((m(xt[i:i+1000]).argmax(1) == yt[i:i+1000]).sum().item() for i in range(0, 10000, 1000)) / 100
print(f"pytorch {torch.__version__} eager: 1 epoch (batch 64, Adam 1e-3, fp32, data on GPU) {t1 - t0:.2f}s, test accuracy {acc:.2f}%")
PY
  say "- $(tail -1 "$work/torch.log")"
fi
say "- total: $(elapsed)"
checkpoint
cat "$summary"
