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
# The same with what may precede __shared__ on the declaration (static is dropped: the macro
# supplies it; extern, dynamic shared memory, is rejected).
SHARED_DECL = re.compile(r"(static\s+|extern\s+)?__shared__\s+([^;{}]*);")


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
    return m.group(0) + "".join(f" ::tessera_emu::poison_shared((void*)&{n}, sizeof({n}));" for n in names)


# __launch_bounds__(n) kernel_name( : launches of that kernel in the file check the bound.
BOUNDS = re.compile(r"__launch_bounds__\(([^)]*)\)\s*(\w+)\s*\(")


def blank_comments(text: str) -> str:
    """The text with comments and string literals replaced by spaces (same length, same line
    breaks), so that patterns are matched in code only."""
    pattern = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"', re.S)
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def substitute(pattern: re.Pattern, repl, text: str) -> str:
    """pattern.sub over the code of text only (matches found in the comment-blanked text)."""
    code = blank_comments(text)
    out, last = [], 0
    for m in pattern.finditer(code):
        out.append(text[last:m.start()])
        out.append(repl(m, text[m.start():m.end()]))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def rewrite(text: str) -> str:
    # __launch_bounds__(max_threads[, min_blocks[, ...]]): the launch checks max_threads.
    bounds = {name: value.split(",")[0].strip() for value, name in BOUNDS.findall(blank_comments(text))}

    def launch(m: re.Match, original: str) -> str:
        kernel, cfg = m.group(1), m.group(2)
        base = re.sub(r"<.*", "", kernel).split("::")[-1]
        config = f"::tessera_emu::LaunchConfig({cfg})"
        if base in bounds:
            config += f".bounded({bounds[base]})"
        rest = text[m.end():].lstrip()
        comma = "" if rest.startswith(")") else ", "  # kernel<<<g, b>>>() has no arguments
        return (f'::tessera_emu::launch({config}, "{kernel}", '
                f'[](auto... tessera_emu_args) {{ {kernel}(tessera_emu_args...); }}{comma}')

    def shared(m: re.Match, original: str) -> str:
        decl = m.group(0)
        if re.match(r"extern\b", m.group(1) or ""):
            raise SystemExit("rewrite_launches.py: extern __shared__ (dynamic shared memory) is not emulated")
        return poison_shared(SHARED.match(decl.replace("static ", "", 1) if decl.startswith("static ") else decl))

    out = substitute(LAUNCH, launch, text)
    out = substitute(SHARED_DECL, shared, out)
    if "<<<" in blank_comments(out):
        line = out[: blank_comments(out).find("<<<")].count("\n") + 1
        raise SystemExit(f"rewrite_launches.py: line {line}: a kernel launch this script does not understand")
    return out


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
