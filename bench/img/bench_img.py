#!/usr/bin/env python3
"""kumo img convert against qemu-img convert, on the same images, in one run.

usage: bench_img.py KUMO [--size-mib N] [--runs N] [--dir DIR] [--json]

Makes a raw image of N MiB (default 2048): of every 4 MiB, 2 MiB of text
(compressible), 1 MiB of random bytes and 1 MiB left as a hole. Then, runs
alternating between the two tools so drift on the machine hits both:

  raw → qcow2          convert -O qcow2
  qcow2 → raw          convert -O raw (from the qcow2 qemu-img made)
  raw → qcow2 -c       compressed (zlib), on the first quarter of the image

Every output is checked with `qemu-img compare` against the source (and
kumo's qcow2 with `qemu-img check`) so a fast wrong answer does not count.
Reports median seconds and the ratio qemu-img/kumo (> 1: kumo faster).
Everything is made in a temporary directory that is removed on the way out.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20


def make_source(path, mib):
    text = b"".join(b"%08d kumo img benchmark line, compressible text\n" % i
                    for i in range(MIB // 48 + 1))[:MIB]
    with open(path, "wb") as f:
        for i in range(mib):
            kind = i % 4
            if kind in (0, 1):
                f.write(text[i % 64:] + text[:i % 64])
            elif kind == 2:
                f.write(os.urandom(MIB))
            else:
                f.seek(MIB, os.SEEK_CUR)
        f.truncate(mib * MIB)


def run(cmd):
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit("FAIL: %s: exit %d\n%s" % (" ".join(cmd), r.returncode, r.stdout.decode()))
    return dt


def verify(src, src_fmt, out, out_fmt, check):
    run(["qemu-img", "compare", "-f", src_fmt, "-F", out_fmt, src, out])
    if check:
        run(["qemu-img", "check", "-f", "qcow2", out])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kumo")
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to make the images (default: $TMPDIR)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tools = {"kumo": [a.kumo, "img"], "qemu": ["qemu-img"]}
    tmp = tempfile.mkdtemp(prefix="kumo-bench-img-", dir=a.dir)
    try:
        raw = os.path.join(tmp, "src.raw")
        small = os.path.join(tmp, "small.raw")
        qcow = os.path.join(tmp, "src.qcow2")
        make_source(raw, a.size_mib)
        make_source(small, a.size_mib // 4)
        run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow])
        cases = [
            ("raw -> qcow2", raw, "raw", "qcow2", []),
            ("qcow2 -> raw", qcow, "qcow2", "raw", []),
            ("raw -> qcow2 -c (1/4 size)", small, "raw", "qcow2", ["-c"]),
        ]
        times = {(c[0], t): [] for c in cases for t in tools}
        for i in range(a.runs):
            for name, src, sf, of, extra in cases:
                order = list(tools) if i % 2 == 0 else list(reversed(list(tools)))
                for t in order:
                    out = os.path.join(tmp, "out-%s.%s" % (t, of))
                    if os.path.exists(out):
                        os.unlink(out)
                    dt = run(tools[t] + ["convert", "-f", sf, "-O", of] + extra + [src, out])
                    verify(src, sf, out, of, of == "qcow2")
                    times[(name, t)].append(dt)
                    os.unlink(out)
        result = []
        for name, *_ in cases:
            k = statistics.median(times[(name, "kumo")])
            q = statistics.median(times[(name, "qemu")])
            result.append({"case": name, "kumo_s": round(k, 3), "qemu_img_s": round(q, 3),
                           "ratio": round(q / k, 2)})
        if a.json:
            print(json.dumps({"size_mib": a.size_mib, "runs": a.runs, "results": result}))
        else:
            print("img convert, %d MiB image, median of %d runs (ratio: qemu-img/kumo, > 1 kumo faster)"
                  % (a.size_mib, a.runs))
            for r in result:
                print("  %-28s kumo %7.2f s   qemu-img %7.2f s   ratio %.2f" %
                      (r["case"], r["kumo_s"], r["qemu_img_s"], r["ratio"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
