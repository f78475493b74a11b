#!/usr/bin/env python3
"""`kumo img convert` against `qemu-img convert` on a 2 GiB image, in one
run, alternating, medians of N runs, ratio qemu-img time / kumo time (>1:
kumo faster).

The source: a 2 GiB disk of which every other MiB holds random data (1 GiB
of data, the rest zeros), as a sparse raw file and as qcow2 (made by
qemu-img, 64 KiB clusters). Conversions, each checked after it ran:
  qcow2->raw    -f qcow2 -O raw: the outputs of both tools byte-identical
  raw->qcow2    -f raw -O qcow2: `qemu-img compare` with the source equal,
                `qemu-img check` clean
  qcow2->qcow2  -f qcow2 -O qcow2: the same checks
Both tools read the same files, which stay in the page cache between runs
(the host's memory permitting): this measures the tools, not the disk.

usage: bench_convert.py KUMO [--runs 3] [--size-mib 2048] [--json]
KUMO is the kumo binary (build/kumo, with `kumo img`).
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

CASES = [("qcow2->raw", "src.qcow2", "qcow2", "raw"), ("raw->qcow2", "src.raw", "raw", "qcow2"),
         ("qcow2->qcow2", "src.qcow2", "qcow2", "qcow2")]


class Bad(Exception):
    pass


def run(argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        raise Bad("%s: status %d: %s" % (" ".join(argv), r.returncode, r.stdout[-1000:]))
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kumo")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    kumo = os.path.abspath(a.kumo)
    if subprocess.run([kumo, "img", "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
        sys.exit("bench: %s has no `img` command" % kumo)
    tmp = tempfile.mkdtemp(prefix="kumo-bench-convert.")
    times = {c[0]: {"kumo": [], "qemu-img": []} for c in CASES}
    try:
        src = os.path.join(tmp, "src.raw")
        with open(src, "wb") as f:
            f.truncate(a.size_mib << 20)
            for mib in range(0, a.size_mib, 2):
                f.seek(mib << 20)
                f.write(os.urandom(1 << 20))
        run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", src, os.path.join(tmp, "src.qcow2")])
        for i in range(a.runs):
            for name, source, ifmt, ofmt in CASES:
                outs = {}
                for tool in ("kumo", "qemu-img"):
                    out = os.path.join(tmp, "%s.%s" % (tool, ofmt))
                    if os.path.exists(out):
                        os.unlink(out)
                    argv = ([kumo, "img"] if tool == "kumo" else ["qemu-img"]) + [
                        "convert", "-f", ifmt, "-O", ofmt, os.path.join(tmp, source), out]
                    t0 = time.perf_counter()
                    run(argv)
                    times[name][tool].append(time.perf_counter() - t0)
                    outs[tool] = out
                if ofmt == "raw":
                    if subprocess.run(["cmp", "-s", outs["kumo"], outs["qemu-img"]]).returncode:
                        raise Bad("%s: kumo's raw output differs from qemu-img's" % name)
                else:
                    run(["qemu-img", "check", outs["kumo"]])
                    run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", outs["kumo"], src])
                for out in outs.values():
                    os.unlink(out)
                if not a.json:
                    print("run %d/%d %s: kumo %.2f s, qemu-img %.2f s" % (
                        i + 1, a.runs, name, times[name]["kumo"][-1], times[name]["qemu-img"][-1]),
                        file=sys.stderr, flush=True)
    except Bad as e:
        sys.exit("bench: FAILED: %s" % e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {n: {t: statistics.median(v) for t, v in d.items()} for n, d in times.items()}
    res = {"size_mib": a.size_mib, "runs": a.runs, "times": times, "median": med,
           "ratio": {n: m["qemu-img"] / m["kumo"] for n, m in med.items()}}
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print("convert a %d MiB image (half data), %d runs, median seconds" % (a.size_mib, a.runs))
        print("%-14s%10s%10s%18s" % ("", "kumo", "qemu-img", "qemu-img/kumo"))
        for n, m in med.items():
            print("%-14s%10.2f%10.2f%18.3f" % (n, m["kumo"], m["qemu-img"], res["ratio"][n]))


if __name__ == "__main__":
    main()
