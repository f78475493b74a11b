#!/usr/bin/env python3
"""Start-up benchmark: the same test guest on kumo and on QEMU (microvm, KVM,
PVH boot), in one run. Reports medians and ratios of exec -> first console
byte, exec -> exit, and each VMM's peak RSS (ru_maxrss of the process).

usage: bench_start.py KUMO_VMM GUEST_ELF [--runs N] [--memory 256M] [--json]
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
    ratios = {k: res["kumo"][k] / res["qemu"][k] for k in ("first_byte_ms", "exit_ms", "rss_kib")}
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
                           ("rss_kib", "peak RSS", "KiB")):
        print(f"{label + ' (' + unit + ')':24}{res['kumo'][k]:12.1f}{res['qemu'][k]:14.1f}{ratios[k]:11.2f}")


if __name__ == "__main__":
    main()
