#!/usr/bin/env python3
"""Debian's kernel and the busybox initramfs (guest/build.sh) on the emu engine.

usage: linux-emu.py KUMO_VMM compute|console CPUS

compute  boots once, runs sha256sum over 16 MiB generated in the guest,
         gzip -9 | gunzip, sort and awk arithmetic, and compares every answer
         with what this host computes; checks dmesg has no warnings about
         the TSC, clocksources or unsupported CPU features.
console  boots with a root shell on a pseudo-terminal, checks dmesg, measures
         the host CPU the idle guest uses (< 5% of a core), starts `yes` on
         every vCPU and checks the console still answers, then powers off.

Every process this starts is killed on the way out, whatever happens.
"""
import hashlib
import os
import re
import sys
import time

from linuxguest import BOOT_TIMEOUT, QUIET, Console, boot_run, fail, need_guest, print, \
    run_cmdline, vmm_args

SEQ_N = 100000              # seq 1 SEQ_N is 588,895 bytes ...
SEQ_COPIES = 29             # ... and 29 copies of it hold 16 MiB
SHA_BYTES = 16 << 20
GZ_BYTES = 256 << 10

# dmesg lines that must not appear (case-insensitive).
BAD_DMESG = re.compile(
    r"unstable|calibrat\w* failed|unable to calibrate|unchecked msr|vendor_id .* unknown|"
    r"may be unstable|WARNING:|BUG:|not supported|unsupported|"
    r"mark(ing)? .*unstable|clocksource.*skew|timekeeping watchdog|Unable to init MCE",
    re.I)


def check_dmesg(text, out):
    bad = [l for l in text.splitlines() if BAD_DMESG.search(l)]
    if bad:
        fail("kernel warnings in dmesg:\n  " + "\n  ".join(bad), out)


# ---- compute ----

COMPUTE = (
    "seq 1 %d > /tmp/s; for i in $(seq %d); do cat /tmp/s; done | head -c %d > /tmp/f; "
    "echo SHA $(sha256sum < /tmp/f); "
    "head -c %d /tmp/f > /tmp/g; echo GZ $(gzip -9 < /tmp/g | gunzip | sha256sum); "
    "echo SORT $(seq 1 50000 | sort | sha256sum); "
    "awk -v a='AWKI %%.0f\\n' -v b='AWKF %%.9f\\n' 'BEGIN { s = 0; f = 0; "
    "for (i = 1; i <= 100000; i++) { s += i * i; f += 1 / i } printf a, s; printf b, f + 22 / 7 - 1.25 * 3.5 }'; "
    "echo RNG $(cat /sys/class/misc/hw_random/rng_current) $(head -c 65536 /dev/hwrng | wc -c) "
    "$(head -c 4096 /dev/hwrng | gzip -9 | wc -c) $(grep -c 'PCI-MSI.*virtio' /proc/interrupts); "
    "echo DMESG-BEGIN; dmesg; echo DMESG-END"
) % (SEQ_N, SEQ_COPIES, SHA_BYTES, GZ_BYTES)


def host_answers():
    seq = ("".join("%d\n" % i for i in range(1, SEQ_N + 1)).encode() * SEQ_COPIES)[:SHA_BYTES]
    assert len(seq) == SHA_BYTES
    sort = "".join(s + "\n" for s in sorted(str(i) for i in range(1, 50001))).encode()
    return {
        "SHA": hashlib.sha256(seq).hexdigest(),
        "GZ": hashlib.sha256(seq[:GZ_BYTES]).hexdigest(),
        "SORT": hashlib.sha256(sort).hexdigest(),
        "AWKI": str(sum(i * i for i in range(1, 100001))),
        "AWKF": "%.9f" % (sum(1 / i for i in range(1, 100001)) + 22 / 7 - 1.25 * 3.5),
    }


def compute(vmm, cpus):
    out = boot_run(vmm_args(vmm, run_cmdline(COMPUTE), cpus=cpus), "compute")
    if "kumo-guest: ready" not in out:
        fail("no 'kumo-guest: ready'", out)
    want = host_answers()
    for key, value in want.items():
        m = re.search(r"^%s (\S+)" % key, out, re.M)
        if not m:
            fail("no %s line from the guest" % key, out)
        if m.group(1) != value:
            fail("%s: guest says %s, host %s" % (key, m.group(1), value), out)
        print("ok: %s %s" % (key, value))
    # virtio-rng on virtio-pci with MSI-X: the guest's hw_random core uses
    # it, 64 KiB come out of /dev/hwrng, 4 KiB of them do not compress,
    # and its interrupts are MSI-X vectors (config + request queue).
    m = re.search(r"^RNG (\S+) (\d+) (\d+) (\d+)", out, re.M)
    if not m:
        fail("no RNG line from the guest", out)
    if m.group(1) != "virtio_rng.0" or int(m.group(2)) != 65536:
        fail("/dev/hwrng: current %s, read %s bytes" % (m.group(1), m.group(2)), out)
    if int(m.group(3)) < 4096:
        fail("4 KiB from /dev/hwrng gzip to %s bytes: not random" % m.group(3), out)
    if int(m.group(4)) < 2:
        fail("virtio-rng has %s MSI-X interrupts in /proc/interrupts, want 2" % m.group(4), out)
    print("ok: virtio-rng: 64 KiB from /dev/hwrng through MSI-X")
    m = re.search(r"DMESG-BEGIN\n(.*)DMESG-END", out, re.S)
    if not m:
        fail("no dmesg from the guest", out)
    check_dmesg(m.group(1), out)
    print("ok: dmesg has no TSC/clocksource/feature warnings")
    print("ok: Linux on emu with %d vCPU(s) computes what the host computes" % cpus)


# ---- console ----

def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def console(vmm, cpus):
    c = Console(vmm_args(vmm, QUIET, cpus=cpus))
    try:
        c.expect(r"kumo-guest: ready", BOOT_TIMEOUT)
        c.send("echo DMESG-BEGIN; dmesg; echo DMESG-END; grep -c ^processor /proc/cpuinfo")
        m = c.expect(r"DMESG-BEGIN\r?\n(.*)DMESG-END\r?\n(\d+)", 300)
        check_dmesg(m.group(1).decode(errors="replace").replace("\r", ""), "")
        if int(m.group(2)) != cpus:
            fail("the guest sees %s CPUs, want %d" % (m.group(2).decode(), cpus))
        print("ok: %d vCPUs online, dmesg has no TSC/clocksource/feature warnings" % cpus)

        time.sleep(5)                       # let boot-time work settle
        t0, c0 = time.monotonic(), cpu_seconds(c.p.pid)
        time.sleep(10)
        share = (cpu_seconds(c.p.pid) - c0) / (time.monotonic() - t0)
        print("idle guest: %.1f%% of a host core" % (share * 100))
        if share >= 0.05:
            fail("an idle guest uses %.1f%% of a host core (want < 5%%)" % (share * 100))

        c.send("for i in $(seq %d); do yes > /dev/null & done" % cpus)
        time.sleep(5)
        for n in range(3):
            c.send("echo pong-$((%d * 7))" % (n + 6))
            c.expect(r"pong-%d" % ((n + 6) * 7), 120)
        c.send("uname -r")
        c.expect(r"\n\d+\.\d+\.\d+-\S+-amd64", 120)
        print("ok: the console answers while `yes` runs on every vCPU")
        c.send("kill $(pidof yes); poweroff -f")
        if c.wait_exit(120) != 0:
            fail("no clean power-off (status %s)" % c.p.poll())
        print("ok: Linux on emu with %d vCPU(s): idle, busy and interactive" % cpus)
    finally:
        c.close()


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("compute", "console"):
        print(__doc__)
        sys.exit(2)
    vmm, mode, cpus = sys.argv[1], sys.argv[2], int(sys.argv[3])
    need_guest()
    (compute if mode == "compute" else console)(vmm, cpus)


if __name__ == "__main__":
    main()
