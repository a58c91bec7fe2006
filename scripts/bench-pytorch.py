#!/usr/bin/env python3
"""Time tessera_bench's CUDA cases through PyTorch (eager, float32, TF32 off) on the GPU.

    python3 scripts/bench-pytorch.py --out pytorch.json [--min-time 0.05] [--filter REGEX]
                                     [--max-seconds 100] [--device cuda]

For the lent GPU machine (scripts/gpu-check.sh runs it): the same ops, sizes and names as
benchmarks/bench_common.hpp and benchmarks/tessera_bench.cpp, with device tag
"pytorch_cuda" (BM_<op>/pytorch_cuda/<size>/manual_time), timed the same way: one untimed
warm-up, then iterations of `reps` ops queued back to back followed by
torch.cuda.synchronize(), the time of one op = iteration time / reps (reps 10, or 1 for
conv backward and the training step), iterations until --min-time seconds were timed.
Ceilings measured in this process: device-to-device copy of a 256 MiB tensor and torch.mm
(cuBLAS SGEMM) at 8192. cudnn.benchmark is on (Tessera picks its cuDNN algorithms with
cudnnFind too).

Writes Google Benchmark-like JSON (context + benchmarks with real_time, time_unit and the
counters bytes/flop, bytes_per_second/flop_per_second, ceiling, ceiling_fraction) that
scripts/bench-report reads; the file is rewritten after every case, so a run stopped by
--max-seconds or a timeout still leaves a valid file. --device cpu runs the same code on
the CPU (for checking the script where there is no GPU; names then say pytorch_cpu).
"""
import argparse
import datetime
import json
import os
import platform
import re
import socket
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- sizes: keep in step with benchmarks/bench_common.hpp (GPU lists) ------------------------------
ELEMENTWISE = [1 << p for p in range(10, 29, 2)]  # 2^10 .. 2^28 elements
SOFTMAX_ROW = 4096
SOFTMAX = [n for n in ELEMENTWISE if n >= SOFTMAX_ROW]  # 2^12 .. 2^28, rows of 4096
MATMUL = [64 << i for i in range(8)]  # 64 .. 8192
CONV_LAYERS = [  # name, c_in, c_out, hw, k, pad, input_grad, batches
    ("mnist1", 1, 32, 28, 3, 0, False, [1, 16, 64, 256]),
    ("mnist2", 32, 64, 26, 3, 0, True, [1, 16, 64, 256]),
    ("resnet3x3", 64, 64, 56, 3, 1, True, [1, 16, 64, 256]),
]
POOL_BATCHES = [1, 16, 64, 256, 1024, 4096]  # [batch, 64, 24, 24], 2x2
POOL_C, POOL_HW = 64, 24
TRAIN_BATCH = 64
COPY_ELEMS = 64 << 20
SGEMM_N = 8192
REPS = 10


def conv_forward_flop(c_in, c_out, hw, k, pad, batch):
    out = hw + 2 * pad - k + 1
    return 2.0 * batch * c_out * out * out * c_in * k * k


def train_step_flop(batch):
    conv1 = conv_forward_flop(1, 32, 28, 3, 0, batch)
    conv2 = conv_forward_flop(32, 64, 26, 3, 0, batch)
    fc = 2.0 * batch * (9216 * 128 + 128 * 10)
    return 3.0 * (conv1 + conv2 + fc) - conv1


class Net(nn.Module):  # pytorch/examples mnist/main.py, as examples/mnist_conv/net.hpp
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = torch.flatten(self.dropout1(x), 1)
        return F.log_softmax(self.fc2(self.dropout2(F.relu(self.fc1(x)))), 1)


class Suite:
    def __init__(self, args):
        self.args = args
        self.dev = torch.device(args.device)
        self.tag = "pytorch_" + self.dev.type
        self.filter = re.compile(args.filter) if args.filter else None
        self.start = time.time()
        self.results = []
        self.stopped = None
        self.context = {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host_name": socket.gethostname(),
            "executable": "scripts/bench-pytorch.py",
            "num_cpus": os.cpu_count(),
            "suite": "pytorch",
            "pytorch_version": torch.__version__,
            "python_version": platform.python_version(),
            "threads": str(torch.get_num_threads()),
            "library_build_type": "release",
        }
        if self.dev.type == "cuda":
            self.context.update({
                "gpu": torch.cuda.get_device_name(0),
                "cuda_runtime": str(torch.version.cuda),
                "cudnn_version": str(torch.backends.cudnn.version()),
            })
        self.copy_bw = None
        self.sgemm = None

    def sync(self):
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def randn(self, *shape):
        return torch.randn(*shape, device=self.dev, dtype=torch.float32)

    def time_op(self, op, prepare=None, reps=REPS):
        """Mean seconds per op (warm-up excluded), and the number of iterations."""
        if self.dev.type != "cuda":
            reps = 1
        if prepare:
            prepare()
        op()
        self.sync()
        total, n = 0.0, 0
        while total < self.args.min_time or n < 1:
            if prepare:
                prepare()
            self.sync()
            t0 = time.perf_counter()
            for _ in range(reps):
                op()
            self.sync()
            total += (time.perf_counter() - t0) / reps
            n += 1
        return total / n, n

    def ceilings(self):
        if self.copy_bw is None:
            src, dst = self.randn(COPY_ELEMS), torch.empty(COPY_ELEMS, device=self.dev)
            dst.copy_(src)
            self.sync()
            best = 0.0
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(REPS):
                    dst.copy_(src)
                self.sync()
                best = max(best, 8.0 * COPY_ELEMS * REPS / (time.perf_counter() - t0))
            self.copy_bw = best
            del src, dst
            n = SGEMM_N if self.dev.type == "cuda" else 1024
            a, b = self.randn(n, n), self.randn(n, n)
            torch.mm(a, b)
            self.sync()
            best = 0.0
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(3):
                    torch.mm(a, b)
                self.sync()
                best = max(best, 2.0 * n ** 3 * 3 / (time.perf_counter() - t0))
            self.sgemm = best
        return self.copy_bw, self.sgemm

    def case(self, op, size, kind, work, fn):
        """Runs fn() -> seconds per op for case BM_<op>/<tag>/<size> unless filtered out."""
        name = f"BM_{op}/{self.tag}/{size}"
        if self.filter and not self.filter.search(name):
            return
        if self.stopped:
            return
        if time.time() - self.start > self.args.max_seconds:
            self.stopped = f"stopped after {self.args.max_seconds:.0f} s (--max-seconds) before {name}"
            print(f"bench-pytorch: {self.stopped}", file=sys.stderr)
            self.context["stopped"] = self.stopped
            self.write()
            return
        copy_bw, sgemm = self.ceilings()
        ceiling = copy_bw if kind == "bytes" else sgemm
        entry = {"name": name + "/manual_time", "run_name": name + "/manual_time", "run_type": "iteration",
                 "repetitions": 1, "repetition_index": 0, "threads": 1}
        try:
            seconds, iters = fn()
            rate = work / seconds
            unit = "ms" if seconds >= 1e-3 else "us"
            scale = 1e3 if unit == "ms" else 1e6
            entry.update({"iterations": iters, "real_time": seconds * scale, "cpu_time": seconds * scale,
                          "time_unit": unit, kind: work, f"{kind}_per_second": rate, "ceiling": ceiling,
                          "ceiling_fraction": rate / ceiling})
            print(f"{name:<44} {seconds * scale:12.4g} {unit}  {rate / 1e9:10.4g} G{'B' if kind == 'bytes' else 'FLOP'}/s"
                  f"  {rate / ceiling:6.3f} of ceiling", flush=True)
        except RuntimeError as e:  # e.g. out of memory: record, go on
            entry.update({"error_occurred": True, "error_message": str(e).splitlines()[0], "iterations": 0,
                          "real_time": 0, "cpu_time": 0, "time_unit": "us"})
            print(f"{name:<44} ERROR {entry['error_message']}", flush=True)
            torch.cuda.empty_cache() if self.dev.type == "cuda" else None
        self.results.append(entry)
        self.write()

    def ceiling_cases(self):
        for op, size, kind in (("peak_copy", COPY_ELEMS, "bytes"), ("peak_sgemm", SGEMM_N, "flop")):
            name = f"BM_{op}/{self.tag}/{size}"
            if self.filter and not self.filter.search(name):
                continue
            copy_bw, sgemm = self.ceilings()
            v = copy_bw if kind == "bytes" else sgemm
            self.results.append({"name": name + "/manual_time", "run_name": name + "/manual_time", "run_type": "iteration",
                                 "repetitions": 1, "repetition_index": 0, "threads": 1, "iterations": 1,
                                 "real_time": 0, "cpu_time": 0, "time_unit": "ms", f"{kind}_per_second": v,
                                 "ceiling": v, "ceiling_fraction": 1.0})
        self.write()

    def write(self):
        doc = {"context": self.context, "benchmarks": self.results}
        tmp = self.args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2)
        os.replace(tmp, self.args.out)

    # ---- the cases ---------------------------------------------------------------------------------
    def run(self):
        self.ceiling_cases()
        torch.set_grad_enabled(False)
        for n in ELEMENTWISE:
            def add(n=n):
                a, b = self.randn(n), self.randn(n)
                return self.time_op(lambda: torch.add(a, b))
            self.case("add", n, "bytes", 12.0 * n, add)
        for n in ELEMENTWISE:
            def relu(n=n):
                a = self.randn(n)
                return self.time_op(lambda: torch.relu(a))
            self.case("relu", n, "bytes", 8.0 * n, relu)
        for n in ELEMENTWISE:
            def total(n=n):
                a = self.randn(n)
                return self.time_op(lambda: torch.sum(a))
            self.case("sum", n, "bytes", 4.0 * n, total)
        for op, f in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
            for n in SOFTMAX:
                def sm(n=n, f=f):
                    x = self.randn(n // SOFTMAX_ROW, SOFTMAX_ROW)
                    return self.time_op(lambda: f(x, 1))
                self.case(op, n, "bytes", 8.0 * n, sm)
        for n in MATMUL:
            def mm(n=n):
                a, b = self.randn(n, n), self.randn(n, n)
                return self.time_op(lambda: torch.matmul(a, b))
            self.case("matmul", n, "flop", 2.0 * n ** 3, mm)
        for op, dt in (("matmul_bf16", torch.bfloat16), ("matmul_fp16", torch.float16)):
            for n in ([1024, 2048, 4096, 8192] if self.dev.type == "cuda" else [256, 512]):
                def mm16(n=n, dt=dt):
                    a, b = self.randn(n, n).to(dt), self.randn(n, n).to(dt)
                    return self.time_op(lambda: torch.matmul(a, b))
                self.case(op, n, "flop", 2.0 * n ** 3, mm16)
        for name, c_in, c_out, hw, k, pad, input_grad, batches in CONV_LAYERS:
            for batch in batches:
                flop = conv_forward_flop(c_in, c_out, hw, k, pad, batch)

                def fwd(batch=batch, c_in=c_in, c_out=c_out, hw=hw, k=k, pad=pad):
                    torch.manual_seed(1)
                    x = self.randn(batch, c_in, hw, hw)
                    w = self.randn(c_out, c_in, k, k) / (c_in * k * k)
                    b = self.randn(c_out)
                    return self.time_op(lambda: F.conv2d(x, w, b, 1, pad))
                self.case(f"conv2d_fwd_{name}", batch, "flop", flop, fwd)

                def bwd(batch=batch, c_in=c_in, c_out=c_out, hw=hw, k=k, pad=pad, input_grad=input_grad):
                    torch.manual_seed(1)
                    with torch.enable_grad():
                        x = self.randn(batch, c_in, hw, hw).requires_grad_(input_grad)
                        w = (self.randn(c_out, c_in, k, k) / (c_in * k * k)).requires_grad_(True)
                        b = self.randn(c_out).requires_grad_(True)
                        out = hw + 2 * pad - k + 1
                        gy = self.randn(batch, c_out, out, out)
                        state = {}

                        def prepare():
                            for t in (x, w, b):
                                t.grad = None
                            state["y"] = F.conv2d(x, w, b, 1, pad)
                        return self.time_op(lambda: state["y"].backward(gy), prepare=prepare, reps=1)
                self.case(f"conv2d_bwd_{name}", batch, "flop", flop * (2.0 if input_grad else 1.0), bwd)
        for batch in POOL_BATCHES:
            def pool(batch=batch):
                x = self.randn(batch, POOL_C, POOL_HW, POOL_HW)
                return self.time_op(lambda: F.max_pool2d(x, 2))
            numel = batch * POOL_C * POOL_HW * POOL_HW
            self.case("max_pool2d", batch, "bytes", 4.0 * (numel + numel / 4), pool)

        def train():
            torch.manual_seed(1)
            with torch.enable_grad():
                net = Net().to(self.dev).train()
                opt = torch.optim.Adam(net.parameters(), lr=1e-3)
                x = self.randn(TRAIN_BATCH, 1, 28, 28)
                y = torch.randint(0, 10, (TRAIN_BATCH,), device=self.dev)

                def step():
                    opt.zero_grad()
                    F.nll_loss(net(x), y).backward()
                    opt.step()
                return self.time_op(step)  # REPS steps per sync on the GPU, as tessera_bench
        self.case("train_step", TRAIN_BATCH, "flop", train_step_flop(TRAIN_BATCH), train)
        self.write()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds timed per case (after the warm-up)")
    ap.add_argument("--filter", default="", help="regex on BM_<op>/<device>/<size>")
    ap.add_argument("--max-seconds", type=float, default=1e9, help="stop starting new cases after this many seconds")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench-pytorch: torch.cuda.is_available() is False: no GPU for PyTorch here")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    s = Suite(a)
    s.run()
    print(f"bench-pytorch: {len(s.results)} cases in {time.time() - s.start:.0f} s -> {a.out}")


if __name__ == "__main__":
    main()
