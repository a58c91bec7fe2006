#!/usr/bin/env bash
# The GPU check of issue 4, in one call on a machine with an NVIDIA GPU (the H200 lent by the
# device tool): build with CMake + ninja, run the CUDA parity suite, the CUDA benchmarks, one
# epoch of examples/mnist_conv on the GPU, and PyTorch eager with the same net for comparison.
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
# then copy what comes back from $OUT (summary.md, bench.json, *.log) to benchmarks/results/.
#
# Options (environment): ARCHS (CMAKE_CUDA_ARCHITECTURES, default 90), JOBS (default nproc),
# BUILD_DIR (default build-gpu), SKIP_TORCH=1.
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

# ---- benchmarks -------------------------------------------------------------------------------
echo "== benchmarks ($(elapsed))"
timeout 90 "$bin/benchmarks/tessera_bench" --benchmark_filter='BM_cuda' --benchmark_min_time=0.3 \
  --benchmark_out="$OUT/bench.json" --benchmark_out_format=json > "$OUT/bench.log" 2>&1
say "- benchmarks: rc=$?"
python3 - "$OUT/bench.json" >> "$summary" 2>&1 <<'PY'
import json, sys
try:
    b = {x["name"]: x for x in json.load(open(sys.argv[1]))["benchmarks"]}
except Exception as e:
    print(f"- benchmark summary unavailable: {e}"); sys.exit(0)
def bw(prefix):
    for k, v in b.items():
        if k.startswith(prefix): return v.get("bytes_per_second", 0) / 1e9
    return 0.0
copy = bw("BM_cuda_copy_d2d")
print(f"- device-to-device copy: {copy:.0f} GB/s (bytes read + written)")
add = bw("BM_cuda_add")
print(f"- add 256 MiB: {add:.0f} GB/s = {add / copy if copy else 0:.2f}x copy (target >= 0.85)")
for k, v in sorted(b.items()):
    if k.startswith("BM_cuda_softmax"):
        g = v.get("bytes_per_second", 0) / 1e9
        print(f"- {v.get('label', '')} {k}: {g:.0f} GB/s = {g / copy if copy else 0:.2f}x copy (target >= 0.8)")
tf = {v.get("label"): v.get("TFLOPS", 0) / 1e12 if v.get("TFLOPS", 0) > 1e6 else v.get("TFLOPS", 0)
      for k, v in b.items() if k.startswith("BM_cuda_sgemm")}
cu, ti = tf.get("cublas", 0), tf.get("tiled", 0)
print(f"- SGEMM 4096: cuBLAS {cu:.1f} TFLOPS, tiled {ti:.1f} TFLOPS = {ti / cu if cu else 0:.2f}x (target >= 0.6)")
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
