#!/usr/bin/env python3
"""Guest instructions per second on kumo's emu engine and on QEMU TCG, the
same three test guests, in one run, alternating, medians of N runs.

Guests (tests/guests/bench_*.c), each a fixed amount of work sized by
n=NUMBER on the command line, printing a checksum of its result (both VMMs
must print the same) and the exact number of guest instructions of its
timed section:
  bench_int     integer ALU loop in inline asm (12 instructions an
                iteration plus a counted inc): exact by construction;
  bench_mem     1 MiB copied back and forth, a load/store loop in inline
                asm (10 instructions per 32 bytes): exact by construction;
  bench_interp  a bytecode interpreter in C (switch dispatch): the guest
                counts its instructions by single-stepping (EFLAGS.TF) and
                extrapolating run(1), run(2), run(3) (linear by design);
                kumo's emu has no TF yet, so the count comes from the QEMU
                run of the same image and n.

Per VMM: exec -> exit wall time, and the timed section as the guest
measures it with its TSC (calibrated against the PIT): MIPS = instructions
/ section time. exec -> exit includes VMM start-up (QEMU's ~0.1 s is most of
its total here), which the section excludes.

kumo:  KUMO_VMM -q --accel emu --memory 256M --kernel GUEST --cmdline ARGS
QEMU:  qemu-system-x86_64 -accel tcg -M microvm -cpu qemu64 -m 256M
       -nodefaults -no-user-config -nographic -serial stdio
       -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel GUEST -append ARGS

usage: bench_emu.py KUMO_VMM GUEST_DIR [--runs 5] [--scale 1.0] [--json]
"""
import argparse, json, re, shutil, statistics, subprocess, sys, time

# Sized so that kumo's emu (debugoptimized build, ~10 MIPS) takes ~1 s each.
GUESTS = {
    "bench_int": "n=800000",
    "bench_mem": "n=12 kib=1024",
    "bench_interp": "n=2500",
}


def run(argv, name):
    t0 = time.perf_counter_ns()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    wall = (time.perf_counter_ns() - t0) / 1e9
    out = p.stdout.decode(errors="replace")
    if f"TEST {name}: PASS" not in out:
        raise RuntimeError(f"{name} failed on {argv[0]} (status {p.returncode}):\n{out}"
                           f"{p.stderr.decode(errors='replace')}")

    def field(pat):
        m = re.search(pat, out, re.M)
        return m.group(1) if m else None

    insns = field(r"^bench: instructions (\d+)$")
    return {
        "wall_s": wall,
        "section_s": int(field(r"^bench: section (\d+) ns$")) / 1e9,
        "instructions": int(insns) if insns else None,
        "ops": int(field(r"^bench: ops (\d+)$") or 0) or None,
        "checksum": field(r"^bench: checksum (0x[0-9a-f]+)$"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kumo_vmm")
    ap.add_argument("guest_dir")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply each guest's n (e.g. 0.1 for a quick run)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        sys.exit("bench: qemu-system-x86_64 not found")

    results = {}
    for name, args in GUESTS.items():
        args = re.sub(r"\bn=(\d+)", lambda m: f"n={max(1, round(int(m.group(1)) * a.scale))}", args)
        elf = f"{a.guest_dir}/{name}.elf"
        vmms = {
            "kumo": [a.kumo_vmm, "-q", "--accel", "emu", "--memory", "256M",
                     "--kernel", elf, "--cmdline", args],
            "qemu": [qemu, "-accel", "tcg", "-M", "microvm", "-cpu", "qemu64", "-m", "256M",
                     "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
                     "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                     "-kernel", elf, "-append", args],
        }
        samples = {k: [] for k in vmms}
        for _ in range(a.runs):  # alternate, so drift hits both
            for vmm, argv in vmms.items():
                samples[vmm].append(run(argv, name))
        sums = {s["checksum"] for v in samples.values() for s in v}
        if len(sums) != 1:
            raise RuntimeError(f"{name}: the VMMs disagree on the checksum: {sorted(sums)}")
        counts = {s["instructions"] for v in samples.values() for s in v} - {None}
        if len(counts) > 1:
            raise RuntimeError(f"{name}: instruction counts differ: {sorted(counts)}")
        insns = counts.pop() if counts else None
        r = {"args": args, "checksum": sums.pop(), "instructions": insns,
             "ops": samples["kumo"][0]["ops"],
             "kumo_counted_itself": samples["kumo"][0]["instructions"] is not None}
        for vmm in vmms:
            wall = statistics.median(s["wall_s"] for s in samples[vmm])
            sec = statistics.median(s["section_s"] for s in samples[vmm])
            r[vmm] = {"wall_s": wall, "section_s": sec,
                      "mips": insns / sec / 1e6 if insns else None}
        r["ratio_kumo_over_qemu"] = {
            "wall": r["kumo"]["wall_s"] / r["qemu"]["wall_s"],
            "section": r["kumo"]["section_s"] / r["qemu"]["section_s"],
            "mips": r["kumo"]["mips"] / r["qemu"]["mips"] if insns else None,
        }
        results[name] = r

    if a.json:
        print(json.dumps(results, indent=2))
        return
    print(f"Guest speed, kumo emu vs QEMU TCG (microvm), {a.runs} runs each, medians")
    print(f"{'guest':14}{'instructions':>13}{'exec->exit s':>22}{'section s':>22}"
          f"{'MIPS (section)':>24}")
    print(f"{'':14}{'':13}{'kumo':>8}{'qemu':>8}{'ratio':>6}{'kumo':>8}{'qemu':>8}{'ratio':>6}"
          f"{'kumo':>9}{'qemu':>9}{'k/q':>6}")
    for name, r in results.items():
        k, q, x = r["kumo"], r["qemu"], r["ratio_kumo_over_qemu"]
        mips = (f"{k['mips']:9.1f}{q['mips']:9.1f}{x['mips']:6.3f}" if r["instructions"]
                else f"{'-':>9}{'-':>9}{'-':>6}")
        print(f"{name:14}{r['instructions'] or 0:13d}{k['wall_s']:8.3f}{q['wall_s']:8.3f}"
              f"{x['wall']:6.1f}{k['section_s']:8.3f}{q['section_s']:8.4f}{x['section']:6.0f}{mips}")
    print("ratio: kumo/QEMU (time: >1 is kumo slower; MIPS: <1 is kumo slower).")
    for name, r in results.items():
        note = f"{name}: {r['args']}, checksum {r['checksum']}"
        if r["ops"]:
            note += f", {r['ops']} interpreted ops"
        if r["instructions"] and not r["kumo_counted_itself"]:
            note += " (instruction count from QEMU's single-stepping)"
        print(note)


if __name__ == "__main__":
    main()
