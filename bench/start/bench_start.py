#!/usr/bin/env python3
"""Start-up benchmark: the same test guest on kumo and on QEMU (microvm, KVM,
PVH boot), in one run. Reports medians and ratios of exec -> first console
byte, exec -> exit, each VMM's peak RSS (ru_maxrss of the process, guest
pages included), and with --idle-guest the VMM's own resident memory while
the guest idles: total RSS minus the RSS of the guest-RAM mapping.

usage: bench_start.py KUMO_VMM GUEST_ELF [--idle-guest ELF] [--runs N]
                      [--memory 256M] [--json]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, time


def run_once(argv):
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    first = p.stdout.read(1)
    t1 = time.perf_counter_ns()
    out = first + p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    t2 = time.perf_counter_ns()
    p.returncode = os.waitstatus_to_exitcode(status)
    if not first:
        raise RuntimeError(f"{argv[0]} printed nothing (status {p.returncode})")
    return {"first_byte_ms": (t1 - t0) / 1e6, "exit_ms": (t2 - t0) / 1e6,
            "rss_kib": ru.ru_maxrss, "status": p.returncode, "out": out}


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def own_rss(argv, guest_bytes, ready=b"idle: ready"):
    """RSS (KiB) of the VMM apart from guest RAM, sampled while it idles."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        buf = b""
        while ready not in buf:
            chunk = p.stdout.read1(4096)
            if not chunk:
                raise RuntimeError(f"{argv[0]} ended before {ready!r}")
            buf += chunk
        time.sleep(0.3)
        total = guest = 0
        size = 0
        with open(f"/proc/{p.pid}/smaps") as f:
            for line in f:
                head = line.split()
                if "-" in head[0] and len(head) >= 5:
                    lo, hi = (int(x, 16) for x in head[0].split("-"))
                    size = hi - lo
                elif head[0] == "Rss:":
                    kib = int(head[1])
                    total += kib
                    # the guest-RAM mapping: the guest size, maybe aligned up
                    if guest_bytes <= size <= guest_bytes + (4 << 20):
                        guest += kib
        return total - guest
    finally:
        p.kill()
        p.wait()


def measure(name, argv, runs):
    samples = [run_once(argv) for _ in range(runs)]
    med = {k: statistics.median(s[k] for s in samples)
           for k in ("first_byte_ms", "exit_ms", "rss_kib")}
    med["status"] = samples[-1]["status"]
    med["runs"] = runs
    return med


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kumo_vmm")
    ap.add_argument("guest")
    ap.add_argument("--idle-guest")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--memory", default="256M")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        sys.exit("bench: qemu-system-x86_64 not found (scripts/install-deps.sh)")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("bench: /dev/kvm is not usable here")
    kumo_argv = [a.kumo_vmm, "-q", "--accel", "kvm", "--memory", a.memory, "--kernel", a.guest]
    qemu_argv = [qemu, "-M", "microvm", "-enable-kvm", "-cpu", "host", "-m", a.memory,
                 "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
                 "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", a.guest]

    # One warm-up each (page cache), then alternate so drift hits both.
    run_once(kumo_argv), run_once(qemu_argv)
    res = {"kumo": measure("kumo", kumo_argv, a.runs), "qemu": measure("qemu", qemu_argv, a.runs)}
    keys = ["first_byte_ms", "exit_ms", "rss_kib"]
    if a.idle_guest:
        for name, argv in (("kumo", kumo_argv), ("qemu", qemu_argv)):
            idle = argv[:-1] + [a.idle_guest]
            res[name]["own_rss_kib"] = statistics.median(
                own_rss(idle, parse_size(a.memory)) for _ in range(3))
        keys.append("own_rss_kib")
    ratios = {k: res["kumo"][k] / res["qemu"][k] for k in keys}
    res["ratio_kumo_over_qemu"] = ratios
    res["guest"] = os.path.basename(a.guest)
    res["memory"] = a.memory
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(f"start-up, guest {res['guest']}, {a.memory}, {a.runs} runs each, medians (KVM)")
    print(f"{'':24}{'kumo':>12}{'qemu microvm':>14}{'kumo/qemu':>11}")
    for k, label, unit in (("first_byte_ms", "exec -> first byte", "ms"),
                           ("exit_ms", "exec -> exit", "ms"),
                           ("rss_kib", "peak RSS", "KiB"),
                           ("own_rss_kib", "own RSS, guest idle", "KiB")):
        if k not in ratios:
            continue
        print(f"{label + ' (' + unit + ')':24}{res['kumo'][k]:12.1f}{res['qemu'][k]:14.1f}{ratios[k]:11.2f}")


if __name__ == "__main__":
    main()
