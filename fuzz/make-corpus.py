#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/{idx,safetensors,shape}/).

Only the Python standard library; deterministic (fixed seeds, gzip mtime 0), so running it
again gives the same bytes. Usage: python3 fuzz/make-corpus.py [corpus_dir]

idx/          fuzz_idx inputs: byte 0 = mode (0 raw, 1 gzip-compressed by the harness,
              2 payload after a gzip magic) + 4 * magic index (0 any, 1 labels 2049,
              2 images 2051); the rest is the file. Valid uint8 IDX files of ranks 1 to 4,
              one empty, and the same as real .gz streams (mode 2 with the magic stripped,
              so the harness writes back a byte-identical gzip file) and compressed by the
              harness (mode 1).
safetensors/  fuzz_safetensors inputs: whole files, valid, with F64 F32 I64 I32 U8 BOOL,
              0-dim, empty tensors, metadata, and no tensors at all.
shape/        fuzz_shape inputs: FuzzedDataProvider bytes (arbitrary), a few fixed ones.
"""
import gzip
import io
import json
import os
import random
import struct
import sys


def idx_file(dims, data):
    head = bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + bytes(data)


def gz(payload):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(payload)
    return buf.getvalue()


def safetensors_file(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes), in data order."""
    header, body, off = {}, b"", 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        body += raw
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + body


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    rng = random.Random(20261130)

    def put(sub, name, data):
        d = os.path.join(root, sub)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    # ---- IDX --------------------------------------------------------------------------
    arrays = {
        "labels": [5],
        "images": [2, 3, 4],
        "rank2": [3, 2],
        "rank4": [1, 2, 2, 3],
        "empty": [0, 7],
    }
    for name, dims in arrays.items():
        n = 1
        for d in dims:
            n *= d
        f = idx_file(dims, [rng.randrange(256) for _ in range(n)])
        magic = {1: 1, 3: 2}.get(len(dims), 0)
        put("idx", f"{name}.raw", bytes([0 + 4 * magic]) + f)
        put("idx", f"{name}.zlib", bytes([1 + 4 * magic]) + f)
        put("idx", f"{name}.gz", bytes([2 + 4 * magic]) + gz(f)[2:])
    put("idx", "bad-type-float32.raw", bytes([0]) + bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + struct.pack(">f", 1.5))

    # ---- safetensors ------------------------------------------------------------------
    def rnd(fmt, count, gen):
        return struct.pack("<" + fmt * count, *[gen() for _ in range(count)])

    put("safetensors", "mixed.safetensors", safetensors_file([
        ("w", "F32", [2, 3], rnd("f", 6, lambda: rng.uniform(-2, 2))),
        ("b", "F64", [3], rnd("d", 3, lambda: rng.uniform(-2, 2))),
        ("step", "I64", [], rnd("q", 1, lambda: rng.randrange(-2**40, 2**40))),
        ("idx", "I32", [4], rnd("i", 4, lambda: rng.randrange(-2**31, 2**31))),
        ("pix", "U8", [2, 2], rnd("B", 4, lambda: rng.randrange(256))),
        ("mask", "BOOL", [3], rnd("B", 3, lambda: rng.randrange(2))),
    ], {"format": "pt", "note": "seed"}))
    put("safetensors", "empty-tensor.safetensors", safetensors_file([
        ("e", "F32", [0, 4], b""),
        ("x", "F32", [2], rnd("f", 2, lambda: rng.uniform(-1, 1))),
    ]))
    put("safetensors", "only-metadata.safetensors", safetensors_file([], {"k": "v"}))
    put("safetensors", "no-tensors.safetensors", safetensors_file([]))
    put("safetensors", "rank4-f64.safetensors", safetensors_file([
        ("conv", "F64", [2, 1, 2, 2], rnd("d", 8, lambda: rng.uniform(-1, 1))),
    ]))

    # ---- shape ------------------------------------------------------------------------
    for i in range(8):
        put("shape", f"random-{i}", bytes(rng.randrange(256) for _ in range(rng.randrange(16, 96))))
    put("shape", "zeros", bytes(32))
    put("shape", "ones", bytes([1] * 32))
    put("shape", "ff", bytes([0xFF] * 32))


if __name__ == "__main__":
    main()
