#!/usr/bin/env bash
# The GPU check of issue 4, in one call on a machine with an NVIDIA GPU (the H200 lent by the
# device tool): build with CMake + ninja, run the CUDA parity suite, the benchmark suite (Tessera
# CUDA, the same cases through PyTorch with scripts/bench-pytorch.py, Tessera on this host's CPU;
# about 2 minutes), one epoch of examples/mnist_conv on the GPU, and PyTorch eager with the
# same net for comparison.
# Logs and a summary go to $OUT (default ./gpu-check-out). Fits in about 8 minutes on an H200
# with 16 cores.
#
# Dependencies: CUDA toolkit with cuBLAS and cuDNN (or the nvidia-cudnn Python package), CMake,
# ninja. Eigen, Catch2, nlohmann-json, Google Benchmark, CLI11 and zlib are taken from the
# system when found, else from .deps/ (an install prefix filled on a Debian machine by
# scripts/populate-deps.sh, which also copies Fashion-MNIST to .deps/data/fashion-mnist).
#
# Through the device tool (from the repository root on the development machine):
#   scripts/populate-deps.sh
#   run(command="bash scripts/gpu-check.sh", carry=[".deps"], timeout_s=600)
# then copy what comes back from $OUT: results/<date>-<gpu>/ (the benchmark suite's JSON, env,
# nvidia-smi, lscpu, command) into benchmarks/results/ and run scripts/bench-report for the plots
# and BENCHMARKS.md; summary.md and *.log next to it.
#
# Options (environment): ARCHS (CMAKE_CUDA_ARCHITECTURES, default 90), JOBS (default nproc),
# BUILD_DIR (default build-gpu), SKIP_TORCH=1, SUITE_SECONDS (benchmark budget, default 120).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
OUT="${OUT:-$root/gpu-check-out}"
mkdir -p "$OUT"
ARCHS="${ARCHS:-90}"
JOBS="${JOBS:-$(nproc)}"
BUILD_DIR="${BUILD_DIR:-build-gpu}"
summary="$OUT/summary.md"
start=$(date +%s)
say() { echo "$*" | tee -a "$summary"; }
elapsed() { echo "$(( $(date +%s) - start ))s"; }

: > "$summary"
say "# Tessera GPU check"
say ""
say "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "- gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || echo 'nvidia-smi failed')"
say "- nvcc: $(nvcc --version 2>/dev/null | tail -1 || /usr/local/cuda/bin/nvcc --version | tail -1)"
say "- cmake: $(cmake --version | head -1), ninja $(ninja --version 2>/dev/null)"
say "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')"

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
cmake_args=(-S "$root" -B "$root/$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_CUDA=ON
  -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DTESSERA_BUILD_TESTS=ON -DTESSERA_BUILD_BENCHMARKS=ON
  -DTESSERA_BUILD_EXAMPLES=ON)
[ -n "$prefix" ] && cmake_args+=(-DCMAKE_PREFIX_PATH="$prefix" -DEigen3_DIR="$prefix/share/eigen3/cmake")
[ -n "$cudnn_root" ] && cmake_args+=(-DCUDNN_ROOT="$cudnn_root")
[ -x /usr/local/cuda/bin/nvcc ] && cmake_args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
if ! cmake "${cmake_args[@]}" > "$OUT/build.log" 2>&1; then
  say "- FAIL: configure (see build.log)"; tail -40 "$OUT/build.log"; exit 3
fi
if ! timeout 330 cmake --build "$root/$BUILD_DIR" -j "$JOBS" --target tessera_cuda_tests tessera_bench mnist_conv tessera-env \
    >> "$OUT/build.log" 2>&1; then
  say "- FAIL: build (see build.log)"; grep -E "error|Error" "$OUT/build.log" | head -40; exit 4
fi
say "- build: OK ($(elapsed))"
bin="$root/$BUILD_DIR"
export LD_LIBRARY_PATH="${prefix:+$prefix/lib/x86_64-linux-gnu:}${cudnn_root:+$cudnn_root/lib:}${LD_LIBRARY_PATH:-}"

# ---- the GPU stack as tessera-env sees it (issue 5 wants this output from a GPU machine) -------
"$bin/tools/tessera-env" > "$OUT/env.txt" 2>&1
say "- tessera-env: rc=$? ($(tail -1 "$OUT/env.txt"))"

# ---- parity suite -----------------------------------------------------------------------------
echo "== parity tests ($(elapsed))"
timeout 120 "$bin/tests/tessera_cuda_tests" --durations yes > "$OUT/parity.log" 2>&1
rc=$?
case $rc in
  0) say "- parity: PASS ($(grep -E 'test cases' "$OUT/parity.log" | tail -1))" ;;
  77) say "- parity: SKIPPED (CUDA not usable: $(grep SKIPPED "$OUT/parity.log"))" ;;
  *) say "- parity: FAIL rc=$rc ($(grep -E 'test cases' "$OUT/parity.log" | tail -1))" ;;
esac

# ---- benchmarks (issue 6 suite): Tessera CUDA, PyTorch CUDA, Tessera CPU on this host's CPU -----
# About 2 minutes at most in all (SUITE_SECONDS): each part gets a timeout within what is left,
# writes its JSON as it goes (line-buffered stdout), and a part cut short still reports the
# cases it finished. Results: $OUT/results/<date>-<gpu>/, the layout scripts/bench-report
# reads; copy that folder to benchmarks/results/ and run scripts/bench-report there for plots.
echo "== benchmarks ($(elapsed))"
SUITE_SECONDS="${SUITE_SECONDS:-120}"
suite_start=$(date +%s)
suite_left() { echo $(( SUITE_SECONDS - ($(date +%s) - suite_start) )); }
cap() { local l; l=$(suite_left); (( l < $1 )) && echo $(( l > 5 ? l : 5 )) || echo "$1"; }
gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
res="$OUT/results/$(date -u +%Y-%m-%d)-$(echo "${gpu_name:-gpu}" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9]+/-/g; s/^-+|-+$//g')"
mkdir -p "$res"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv,noheader \
  > "$res/nvidia-smi.txt" 2>/dev/null
{
  lscpu 2>/dev/null | grep -E '^(Architecture|Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|L1d|L2|L3)'
  echo "Memory: $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
} > "$res/lscpu.txt"
cp "$OUT/env.txt" "$res/env.txt" 2>/dev/null
bench="$bin/benchmarks/tessera_bench"
{
  echo "scripts/gpu-check.sh (benchmark part, SUITE_SECONDS=$SUITE_SECONDS):"
  echo "$bench --benchmark_filter=/cuda/ --benchmark_min_time=0.02 --benchmark_format=json > tessera-cuda.json"
  echo "python3 scripts/bench-pytorch.py --out pytorch.json --min-time 0.02"
  echo "OMP_NUM_THREADS=$(nproc) $bench --benchmark_filter=/cpu/ --benchmark_min_time=0.02 --benchmark_format=json > tessera-cpu.json"
} > "$res/command.txt"
t=$(cap 75)
timeout "$t" stdbuf -oL "$bench" --benchmark_filter='/cuda/' --benchmark_min_time=0.02 --benchmark_format=json \
  > "$res/tessera-cuda.json" 2> "$OUT/bench.log"
say "- benchmarks, Tessera CUDA: rc=$? (timeout ${t}s; $(grep -c '"name"' "$res/tessera-cuda.json") cases, $(elapsed))"
if [ -z "${SKIP_TORCH:-}" ] && python3 -c 'import torch' 2>/dev/null; then
  t=$(cap 50)
  timeout "$t" python3 "$root/scripts/bench-pytorch.py" --out "$res/pytorch.json" --min-time 0.02 \
    --max-seconds $(( t > 15 ? t - 10 : 5 )) > "$OUT/bench-pytorch.log" 2>&1
  say "- benchmarks, PyTorch CUDA: rc=$? (timeout ${t}s; $(grep -c '"name"' "$res/pytorch.json" 2>/dev/null) cases, $(elapsed))"
fi
t=$(cap 40)
OMP_NUM_THREADS="$(nproc)" timeout "$t" stdbuf -oL "$bench" --benchmark_filter='/cpu/' --benchmark_min_time=0.02 \
  --benchmark_format=json > "$res/tessera-cpu.json" 2>> "$OUT/bench.log"
say "- benchmarks, Tessera CPU ($(nproc) threads): rc=$? (timeout ${t}s; $(grep -c '"name"' "$res/tessera-cpu.json") cases, $(elapsed))"
python3 "$root/scripts/bench-report" "$res" --no-update --no-plots > /dev/null 2>> "$OUT/bench.log" &&
  say "- benchmark report (no plots): ${res#$OUT/}/report.md"
python3 - "$res" >> "$summary" 2>&1 <<'PY'
# Issue 4's targets from the suite's JSON (names: BM_<op>/cuda/<size>/manual_time).
import json, os, re, sys
res = sys.argv[1]
b = {}
for f in ("tessera-cuda.json", "pytorch.json"):
    p = os.path.join(res, f)
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
def get(name, key):
    return b.get(name, {}).get(key, 0.0)
copy = get("BM_peak_copy/cuda/67108864", "bytes_per_second") / 1e9
sgemm = get("BM_peak_sgemm/cuda/8192", "flop_per_second") / 1e12
print(f"- device-to-device copy: {copy:.0f} GB/s (bytes read + written); cuBLAS SGEMM 8192: {sgemm:.1f} TFLOP/s")
for n, mib in ((1 << 26, 256), (1 << 28, 1024)):
    add = get(f"BM_add/cuda/{n}", "bytes_per_second") / 1e9
    print(f"- add {mib} MiB per tensor: {add:.0f} GB/s = {add / copy if copy else 0:.2f}x copy (target >= 0.85)")
for op in ("softmax", "log_softmax"):
    for n in (1 << 26, 1 << 28):
        g = get(f"BM_{op}/cuda/{n}", "bytes_per_second") / 1e9
        print(f"- {op} rows of 4096, {n >> 12} rows: {g:.0f} GB/s = {g / copy if copy else 0:.2f}x copy (target >= 0.8)")
cu, ti = get("BM_matmul/cuda/4096", "flop_per_second") / 1e12, get("BM_matmul_tiled/cuda/4096", "flop_per_second") / 1e12
print(f"- SGEMM 4096: cuBLAS {cu:.1f} TFLOP/s, tiled {ti:.1f} TFLOP/s = {ti / cu if cu else 0:.2f}x (target >= 0.6)")
def ms(name):
    x = b.get(name, {})
    return x.get("real_time", 0.0) * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}.get(x.get("time_unit", "ns"), 1e-6)
ts, ps = ms("BM_train_step/cuda/64"), ms("BM_train_step/pytorch_cuda/64")
if ts and ps:
    print(f"- mnist_conv train step, batch 64: Tessera {ts:.2f} ms, PyTorch {ps:.2f} ms (PyTorch/Tessera = {ps / ts:.2f})")
PY

# ---- MNIST on the GPU -------------------------------------------------------------------------
echo "== mnist_conv --device cuda ($(elapsed))"
if [ -n "$data" ]; then
  t0=$(date +%s.%N)
  timeout 150 "$bin/examples/mnist_conv/mnist_conv" --device cuda --epochs 1 --data "$data" > "$OUT/mnist.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  say "- mnist_conv 1 epoch on cuda: rc=$rc, wall $(python3 -c "print(f'{$t1-$t0:.1f}')")s; last lines:"
  tail -4 "$OUT/mnist.log" | sed 's/^/    /' | tee -a "$summary"
else
  say "- mnist_conv: SKIPPED (no Fashion-MNIST: run scripts/populate-deps.sh and carry .deps)"
fi

# ---- PyTorch eager, same net, batch 64, Adam 1e-3, data already on the GPU ----------------------
if [ -z "${SKIP_TORCH:-}" ] && [ -n "$data" ]; then
  echo "== PyTorch eager ($(elapsed))"
  timeout 90 python3 - "$data" > "$OUT/torch.log" 2>&1 <<'PY'
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
  say "- $(tail -1 "$OUT/torch.log")"
fi
say "- total: $(elapsed)"
cat "$summary"
