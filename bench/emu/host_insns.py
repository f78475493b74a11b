#!/usr/bin/env python3
"""Host instructions per guest instruction on kumo's emu engine, by
callgrind: a number that does not depend on how loaded the machine is.

Each guest runs twice under `valgrind --tool=callgrind`, at two sizes,
counting only inside the vCPU thread's run loop (--toggle-collect on
emu_vcpu_run); the difference of the two counts over the difference of the
guest instruction counts cancels start-up, boot code and the guest's own
checks. bench_int and bench_mem print their exact counts; bench_interp's
comes from QEMU's single-stepping of the same image (4449 n + 52, measured
with QEMU 7.2 TCG; see bench_emu.py), since emu has no TF yet.

usage: host_insns.py KUMO_VMM GUEST_DIR [GUEST...]
"""
import os, re, subprocess, sys, tempfile

SIZES = {  # guest: (args at size 1, args at size 2)
    "bench_int": ("n=20000", "n=220000"),
    "bench_mem": ("n=2 kib=256", "n=22 kib=256"),
    "bench_interp": ("n=40", "n=440"),
}


def interp_count(args):
    n = int(re.search(r"n=(\d+)", args).group(1))
    return 4449 * n + 52


def run(vmm, elf, args, name):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        # translated code (on unless KUMO_EMU_JIT=0) lives in a memfd:
        # valgrind must check file-backed code for changes too
        smc = [] if os.environ.get("KUMO_EMU_JIT") == "0" else ["--smc-check=all"]
        p = subprocess.run(["valgrind", "--tool=callgrind", *smc, "--toggle-collect=emu_vcpu_run",
                            f"--callgrind-out-file={out}", vmm, "-q", "--accel", "emu",
                            "--memory", "256M", "--kernel", elf, "--cmdline", args],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=1800)
        text = p.stdout.decode(errors="replace")
        if f"TEST {name}: PASS" not in text:
            raise RuntimeError(f"{name} {args} failed:\n{text}{p.stderr.decode(errors='replace')}")
        with open(out) as f:
            total = int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))
    m = re.search(r"^bench: instructions (\d+)$", text, re.M)
    return total, int(m.group(1)) if m else interp_count(args)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    vmm, gdir = sys.argv[1], sys.argv[2]
    for name in sys.argv[3:] or SIZES:
        (h1, g1), (h2, g2) = (run(vmm, f"{gdir}/{name}.elf", a, name) for a in SIZES[name])
        print(f"{name:14} {(h2 - h1) / (g2 - g1):7.1f} host instructions per guest instruction"
              f"  ({h2 - h1} / {g2 - g1})", flush=True)


if __name__ == "__main__":
    main()
