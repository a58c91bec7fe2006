#!/usr/bin/env python3
"""Turns a .cu file into C++ that g++ compiles against the CUDA emulator (tests/cuda_emu).

The only CUDA syntax a host compiler cannot parse is the launch `kernel<<<cfg>>>(args)`; it
becomes `::tessera_emu::launch(::tessera_emu::LaunchConfig(cfg), "kernel", [](auto... a) {
kernel(a...); }, args)` (a lambda, so that template arguments the kernel deduces from its
arguments, such as functor types, are deduced as in the original call).
Each __shared__ declaration is followed by a call that fills the variable with 0xFF bytes when
the first thread of a block reaches it (shared memory is uninitialised on a GPU). Everything
else (__global__, __shared__, threadIdx, __syncthreads, shuffles) is handled by emu_device.hpp,
which the build force-includes. A #line directive keeps compiler messages
pointing at the original file.

usage: rewrite_launches.py input.cu output.cpp
"""
import re
import sys

# name, optionally with one level of template arguments (kernels<T, L, V>), then <<<cfg>>>(
LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)<<<(.*?)>>>\(")


# __shared__ declarations: each declared variable is poisoned (0xFF bytes) when the first
# thread of a block reaches its declaration, as shared memory is uninitialised on a GPU.
SHARED = re.compile(r"__shared__\s+([^;{}]*);")


def poison_shared(m: re.Match) -> str:
    parts, depth, cur = [], 0, ""
    for ch in m.group(1):
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    names = [re.findall(r"\w+", p.split("[")[0])[-1] for p in parts]
    return m.group(0) + "".join(f" ::tessera_emu::poison_shared(&{n}, sizeof({n}));" for n in names)


def rewrite(text: str) -> str:
    def sub(m: re.Match) -> str:
        kernel, cfg = m.group(1), m.group(2)
        return (f'::tessera_emu::launch(::tessera_emu::LaunchConfig({cfg}), "{kernel}", '
                f'[](auto... tessera_emu_args) {{ {kernel}(tessera_emu_args...); }}, ')

    out = SHARED.sub(poison_shared, LAUNCH.sub(sub, text))
    if "<<<" in out or ">>>" in out:
        line = out[: out.find("<<<" if "<<<" in out else ">>>")].count("\n") + 1
        raise SystemExit(f"rewrite_launches.py: line {line}: a kernel launch this script does not understand")
    # A launch with no arguments would now end in ", )".
    return re.sub(r'(::tessera_emu::launch\([^;]*?), \)', r"\1)", out)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    body = rewrite(text)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(f'#line 1 "{src}"\n{body}')


if __name__ == "__main__":
    main()
