#!/usr/bin/env python3
"""VM-exit round trips per second, kumo and QEMU (microvm, KVM) on the same
test guest (tests/guests/exits.c), in one run, medians of N runs.

The guest times, with its calibrated TSC, n 32-bit reads of port 0xf4 (the
test-exit device on both VMMs; each read a round trip through the VMM's
userspace) and n 32-bit writes to port 0xf8 (kumo's test doorbell). On
kumo the writes are an ioeventfd: KVM signals an eventfd and resumes the
guest without leaving the kernel. QEMU has no device there, so its writes
are userspace round trips too; they are reported as such.

usage: bench_exits.py KUMO_VMM EXITS_ELF [--runs 5] [--n 100000] [--json]
"""
import argparse, json, re, shutil, statistics, subprocess, sys


def run(argv):
    out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=600).stdout.decode(errors="replace")
    got = {}
    for kind in ("userspace", "ioeventfd"):
        m = re.search(rf"exits: {kind} (\d+) in (\d+) ns", out)
        if not m:
            raise RuntimeError(f"no '{kind}' line from {argv[0]}:\n{out}")
        n, ns = int(m.group(1)), int(m.group(2))
        got[kind] = n / (ns / 1e9)
    if "TEST exits: PASS" not in out:
        raise RuntimeError(f"guest failed on {argv[0]}:\n{out}")
    return got


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kumo_vmm")
    ap.add_argument("guest")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        sys.exit("bench: qemu-system-x86_64 not found")
    cmd = f"n={a.n}"
    vmms = {
        "kumo": [a.kumo_vmm, "-q", "--accel", "kvm", "--memory", "256M",
                 "--kernel", a.guest, "--cmdline", cmd],
        "qemu": [qemu, "-M", "microvm", "-enable-kvm", "-cpu", "host", "-m", "256M",
                 "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
                 "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                 "-kernel", a.guest, "-append", cmd],
    }
    samples = {k: [] for k in vmms}
    for _ in range(a.runs):  # alternate, so drift hits both
        for name, argv in vmms.items():
            samples[name].append(run(argv))
    res = {name: {kind: statistics.median(s[kind] for s in samples[name])
                  for kind in ("userspace", "ioeventfd")} for name in vmms}
    res["ratio_kumo_over_qemu"] = {
        "userspace": res["kumo"]["userspace"] / res["qemu"]["userspace"],
        "kumo_ioeventfd_over_qemu_userspace_write":
            res["kumo"]["ioeventfd"] / res["qemu"]["ioeventfd"],
    }
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(f"VM-exit round trips per second, n={a.n}, {a.runs} runs each, medians (KVM)")
    print(f"{'':34}{'kumo':>12}{'qemu microvm':>14}{'kumo/qemu':>11}")
    print(f"{'port read (userspace exit)':34}{res['kumo']['userspace']:12.0f}"
          f"{res['qemu']['userspace']:14.0f}{res['ratio_kumo_over_qemu']['userspace']:11.2f}")
    print(f"{'port write (kumo: ioeventfd)':34}{res['kumo']['ioeventfd']:12.0f}"
          f"{res['qemu']['ioeventfd']:14.0f}"
          f"{res['ratio_kumo_over_qemu']['kumo_ioeventfd_over_qemu_userspace_write']:11.2f}")
    print("(QEMU has no device at 0xf8: its writes are userspace exits.)")


if __name__ == "__main__":
    main()
